"""The database going away and coming back: the dashboard shows a clear 503 page, the gateway
answers 503 in OpenAI's error shape, both recover without a restart, and the request log
loses no record, through the outage and through a normal shutdown.

The outage tests run a real server (uvicorn, in a subprocess) on this run's own PostgreSQL
test database, then refuse new connections to that database (ALLOW_CONNECTIONS false) and
end the server's sessions (pg_terminate_backend, picked by application name); other
databases, and this process's own session, are never touched.
"""

import contextlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings as dj
from django.contrib.auth.models import Group, User
from django.db import OperationalError, connection
from django.test import Client

from gateway.services import token_create
from providers import services
from providers.middleware import DATABASE_UNAVAILABLE
from tests.security.test_faults_concurrency import server_env
from usage.models import RequestLog

ROOT = Path(__file__).resolve().parents[2]
HI = [{"role": "user", "content": "hi"}]
ON_POSTGRES = dj.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL (a server process whose database sessions can be ended); runs "
    "in bin/test's PostgreSQL pass",
)
pytestmark = pytest.mark.django_db(transaction=True)


def _refuse_queries(execute, sql, params, many, context):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@pytest.fixture
def editor_client(db):
    user = User.objects.create_user("ed", password="pw")
    user.groups.add(Group.objects.get_or_create(name="editor")[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def configured(upstream, make_provider):
    provider = make_provider(name="pa", base_url=upstream.base_url + "/v1")
    services.default_model_set(provider=provider, model="m", actor="test")
    _, token = token_create(name="app", actor="test")
    return token


# --- Queries failing inside this process (SQLite and PostgreSQL). ---


def test_dashboard_shows_a_clear_503_page_when_the_database_fails(editor_client):
    with connection.execute_wrapper(_refuse_queries):
        response = editor_client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"]
    page = response.content.decode()
    assert DATABASE_UNAVAILABLE in page and "Temporarily unavailable" in page
    assert "Traceback" not in page and "127.0.0.1" not in page  # no internals on the page
    assert editor_client.get("/").status_code == 200  # and back, with nothing restarted


def test_gateway_answers_503_in_openai_error_shape_when_the_database_fails(configured):
    client = Client()
    headers = {"Authorization": f"Bearer {configured}"}
    with connection.execute_wrapper(_refuse_queries):
        response = client.post(
            "/v1/chat/completions",
            {"messages": HI},
            content_type="application/json",
            headers=headers,
        )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error == {
        "message": DATABASE_UNAVAILABLE,
        "type": "service_unavailable",
        "code": "database_unavailable",
        "param": None,
    }
    again = client.post(
        "/v1/chat/completions",
        {"messages": HI},
        content_type="application/json",
        headers=headers,
    )
    assert again.status_code == 200, again.content


# --- A real outage: a server process on PostgreSQL. ---


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        user=s["USER"],
        password=s["PASSWORD"] or None,
        host=s["HOST"],
        port=s["PORT"] or 5432,
        autocommit=True,
    )


@contextlib.contextmanager
def _outage(app_name: str) -> Iterator[None]:
    """This test database refuses new connections and the server's sessions are ended."""
    name = connection.settings_dict["NAME"]
    assert name.startswith("test_"), name  # never another run's database
    with _admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                [name, app_name],
            )
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


class _Server:
    def __init__(self, **extra_env: str) -> None:
        self.app_name = f"routing-fault-{uuid.uuid4().hex[:8]}"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = server_env(
            PGAPPNAME=self.app_name,
            # Every request re-reads the configuration version: an outage cannot hide
            # behind the cached snapshot.
            ROUTING_CONFIG_RECHECK_SECONDS="0",
            ROUTING_PRELOAD_LITELLM="1",
            **extra_env,
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "routing_admin.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.wait_for(lambda: self.get("/healthz").json()["litellm"] == "loaded", 600)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.base + path, timeout=60, **kwargs)

    def chat(self, token: str) -> httpx.Response:
        return httpx.post(
            self.base + "/v1/chat/completions",
            json={"messages": HI},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )

    def wait_for(self, ready, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                if ready():
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, "the server did not get there in time"
            time.sleep(0.1)

    def stop(self) -> str:
        """A normal shutdown (SIGTERM); returns what the server wrote to stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)
        return err


@pytest.fixture
def server(configured) -> Iterator[_Server]:
    server = _Server()
    yield server
    server.stop()


@postgres_only
def test_database_outage_shows_the_503_page_and_dashboard_recovers_without_restart(server):
    client = Client()
    user = User.objects.create_user("viewer", password="pw")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    assert server.get("/", cookies=cookies).status_code == 200
    with _outage(server.app_name):
        down = server.get("/", cookies=cookies)
        assert down.status_code == 503
        assert DATABASE_UNAVAILABLE in down.text
        assert server.get("/healthz").status_code == 503
    server.wait_for(lambda: server.get("/", cookies=cookies).status_code == 200, 30)
    assert server.process.poll() is None  # the same process, never restarted


@postgres_only
def test_database_outage_gateway_answers_openai_shaped_503_and_recovers(server, configured):
    assert server.chat(configured).status_code == 200
    with _outage(server.app_name):
        down = server.chat(configured)
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "database_unavailable"
        assert down.json()["error"]["type"] == "service_unavailable"
    server.wait_for(lambda: server.chat(configured).status_code == 200, 30)
    assert server.process.poll() is None


@pytest.fixture
def slow_writer_server(configured) -> Iterator[_Server]:
    # The writer waits 5 s between batches: records queued just before an outage are still
    # in memory when it begins, and the writer's first try fails.
    server = _Server(ROUTING_REQUEST_LOG_INTERVAL_SECONDS="5")
    yield server
    server.stop()


def _queue(server: _Server) -> dict:
    return server.get("/healthz").json()["request_log"]


@postgres_only
def test_request_log_loses_no_record_across_an_outage_and_a_normal_shutdown(
    slow_writer_server, configured
):
    server = slow_writer_server
    # A first call warms the server up; once the writer has just written it, the next
    # batch is seconds away: the fast calls after it wait in the queue.
    assert server.chat(configured).status_code == 200
    server.wait_for(lambda: _queue(server)["pending"] == 0, 30)
    served = 1 + sum(server.chat(configured).status_code == 200 for _ in range(3))
    assert served == 4
    with _outage(server.app_name):
        # No write can succeed now, so what is queued stays queued until the outage ends.
        queued = _queue(server)["pending"]
        assert queued >= 1, "the writer wrote every record before the outage began"
        # The writer tries while the database is away, fails, and keeps the records.
        server.wait_for(lambda: _queue(server)["failed_writes"] >= 1, 30)
        assert _queue(server)["pending"] == queued
        assert server.chat(configured).status_code == 503
    server.wait_for(lambda: _queue(server)["pending"] == 0, 30)  # written after the outage
    assert RequestLog.objects.filter(ok=True).count() == 4
    server.wait_for(lambda: server.chat(configured).status_code == 200, 30)
    served += 1 + sum(server.chat(configured).status_code == 200 for _ in range(3))
    err = server.stop()
    # uvicorn re-raises the SIGTERM after its graceful shutdown, so atexit handlers never run.
    assert server.process.returncode in (0, -signal.SIGTERM), err
    assert "records lost" not in err
    assert RequestLog.objects.filter(ok=True).count() == served
