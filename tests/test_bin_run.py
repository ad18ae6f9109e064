"""The README's run command, `bin/run`, serves what production serves (uvicorn, the ASGI
application): the official `openai` client works against it as written, plain and streamed,
and streamed chunks arrive while the provider is still answering; embeddings, legacy
completions and the `AzureOpenAI` client too."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings as dj

from gateway.services import token_create
from providers import services
from tests.conftest import shared_database_url
from usage.models import RequestLog

ROOT = Path(__file__).resolve().parent.parent
HI = [{"role": "user", "content": "hi"}]
ORIGIN = "https://app.example.com"
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env_file() -> bytes | None:
    path = ROOT / ".env"
    return path.read_bytes() if path.exists() else None


@pytest.fixture
def bin_run_env(upstream_factory, make_provider):
    """A provider on the recording upstream as the default, and the environment `bin/run`
    (and `manage.py`) is run with."""
    a = upstream_factory("a")
    a.reply_text = "Hello from the upstream"
    provider = make_provider(name="pa", base_url=a.base_url + "/v1")
    services.default_model_set(provider=provider, model="gpt-4o-mini")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTING_", "DJANGO_"))}
    env = {
        **base,
        # Everything bin/run would otherwise read from, or write to, the project's .env.
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_HTTPS_REDIRECT": "0",
        "DATABASE_URL": shared_database_url(),
        "DEBUG": "",
        "ALLOWED_HOSTS": "",
        "ROUTING_PROXY_SSL_HEADER": "",
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "ROUTING_CORS_ALLOWED_ORIGINS": ORIGIN,
        "ROUTING_PORT": str(_free_port()),
    }
    return a, env


@contextlib.contextmanager
def _serving(env: dict[str, str]) -> Iterator[str]:
    """`bin/run` with `env`, until the block ends; its base URL."""
    env_file = _env_file()
    server = subprocess.Popen(
        [str(ROOT / "bin" / "run")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(server.stdout), daemon=True)
    try:
        for line in server.stdout:  # ends when the process does: no timer needed
            output.append(line)
            if "Uvicorn running on" in line:
                break
        assert server.poll() is None, "bin/run did not start:\n" + "".join(output)
        # Keep reading, so that a full pipe never stalls the server.
        reader.start()
        yield f"http://127.0.0.1:{env['ROUTING_PORT']}"
    finally:
        server.terminate()
        server.wait(30)
    reader.join(10)
    # A graceful stop: uvicorn's lifespan shutdown ran (it flushes the request log).
    assert "Application shutdown complete" in "".join(output), "".join(output)
    assert _env_file() == env_file, "bin/run changed the project's .env during a test"


@pytest.fixture
def bin_run(bin_run_env):
    upstream, env = bin_run_env
    _, token = token_create(name="app")
    with _serving(env) as base:
        yield upstream, token, base


def _client(base: str, token: str) -> openai.OpenAI:
    # The README's example, with this test's port.
    return openai.OpenAI(base_url=base + "/v1", api_key=token, timeout=60)


def test_bin_run_serves_the_openai_client_plain_streamed_and_with_usage(bin_run):
    upstream, token, base = bin_run
    client = _client(base, token)
    answer = client.chat.completions.create(model="default", messages=HI)
    assert answer.choices[0].message.content == "Hello from the upstream"

    release = upstream.hold_stream(after=2)  # the role chunk and the first word, then wait
    stream = client.chat.completions.create(model="default", messages=HI, stream=True)
    texts = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            texts.append(chunk.choices[0].delta.content)
            if len(texts) == 1:
                # The first words are here while the provider has not sent the rest.
                assert not upstream.stream_finished.is_set()
                release.set()
    assert "".join(texts) == "Hello from the upstream" and len(texts) >= 3
    assert upstream.stream_finished.is_set()

    stream = client.chat.completions.create(
        model="default", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert upstream.last.json()["stream_options"] == {"include_usage": True}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from the upstream"
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage.prompt_tokens == 7
    assert last.usage.completion_tokens == 4 and last.usage.total_tokens == 11

    # Static files and CORS, as production serves them.
    assert httpx.get(base + "/static/vendor/htmx-2.min.js").status_code == 200
    preflight = httpx.options(
        base + "/v1/chat/completions",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["access-control-allow-origin"] == ORIGIN


def test_bin_run_serves_embeddings_completions_and_azures_paths(bin_run):
    from tests.upstream_embeddings import vector_for

    upstream, token, base = bin_run
    client = _client(base, token)
    assert client.embeddings.create(model="default", input="x").data[0].embedding == (
        vector_for("x")
    )
    assert client.completions.create(model="default", prompt="p").choices[0].text == (
        "Hello from the upstream"
    )
    streamed = client.completions.create(model="default", prompt="p", stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "Hello from the upstream"
    azure = openai.AzureOpenAI(azure_endpoint=base, api_key=token, api_version="2024-10-21")
    answer = azure.chat.completions.create(model="default", messages=HI)
    assert answer.choices[0].message.content == "Hello from the upstream"
    stream = azure.chat.completions.create(model="default", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "Hello from the upstream"
    )
    assert azure.embeddings.create(model="default", input="y").data[0].embedding == (
        vector_for("y")
    )


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


TPM = 20
# Each answer: 7 prompt tokens, and "Hello from the upstream", 4 completion tokens.
TOKENS_PER_CALL = 11
# A model LiteLLM's price map prices at 57.5 millionths of a dollar an answer here: two
# calls fit in the budget (the second starts under it and ends over it), the third is refused.
PRICED = "pa/gpt-4o"
BUDGET = "0.0001/total"


def test_bin_run_limits_made_on_the_command_line_reach_the_openai_client(bin_run_env):
    """A person's way: tokens made with `routing token create --tpm` and `--budget`, the
    server started with `bin/run`, the official client: 429s arrive as openai.RateLimitError
    with OpenAI's codes, and the rate headers are on the raw answers."""
    upstream, env = bin_run_env
    tpm_token = _manage(env, "routing", "token", "create", "tpm-bot", "--tpm", str(TPM))
    budget_token = _manage(env, "routing", "token", "create", "budget-bot", "--budget", BUDGET)
    with _serving(env) as base:
        # No retries: the SDK would wait out the Retry-After (up to a minute, twice) first.
        client = openai.OpenAI(base_url=base + "/v1", api_key=tpm_token, max_retries=0)
        for remaining in (TPM - TOKENS_PER_CALL, 0):
            raw = client.chat.completions.with_raw_response.create(model="default", messages=HI)
            assert raw.parse().usage.total_tokens == TOKENS_PER_CALL
            assert raw.headers["x-ratelimit-limit-tokens"] == str(TPM)
            # Its own tokens counted already: 11, then 22 of 20.
            assert raw.headers["x-ratelimit-remaining-tokens"] == str(remaining)
            assert raw.headers["x-ratelimit-reset-tokens"].endswith("s")
        with pytest.raises(openai.RateLimitError) as over:
            client.chat.completions.create(model="default", messages=HI)
        assert over.value.code == "rate_limit_exceeded"
        assert over.value.type == "tokens"
        assert (
            f"token 'tpm-bot' may use {TPM} tokens per minute and has used "
            f"{2 * TOKENS_PER_CALL} in the last minute" in over.value.message
        )
        headers = over.value.response.headers
        assert headers["x-ratelimit-remaining-tokens"] == "0"
        assert 1 <= int(headers["retry-after"]) <= 60

        # The README's client as written (the SDK's retries on): a budget's 429 says
        # x-should-retry: false, so it is raised at once, not retried.
        client = _client(base, budget_token)
        for _ in range(2):
            client.chat.completions.create(model=PRICED, messages=HI)
        with pytest.raises(openai.RateLimitError) as spent:
            client.chat.completions.create(model=PRICED, messages=HI)
        assert spent.value.code == "budget_exceeded"
        assert spent.value.type == "insufficient_quota"
        assert (
            "Budget exceeded: token 'budget-bot' has spent $0.000115 of its total budget of "
            "$0.0001, which does not reset" in spent.value.message
        )
        assert "retry-after" not in spent.value.response.headers  # a total budget never resets
    assert len([r for r in upstream.requests if r.path.endswith("/chat/completions")]) == 4
    # bin/run wrote its request log at its stop: each refusal once (never retried), with why.
    refused = RequestLog.objects.filter(status=429).order_by("at")
    assert [(r.token_name, r.error.split(":")[0]) for r in refused] == [
        ("tpm-bot", "Rate limit reached"),
        ("budget-bot", "Budget exceeded"),
    ]


def test_host_and_port_come_from_the_options_the_environment_or_dotenv(tmp_path, monkeypatch):
    from routing_admin.__main__ import DEFAULT_PORT, parse_args

    monkeypatch.delenv("ROUTING_HOST", raising=False)
    monkeypatch.delenv("ROUTING_PORT", raising=False)
    env_file = tmp_path / ".env"
    args = parse_args([], env_file=env_file)
    assert (args.host, args.port) == ("127.0.0.1", DEFAULT_PORT)

    # Like every other setting, .env is read...
    env_file.write_text("ROUTING_HOST=0.0.0.0\nROUTING_PORT=9123\n")
    args = parse_args([], env_file=env_file)
    assert (args.host, args.port) == ("0.0.0.0", 9123)
    # ...the environment wins over it, and the options over both.
    monkeypatch.setenv("ROUTING_PORT", "9124")
    assert parse_args([], env_file=env_file).port == 9124
    assert parse_args(["--port", "9125"], env_file=env_file).port == 9125
