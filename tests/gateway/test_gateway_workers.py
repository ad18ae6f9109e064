"""Across worker processes: uvicorn with two workers. A switch made from another process (the
command line) reaches every worker, and every following request goes to the new model; the
Responses and Messages APIs answer there too."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as dj

from gateway.services import token_create
from providers import services
from tests.conftest import shared_database_url

ROOT = Path(__file__).resolve().parents[2]
HI = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ask(base: str, token: str) -> str:
    # A new connection each time, so the kernel spreads requests over the workers.
    response = httpx.post(
        base + "/v1/chat/completions",
        json={"model": "default", "messages": HI},
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=180,
    )
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


@pytest.fixture
def workers(db):
    """uvicorn with two workers on the test database: (base URL, environment)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": shared_database_url(),
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback, like bin/run (and test keys are only accepted there).
        "ROUTING_HTTPS_REDIRECT": "0",
        # Only the change signal may carry the switch, not the periodic safety net.
        "ROUTING_CONFIG_RECHECK_SECONDS": "3600",
        "ROUTING_PRELOAD_LITELLM": "1",
    }
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "routing_admin.asgi:application",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            # Workers that start slowly (a loaded CI machine) must not be killed as unhealthy.
            "--timeout-worker-healthcheck",
            "120",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Ready when several answers in a row (new connections, so any worker) say LiteLLM is
        # loaded. On a loaded 2-core machine a worker's import takes a minute or more.
        deadline, ready_in_a_row = time.monotonic() + 600, 0
        while ready_in_a_row < 8:
            try:
                health = httpx.get(base + "/healthz", headers={"Connection": "close"}, timeout=10)
                loaded = health.status_code == 200 and health.json()["litellm"] == "loaded"
            except httpx.HTTPError:
                loaded = False
            ready_in_a_row = ready_in_a_row + 1 if loaded else 0
            assert time.monotonic() < deadline and server.poll() is None, "gateway not ready"
            time.sleep(0.2)
        yield base, env
    finally:
        server.terminate()
        server.wait(30)


def test_switch_reaches_every_worker_without_restart(upstream_factory, make_provider, workers):
    a, b = upstream_factory("a"), upstream_factory("b")
    a.reply_text, b.reply_text = "from A", "from B"
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    services.default_model_set(provider=pa, model="m")
    _, token = token_create(name="app")
    base, env = workers
    assert {_ask(base, token) for _ in range(6)} == {"from A"}
    subprocess.run(
        [sys.executable, "manage.py", "routing", "default", "set", "pb", "m2"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    answers = [_ask(base, token) for _ in range(12)]
    assert answers == ["from B"] * 12
    assert b.last.json()["model"] == "m2"


def test_the_responses_and_messages_apis_on_the_workers(upstream_factory, make_provider, workers):
    import anthropic
    import openai

    a, c = upstream_factory("a"), upstream_factory("c")
    a.reply_text, c.reply_text = "from A", "from Claude"
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pc", kind="anthropic", base_url=c.base_url)
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    _, token = token_create(name="app")
    base, _ = workers
    sdk = openai.OpenAI(base_url=base + "/v1", api_key=token, max_retries=0, timeout=180)
    assert sdk.responses.create(model="default", input="hi").output_text == "from A"
    assert a.last.path == "/v1/responses"
    claude = anthropic.Anthropic(base_url=base, api_key=token, max_retries=0, timeout=180)
    with claude.messages.stream(model="pc/claude-sonnet-4-5", max_tokens=50, messages=HI) as stream:
        assert "".join(stream.text_stream) == "from Claude"
    assert c.last.path == "/v1/messages" and c.last.json()["stream"] is True
