"""A redis-server of one's own: Debian's binary on a free port of 127.0.0.1, without
persistence, its files in a directory of the caller's (the bench's temporary one, a test's).
It can be stopped and started again on the same port, as a Redis outage would look to the
app. The bench counts limits in it; tests/multihost stops it mid-run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .env import die_with_parent, stop_process
from .servers import free_port

NOT_INSTALLED = "redis-server is not installed (Debian: apt-get install redis-server)."
READY_SECONDS = 10.0


def binary() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()),
        None,
    )


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.log = directory / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Started, and answering PING, when this returns; again on the same port after
        stop()."""
        path = binary()
        if path is None:
            raise RuntimeError(NOT_INSTALLED)
        self.process = subprocess.Popen(
            [path, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.directory), "--logfile", str(self.log)],
            preexec_fn=die_with_parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_SECONDS
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text()[-500:] if self.log.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}: {tail}")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Gone when this returns: its port refuses connections."""
        process, self.process = self.process, None
        stop_process(process, 10)
