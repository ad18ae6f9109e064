"""A minimal OpenAI-shaped upstream on 127.0.0.1, fast enough not to be the bottleneck:
one process of its own (so the CPU of the arms never includes it), asyncio protocol,
keep-alive, pre-built answers.

`python -m bench.mock` prints the port it listens on, then serves until killed. A request
whose path starts with /b/ gets the answer "from B" instead of "from A": two providers on
one mock, so that a switch between them shows in the answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import stats
from .env import die_with_parent


def _response(text: str) -> bytes:
    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
    ).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


ANSWER_A, ANSWER_B = "from A", "from B"
_A, _B = _response(ANSWER_A), _response(ANSWER_B)


class _Upstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # Pipelined or split requests: answer each complete one, keep the rest.
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            at = head.lower().find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            first_line = head.split(b"\r\n", 1)[0]
            self.transport.write(_B if b" /b/" in first_line else _A)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Upstream, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


@dataclass
class Mock:
    process: subprocess.Popen
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return stats.cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start() -> Mock:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.mock"],
        preexec_fn=die_with_parent,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Mock(process=process, port=int(process.stdout.readline()))


def throughput(mock: Mock, seconds: float) -> dict[str, float]:
    """What one keep-alive httpx client gets from the mock, and what the mock spends per
    request: its capacity is about 1 / cpu per request, far above any arm."""
    import httpx

    with httpx.Client() as client:
        url = mock.base_url + "/v1/chat/completions"
        cpu0, done = mock.cpu_seconds(), 0
        started = time.perf_counter()
        end = started + seconds
        while time.perf_counter() < end:
            client.post(url, content=b'{"model": "bench-model"}')
            done += 1
        wall = time.perf_counter() - started
        cpu = mock.cpu_seconds() - cpu0
    per_request = cpu / done
    return {
        "client_rps": done / wall,
        "mock_cpu_ms_per_request": per_request * 1000,
        "mock_capacity_rps": 1 / per_request if per_request else float("inf"),
    }


if __name__ == "__main__":
    os.environ.pop("PYTHONASYNCIODEBUG", None)
    asyncio.run(_serve())
