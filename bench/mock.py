"""A minimal OpenAI-shaped upstream on 127.0.0.1, fast enough not to be the bottleneck:
one process of its own (so the CPU of the arms never includes it), asyncio protocol,
keep-alive, pre-built answers.

`python -m bench.mock` prints the port it listens on, then serves until killed. A request
whose path starts with /b/ gets the answer "from B" instead of "from A": two providers on
one mock, so that a switch between them shows in the answer.

A request whose body asks for `"stream": true` gets server-sent events instead: CHUNKS chunks
(`python -m bench.mock CHUNKS DELAY_MS`), DELAY_MS apart, then `data: [DONE]`. Each chunk's
content is the time.monotonic() at which the mock wrote it (one clock for every process on
the machine), so a client can tell how long each chunk took to reach it, through whatever
sits between.
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
CHUNKS, CHUNK_DELAY_MS = 20, 1.0
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _event(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return _http_chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _streamed(body: bytes) -> bool:
    return b'"stream": true' in body or b'"stream":true' in body


class _Upstream(asyncio.Protocol):
    chunks, delay = CHUNKS, CHUNK_DELAY_MS / 1000

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""
        self.streaming = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._answer()

    def _answer(self) -> None:
        # Pipelined or split requests: answer each complete one, keep the rest; a request
        # behind a stream waits for the stream to end.
        while not self.streaming:
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
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            if _streamed(body):
                self.streaming = True
                # Held, so that the task is not collected while it runs.
                self.task = asyncio.get_running_loop().create_task(self._stream())
                return
            first_line = head.split(b"\r\n", 1)[0]
            self.transport.write(_B if b" /b/" in first_line else _A)

    async def _stream(self) -> None:
        self.transport.write(_STREAM_HEAD + _event({"role": "assistant", "content": ""}))
        for i in range(self.chunks):
            if i and self.delay:
                await asyncio.sleep(self.delay)
            if self.transport is None:
                return
            self.transport.write(_event({"content": f"{time.monotonic():.7f} "}))
        usage = {
            "prompt_tokens": 5,
            "completion_tokens": self.chunks,
            "total_tokens": 5 + self.chunks,
        }
        self.transport.write(
            _event({}, "stop", usage) + _http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        )
        self.streaming = False
        self._answer()


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


def start(chunks: int = CHUNKS, delay_ms: float = CHUNK_DELAY_MS) -> Mock:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.mock", str(chunks), str(delay_ms)],
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
    if len(sys.argv) > 2:
        _Upstream.chunks, _Upstream.delay = int(sys.argv[1]), float(sys.argv[2]) / 1000
    asyncio.run(_serve())
