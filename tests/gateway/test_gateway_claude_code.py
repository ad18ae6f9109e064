"""Claude Code (the @anthropic-ai/claude-code npm package, tests/node) against the gateway:
`ANTHROPIC_BASE_URL` is the gateway, `ANTHROPIC_API_KEY` a gateway token, and it runs
non-interactively (`claude -p`) with its non-essential traffic, telemetry and updater off and
a HOME of its own. strace records every connection it opens: none but to the gateway."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.services import token_create
from providers import services
from tests.gateway import test_gateway

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
CLAUDE = NODE_DIR / "node_modules" / ".bin" / "claude"
NOT_INSTALLED = (
    "Claude Code is not installed in tests/node: run `npm ci --prefix tests/node` (bin/test does)."
)
STRACE = shutil.which("strace")
# Every connect() of an IP socket: its address family, port and address.
CONNECT = re.compile(
    r"connect\(\d+, \{sa_family=(?P<family>AF_INET6?), sin6?_port=htons\((?P<port>\d+)\),"
    r".*?(?:inet_addr\(\"|inet_pton\(AF_INET6, \")(?P<address>[^\"]+)\""
)
gateway = test_gateway.gateway

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed"),
]


@pytest.fixture
def claude_env(gateway, upstream_factory, make_provider, tmp_path):
    upstream = upstream_factory("claude")
    upstream.reply_text = "hi from the gateway"
    provider = make_provider(name="pc", kind="anthropic", base_url=upstream.base_url)
    services.default_model_set(provider=provider, model="claude-sonnet-4-5")
    _, token = token_create(name="claude-code", actor="test")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway,
        "ANTHROPIC_API_KEY": token,
        # Every model Claude Code asks for by name is the gateway's default.
        "ANTHROPIC_MODEL": "default",
        "ANTHROPIC_SMALL_FAST_MODEL": "default",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "default",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    return upstream, env, tmp_path


def test_claude_code_answers_through_the_gateway_and_calls_nothing_else(claude_env, gateway):
    from usage import request_log
    from usage.models import RequestLog

    upstream, env, tmp_path = claude_env
    assert CLAUDE.exists(), NOT_INSTALLED
    assert STRACE, "strace is needed to see where Claude Code connects (apt-get install strace)"
    trace = tmp_path / "connect.trace"
    run = subprocess.run(
        [STRACE, "-f", "-qq", "-e", "trace=connect", "-o", str(trace),
         str(CLAUDE), "-p", "say hi", "--output-format", "json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    answer = json.loads(run.stdout)
    assert answer["is_error"] is False and answer["result"] == "hi from the gateway"
    calls = [r for r in upstream.requests if r.path == "/v1/messages"]
    assert calls and all(r.json()["model"] == "claude-sonnet-4-5" for r in calls)
    port = gateway.rsplit(":", 1)[1]
    reached = {(m["address"], m["port"]) for m in CONNECT.finditer(trace.read_text())}
    assert reached and reached <= {("127.0.0.1", port), ("::ffff:127.0.0.1", port)}, reached
    request_log.flush()
    assert set(RequestLog.objects.values_list("token_name", "ok")) == {("claude-code", True)}
