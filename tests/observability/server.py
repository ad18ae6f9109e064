"""The gateway under `uvicorn --workers N` in a subprocess, on the test database, as
tests/gateway/test_gateway_workers.py starts it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from django.conf import settings as dj

from tests.conftest import shared_database_url

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "PROMETHEUS_", "ROUTING_METRICS_"))
    }
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": shared_database_url(),
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback, like bin/run (and test keys are only accepted there).
        "ROUTING_HTTPS_REDIRECT": "0",
        "ROUTING_PRELOAD_LITELLM": "1",
        **extra,
    }


@contextlib.contextmanager
def uvicorn(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "routing_admin.asgi:application"]
    if workers > 1:
        # Workers that start slowly (a loaded machine) must not be killed as unhealthy.
        command += ["--workers", str(workers), "--timeout-worker-healthcheck", "120"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        # Ready when several answers in a row (new connections, so any worker) say LiteLLM is
        # loaded. On a loaded 2-core machine a worker's import takes a minute or more.
        deadline, ready_in_a_row = time.monotonic() + 600, 0
        while ready_in_a_row < 4 * workers:
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
