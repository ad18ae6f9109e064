"""How long a switch takes to reach every gateway worker.

One keep-alive connection per worker (raw sockets: the bench finds which worker holds the
server end of each in /proc), a switch made through the service layer in this process,
then each connection asks until its worker answers from the new provider."""

from __future__ import annotations

import json
import socket
import statistics
import time

from . import env, mock, stats
from .servers import Server


class _Connection:
    def __init__(self, server: Server, body: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"authorization: Bearer {server.token}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.buffer = b""

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def ask(self) -> str:
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        while len(rest) < length:
            rest += self.sock.recv(65536)
        body, self.buffer = rest[:length], rest[length:]
        return json.loads(body)["choices"][0]["message"]["content"]

    def close(self) -> None:
        self.sock.close()


def _one_per_worker(server: Server, body: bytes) -> dict[int, _Connection]:
    pids = server.pids()
    found: dict[int, _Connection] = {}
    for _ in range(200):
        connection = _Connection(server, body)
        connection.ask()
        owner = stats.socket_owner(pids, server.port, connection.local_port)
        if owner is not None and owner not in found:
            found[owner] = connection
        else:
            connection.close()
        if len(found) >= server.workers:
            break
    return found


def measure(server: Server, body: bytes, repeats: int, timeout: float = 30.0) -> dict:
    connections = _one_per_worker(server, body)
    per_switch: list[float] = []
    try:
        for i in range(repeats):
            to_b = i % 2 == 0
            wanted = mock.ANSWER_B if to_b else mock.ANSWER_A
            env.switch(to_b)
            started = time.perf_counter()
            pending = dict(connections)
            reached: list[float] = []
            while pending and time.perf_counter() - started < timeout:
                for pid, connection in list(pending.items()):
                    if connection.ask() == wanted:
                        reached.append(time.perf_counter() - started)
                        del pending[pid]
            if pending:
                raise RuntimeError(f"switch did not reach workers {sorted(pending)}")
            per_switch.append(max(reached))
    finally:
        if repeats % 2:
            env.switch(False)
        for connection in connections.values():
            connection.close()
    return {
        "workers": server.workers,
        "workers_reached": len(connections),
        "switches": repeats,
        "median_ms": statistics.median(per_switch) * 1000,
        "max_ms": max(per_switch) * 1000,
    }
