"""Two app instances as two hosts, started the way production starts them (issue 16).

- its own redis-server (bench/redis_server.py) on a free port, so that a test can stop it
  and start it again;
- its own PostgreSQL database, `multihost_<pid>` on the server of ROUTING_TEST_POSTGRES_URL
  (by default 127.0.0.1:5432, user postgres), migrated once and dropped at the end;
- the configuration made with the command line (`manage.py routing ...`), as a person would;
- hosts A on 127.0.0.2 and B on 127.0.0.3, each the README's production command
  (`uvicorn routing_admin.asgi:application --workers 2 --host ... --timeout-worker-healthcheck
  30`) with an environment of its own.

Loopback addresses rather than network namespaces: PostgreSQL, Redis and the recording
upstreams (tests/upstream.py) listen on this machine's 127.0.0.1, which a namespace cannot
reach without a relay or a reconfigured PostgreSQL. What the app could share by accident
between two hosts (memory, a lock file, a socket) is not shared between two process trees;
what it must share goes through the database and Redis, as between machines.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai
import psycopg
import redis
from cryptography.fernet import Fernet
from psycopg import sql

from bench.env import die_with_parent, stop_process
from bench.redis_server import RedisServer
from bench.redis_server import binary as redis_binary
from limits import ledger, redis_backend
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("ROUTING_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
ADDRESSES = {"A": "127.0.0.2", "B": "127.0.0.3"}
WORKERS = 2
# Four workers import LiteLLM at once, on a 2-core machine others share.
START_SECONDS = 120.0
STARTED = "Application startup complete."
# The safety-net re-read of the configuration, far above every bound the tests state: only
# the change notification (LISTEN/NOTIFY) can meet them.
RECHECK_SECONDS = "60"
# Answers in a row, each on a connection of its own (which the kernel hands to either of a
# host's workers), before a host counts as having seen a change.
IN_A_ROW = 8
ADMIN, PASSWORD = "admin", "multihost-Password-1234"
MODELS = {"old": "old-model-a", "new": "new-model-a"}
HI = [{"role": "user", "content": "hi"}]
KEY_VARIABLE = "MULTIHOST_PROVIDER_KEY"
RPM = 10
# Every token the tests call with, made at the start with `routing token create`.
TOKENS = {
    "switch": (),
    "rpm": ("--rpm", str(RPM)),
    "revoke-me": (),
    "outage": ("--rpm", str(RPM)),
}
# A team with a budget in US dollars for all its tokens together, and two of its tokens.
TEAM = "spenders"
TEAM_BUDGET_USD = "0.0003"
TEAM_TOKENS = ("team-1", "team-2")
# ROUTING_LIMITS_ON_REDIS_FAILURE: one host of each, so that one Redis outage shows both
# modes held, each on its own host (a second pair of hosts would double the test's time).
FAILURE_MODES = {"A": "closed", "B": "open"}


def wait_until[T](condition: Callable[[], T], bound: float, what: str, interval=0.02) -> T:
    """Poll `condition` until it is true, and return it; fail once `bound` seconds passed."""
    deadline = time.monotonic() + bound
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound:g} s: {what}")
        time.sleep(interval)


def unavailable() -> str:
    """Why this machine cannot run the harness; "" when it can."""
    if redis_binary() is None:
        return "tests/multihost needs Debian's redis-server (bin/test installs it)"
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        where = f"{urlsplit(PG_URL).hostname}:{urlsplit(PG_URL).port or 5432}"  # no password
        return f"tests/multihost needs PostgreSQL at {where}: {str(exc).strip()[:200]}"
    for address in ADDRESSES.values():
        try:
            socket.create_server((address, 0)).close()
        except OSError as exc:
            return f"tests/multihost cannot listen on {address}: {exc}"
    return ""


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


class Database:
    def __init__(self) -> None:
        self.name = f"multihost_{os.getpid()}"
        self.url = urlunsplit(urlsplit(PG_URL)._replace(path="/" + self.name))

    def _server(self, statement: sql.Composable) -> None:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(statement)

    def create(self) -> None:
        self.drop()  # left over by a run that was killed, with the same pid
        self._server(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        # FORCE: a host killed mid-request may leave a session for a moment.
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self._server(drop.format(sql.Identifier(self.name)))

    def query(self, statement: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.url, connect_timeout=3) as conn:
            return conn.execute(statement, params).fetchall()


class Host:
    """One machine: the production command on an address of its own, 2 workers."""

    def __init__(self, name: str, address: str, env: dict[str, str], log: Path) -> None:
        self.name, self.address, self.env, self.log = name, address, env, log
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.base_url}>"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def start(self) -> None:
        self.port = _free_port(self.address)
        uvicorn = Path(sys.executable).with_name("uvicorn")
        self.process = subprocess.Popen(
            [str(uvicorn), "routing_admin.asgi:application", "--workers", str(WORKERS)]
            + ["--host", self.address, "--port", str(self.port)]
            + ["--timeout-worker-healthcheck", "30"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _started(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"host {self.name} exited:\n{self.output()[-3000:]}")
        return self.output().count(STARTED) >= WORKERS

    def wait_started(self) -> None:
        try:
            wait_until(self._started, START_SECONDS, f"host {self.name}'s {WORKERS} workers")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()[-3000:]}") from None

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, 30)

    def client(self, token: str, *, fresh: bool = False) -> openai.OpenAI:
        """The official client on this host; `fresh`: a new connection for every call, so
        that calls reach either worker, not the one a kept-alive connection is tied to."""
        return openai.OpenAI(
            base_url=self.base_url + "/v1",
            api_key=token,
            max_retries=0,  # a 429 must be seen, not retried
            timeout=30,
            default_headers={"Connection": "close"} if fresh else None,
        )

    def get(self, path: str, **kwargs) -> httpx.Response:
        headers = {"connection": "close", **kwargs.pop("headers", {})}
        return httpx.get(self.base_url + path, headers=headers, timeout=30, **kwargs)

    def healthz(self) -> dict:
        return self.get("/healthz").json()


class Dashboard:
    """A person signed in on one host's dashboard: what they do there, that host does."""

    def __init__(self, host: Host) -> None:
        self.http = httpx.Client(base_url=host.base_url, timeout=30)
        self.http.get("/login/").raise_for_status()  # sets the CSRF cookie
        self.post("/login/", {"username": ADMIN, "password": PASSWORD})

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        form = {**data, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]}
        response = self.http.post(path, data=form)
        # The dashboard answers a form it accepted with a redirect, one it refused with 200/4xx.
        assert response.status_code == 302, f"POST {path}: {response.status_code}"
        return response

    def close(self) -> None:
        self.http.close()


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis = RedisServer(tmp)
        self.database = Database()
        self.upstreams = {name: Upstream(name) for name in MODELS}
        self.secret_key = secrets.token_urlsafe(50)
        self.encryption_key = Fernet.generate_key().decode()
        self.hosts: dict[str, Host] = {}
        self.tokens: dict[str, str] = {}

    # --- the environment each machine has ---------------------------------------------

    def env(self, host: str = "A") -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTING_", "DJANGO_"))}
        return {
            **base,
            "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
            "DATABASE_URL": self.database.url,
            "SECRET_KEY": self.secret_key,
            "ROUTING_ENCRYPTION_KEYS": self.encryption_key,
            # Plain HTTP on a loopback address, as the README's reverse-proxy setup has it
            # behind the proxy; empty values keep a developer's .env out of it.
            "ROUTING_HTTPS_REDIRECT": "0",
            "ROUTING_PROXY_SSL_HEADER": "",
            "ROUTING_DEV_KEY_IDS": "",
            "DEBUG": "",
            "ALLOWED_HOSTS": ADDRESSES[host],
            "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
            "ROUTING_REDIS_URL": self.redis.url,
            "ROUTING_LIMITS_ON_REDIS_FAILURE": FAILURE_MODES[host],
            "ROUTING_PRELOAD_LITELLM": "1",
            "ROUTING_CONFIG_RECHECK_SECONDS": RECHECK_SECONDS,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LOG_LEVEL": "WARNING",
            KEY_VARIABLE: "sk-multihost-" + "0" * 24,
        }

    # --- the command line, on one host ---------------------------------------------

    def start_manage(self, *args: str, host: str = "A", stdin: str | None = None):
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(host),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )

    @staticmethod
    def finish(process: subprocess.Popen, stdin: str | None = None) -> str:
        out, err = process.communicate(stdin, timeout=120)
        assert process.returncode == 0, f"{process.args[2:]} exited {process.returncode}:\n{err}"
        return out

    def routing(self, *args: str, host: str = "A", stdin: str | None = None) -> str:
        return self.finish(self.start_manage("routing", *args, host=host, stdin=stdin), stdin)

    def token(self, name: str) -> str:
        """One of TOKENS or TEAM_TOKENS, once every worker of both hosts accepts it."""
        raw = self.tokens[name]
        for host in self.hosts.values():
            wait_until(
                lambda h=host: all(
                    h.get("/v1/models", headers={"authorization": f"Bearer {raw}"}).status_code
                    == 200
                    for _ in range(IN_A_ROW)
                ),
                10,
                f"token {name} accepted on host {host.name}",
            )
        return raw

    def dashboard(self, host: str) -> Dashboard:
        return Dashboard(self.hosts[host])

    # --- what was shared ----------------------------------------------------------------

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, socket_timeout=2)

    def redis_count(self, token: str) -> int:
        client = self.redis_client()
        try:
            key = redis_backend.subject_base(ledger.spend_key("token", token)) + ":rpm"
            return client.zcard(key)
        finally:
            client.close()

    def chat_calls(self) -> int:
        """Chat completions the providers received, both of them together."""
        return sum(
            r.path.endswith("/chat/completions")
            for upstream in self.upstreams.values()
            for r in list(upstream.requests)
        )

    # --- start and stop -----------------------------------------------------------------

    def start(self) -> Cluster:
        for upstream in self.upstreams.values():
            upstream.start()
        self.redis.start()
        self.database.create()
        self.finish(self.start_manage("migrate", "--no-input", "-v", "0"))
        for name, address in ADDRESSES.items():
            log = self.tmp / f"host-{name}.log"
            self.hosts[name] = Host(name, address, self.env(name), log)
            self.hosts[name].start()
        self._seed()
        for host in self.hosts.values():
            host.wait_started()
        return self

    def _seed(self) -> None:
        """Two providers on the recording upstreams, an admin, the tokens, a team with a budget
        and its tokens, then the default on "old": with the command line, while the hosts
        start."""
        started = [
            self.start_manage(
                *("routing", "provider", "add", "--name", name, "--kind", "openai"),
                *("--base-url", upstream.base_url + "/v1", "--api-key-env", KEY_VARIABLE),
            )
            for name, upstream in self.upstreams.items()
        ]
        tokens = {
            name: self.start_manage("routing", "token", "create", name, *options)
            for name, options in TOKENS.items()
        }
        team = self.start_manage("routing", "team", "add", TEAM)
        user = ("routing", "user", "add", ADMIN, "--role", "admin", "--password-stdin")
        self.finish(self.start_manage(*user, stdin=PASSWORD), PASSWORD)
        for process in [*started, team]:
            self.finish(process)
        # Then, at once, what needs the providers or the team. A total budget: it never
        # resets, so no test depends on the day it runs.
        budget = ("--budget", f"{TEAM_BUDGET_USD}/total")
        then = [
            self.start_manage("routing", "default", "set", "old", MODELS["old"]),
            self.start_manage("routing", "team", "limits", TEAM, *budget),
        ]
        for name in TEAM_TOKENS:
            tokens[name] = self.start_manage("routing", "token", "create", name, "--team", TEAM)
        self.tokens = {name: self.finish(process).strip() for name, process in tokens.items()}
        for process in then:
            self.finish(process)

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()
        self.redis.stop()
        for upstream in self.upstreams.values():
            upstream.stop()
        self.database.drop()
