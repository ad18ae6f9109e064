"""The README's run command, `bin/run`, serves what production serves (uvicorn, the ASGI
application): the official `openai` client works against it as written, plain and streamed,
and streamed chunks arrive while the provider is still answering; embeddings, legacy
completions and the `AzureOpenAI` client too."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings as dj

from gateway.services import token_create
from providers import services
from tests.conftest import shared_database_url

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
def bin_run(upstream_factory, make_provider):
    a = upstream_factory("a")
    a.reply_text = "Hello from the upstream"
    provider = make_provider(name="pa", base_url=a.base_url + "/v1")
    services.default_model_set(provider=provider, model="gpt-4o-mini")
    _, token = token_create(name="app")
    port = _free_port()
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
        "ROUTING_PORT": str(port),
    }
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
        yield a, token, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)
    reader.join(10)
    # A graceful stop: uvicorn's lifespan shutdown ran (it flushes the request log).
    assert "Application shutdown complete" in "".join(output), "".join(output)
    assert _env_file() == env_file, "bin/run changed the project's .env during a test"


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
