"""`bin/test -h` explains the test command and starts nothing (no uv sync, no apt-get); the
service helpers it sources (bin/_services.sh) detect PostgreSQL and Redis, and install and start
Redis the documented way, checked here with fake apt-get and redis-server (nothing is installed)."""

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "bin" / "_services.sh"


def _fake(directory: Path, tool: str, log: Path, *, status: int = 1) -> None:
    """A stand-in that writes its name and each argument (bracketed, one a line) to log."""
    fake = directory / tool
    fake.write_text(
        f'#!/bin/sh\necho "{tool}" >> {log}\nfor a in "$@"; do echo "[$a]" >> {log}; done\n'
        f"exit {status}\n"
    )
    fake.chmod(0o755)


def _fake_sudo(directory: Path) -> None:
    # As a non-root user the helpers prefix `sudo -n`: run the (fake) command itself.
    fake = directory / "sudo"
    fake.write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    fake.chmod(0o755)


def _bash(script: str, path: str) -> subprocess.CompletedProcess:
    """Runs script in strict mode after sourcing bin/_services.sh, with PATH set to path."""
    return subprocess.run(
        ["/bin/bash", "-c", f"set -euo pipefail\n. {SERVICES}\n{script}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        timeout=60,
    )


def _only(directory: Path, *tools: str) -> str:
    """A PATH holding directory and links to just these system tools (no redis-cli/-server)."""
    for tool in tools:
        # python3 on PATH may be a shim that needs the rest of PATH: link this interpreter.
        (directory / tool).symlink_to(sys.executable if tool == "python3" else shutil.which(tool))
    return str(directory)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pong_port():
    """A TCP server on 127.0.0.1 that answers every connection like Redis answers PING."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(64)
                conn.sendall(b"+PONG\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_markers_and_options_without_running_anything(tmp_path, flag):
    called = tmp_path / "called"
    tools = ("uv", "apt-get", "sudo", "pytest", "pg_ctlcluster", "pg_createcluster")
    for tool in (*tools, "redis-cli", "redis-server"):
        _fake(tmp_path, tool, called)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    result = subprocess.run(
        [str(ROOT / "bin" / "test"), flag], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert not called.exists(), called.read_text()
    out = result.stdout
    assert out.startswith("Usage: bin/test")
    for needle in ("browser", "live", "-k completion", "PostgreSQL", "env -u DATABASE_URL"):
        assert needle in out, needle
    for needle in ("postgresql", "pg_ctlcluster", "database test", "Redis", "redis-server"):
        assert needle in out, needle
    assert "ROUTING_TEST_REDIS_URL (default redis://127.0.0.1:6379/15)" in out
    assert result.stderr == ""


def test_redis_answers_with_redis_cli_or_without_it(tmp_path, pong_port):
    closed = _free_port()
    script = f"""
redis_answers 127.0.0.1 {pong_port} && echo answers
if redis_answers 127.0.0.1 {closed}; then echo closed-answers; else echo closed-silent; fi
tcp_answers 127.0.0.1 {pong_port} && echo tcp
"""
    paths = [_only(tmp_path, "python3", "id")]  # no redis-cli: the python check
    if shutil.which("redis-cli"):
        paths.append("/usr/bin:/bin")
    for path in paths:
        result = _bash(script, path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["answers", "closed-silent", "tcp"], path


def test_setup_redis_starts_nothing_when_redis_answers(tmp_path, pong_port):
    called = tmp_path / "called"
    for tool in ("apt-get", "redis-server", "mkdir"):
        _fake(tmp_path, tool, called)
    _fake_sudo(tmp_path)
    result = _bash(f"setup_redis {pong_port} && echo ready", f"{tmp_path}:/usr/bin:/bin")
    assert result.stdout.split() == ["ready"], result.stderr
    assert not called.exists(), called.read_text()


def test_setup_redis_starts_redis_server_without_persistence_and_fails_softly(tmp_path):
    called = tmp_path / "called"
    _fake(tmp_path, "apt-get", called)
    _fake(tmp_path, "mkdir", called, status=0)
    _fake(tmp_path, "redis-server", called, status=0)  # "starts", yet nothing will answer
    _fake_sudo(tmp_path)
    port = _free_port()
    result = _bash(f"setup_redis {port} || echo gave-up", f"{tmp_path}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gave-up"]
    log = called.read_text()
    assert "apt-get" not in log  # redis-server is there: nothing to install
    assert "mkdir\n[-p]\n[/var/lib/redis]\n[/var/log/redis]\n" in log
    expected = [
        *("--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(port)),
        *("--save", "", "--appendonly", "no", "--dir", "/var/lib/redis"),
        *("--logfile", "/var/log/redis/ci.log"),
    ]
    assert "redis-server\n" + "".join(f"[{a}]\n" for a in expected) in log


def test_setup_redis_installs_debians_package_noninteractively_when_missing(tmp_path):
    called = tmp_path / "called"
    _fake(tmp_path, "apt-get", called, status=0)  # "installs", yet no redis-server appears
    _fake(tmp_path, "mkdir", called, status=0)
    _fake_sudo(tmp_path)
    path = _only(tmp_path, "python3", "id", "env", "sleep")
    result = _bash(f"setup_redis {_free_port()} || echo gave-up", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gave-up"]
    assert "Installing Debian's redis-server" in result.stderr
    log = called.read_text()
    assert "apt-get\n[update]\n[-qq]\napt-get\n[install]\n[-y]\n[-qq]\n[redis-server]\n" in log
