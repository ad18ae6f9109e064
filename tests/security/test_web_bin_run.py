"""`bin/run` keeps working for a person on http://127.0.0.1 while the defaults are secure:
it serves plain HTTP on loopback, with DEBUG off and the keys it generated."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from routing_admin.__main__ import ensure_env_file

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bin_run(tmp_path, monkeypatch):
    for name in ("SECRET_KEY", "ROUTING_ENCRYPTION_KEYS", "ROUTING_HTTPS_REDIRECT"):
        monkeypatch.delenv(name, raising=False)
    ensure_env_file(tmp_path / ".env")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTING_", "DJANGO_"))}
    env = {
        **base,
        **dotenv_values(tmp_path / ".env"),
        "DEBUG": "",
        "ALLOWED_HOSTS": "",
        "ROUTING_PROXY_SSL_HEADER": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "routing_admin", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # uvicorn prints this line once the port is bound.
        for line in server.stdout:
            assert "Error" not in line, line
            if "Uvicorn running on" in line:
                break
        assert server.poll() is None, "no server"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)


def test_bin_run_serves_plain_http_on_loopback_without_https_redirect(bin_run):
    with httpx.Client(base_url=bin_run, follow_redirects=False, timeout=30) as http:
        # Nobody has an account yet: the first-run page, over plain HTTP, no redirect to https.
        setup = http.get("/setup/")
        assert setup.status_code == 200
        assert "Secure" not in setup.headers.get("set-cookie", "")
        assert "Strict-Transport-Security" not in setup.headers
        assert "script-src 'self'" in setup.headers["Content-Security-Policy"]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', setup.text)[1]
        password = "a-long-local-password-7"
        created = http.post(
            "/setup/",
            data={
                "csrfmiddlewaretoken": token,
                "username": "ada",
                "password": password,
                "password2": password,
            },
            headers={"Referer": bin_run + "/setup/"},
        )
        assert created.status_code == 302, created.text
        assert http.get("/").status_code == 200  # the session cookie came back over HTTP
        assert http.get("/static/vendor/htmx-2.min.js").status_code == 200
