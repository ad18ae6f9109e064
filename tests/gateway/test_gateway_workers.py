"""Live switching across worker processes: uvicorn with two workers, a switch made from
another process (the command line), and every following request goes to the new model; and
every endpoint (embeddings, legacy completions, Azure's paths) answering on every worker."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
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


def _env() -> dict[str, str]:
    return {
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


@contextlib.contextmanager
def _two_workers(env: dict[str, str]) -> Iterator[str]:
    """uvicorn with two workers, once every worker has LiteLLM loaded: its base URL."""
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
        yield base
    finally:
        server.terminate()
        server.wait(30)


def test_switch_reaches_every_worker_without_restart(upstream_factory, make_provider):
    a, b = upstream_factory("a"), upstream_factory("b")
    a.reply_text, b.reply_text = "from A", "from B"
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    services.default_model_set(provider=pa, model="m")
    _, token = token_create(name="app")
    env = _env()
    with _two_workers(env) as base:
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


def test_every_endpoint_answers_on_every_worker(upstream, make_provider):
    """Embeddings, legacy completions (plain and streamed) and Azure's paths, each sent on new
    connections often enough that both workers serve it."""
    from tests.upstream_embeddings import vector_for

    upstream.reply_text = "from A"
    pa = make_provider(name="pa", base_url=upstream.base_url + "/v1")
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    _, token = token_create(name="app")
    with _two_workers(_env()) as base:
        fresh = {"Connection": "close"}
        c = openai.OpenAI(
            base_url=base + "/v1", api_key=token, max_retries=0, timeout=180, default_headers=fresh
        )
        azure = openai.AzureOpenAI(
            azure_endpoint=base, api_key=token, api_version="2024-10-21", max_retries=0,
            timeout=180, default_headers=fresh,
        )  # fmt: skip
        for _ in range(4):
            embedded = c.embeddings.create(model="pa/text-embedding-3-small", input="x")
            assert embedded.data[0].embedding == vector_for("x")
            assert c.completions.create(model="default", prompt="p").choices[0].text == "from A"
            streamed = c.completions.create(model="default", prompt="p", stream=True)
            assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == (
                "from A"
            )
            answer = azure.chat.completions.create(model="default", messages=HI)
            assert answer.choices[0].message.content == "from A"
            vector = azure.embeddings.create(model="default", input=["y"]).data[0].embedding
            assert vector == vector_for("y")
