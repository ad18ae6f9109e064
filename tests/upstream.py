"""A fake model provider on 127.0.0.1 that records what it receives.

Tests do not mock LiteLLM: they point a provider's base URL at an `Upstream` and
check the request LiteLLM really built. The server speaks just enough of each
wire format (OpenAI and its many clones, Azure OpenAI, Anthropic, Gemini, Ollama, Bedrock's
Converse, Vertex AI) for litellm to parse the answers, streamed or not;
the answers themselves are in tests/upstream_routes.py and, for the clouds' model services,
tests/upstream_clouds.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.upstream_routes import Refusal, Stream, missing_query, route_for

# A forgotten hang() must not stall a test run for ever.
MAX_HANG_SECONDS = 60.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Upstream:
    def __init__(self, name: str = "upstream") -> None:
        self.name = name
        self.reply_text = f"Hello from {name}"
        self.models = [f"{name}-model-a", f"{name}-model-b"]
        self.requests: list[RecordedRequest] = []
        self.base_url = ""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    def start(self) -> Upstream:
        # Binding here, before returning, is what makes the server ready: no readiness sleep.
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.upstream = self
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers sleeping in hang()
        if self._request_gate:
            self._request_gate.set()  # and requests held by hold()
        if self._stream_gate:
            self._stream_gate[1].set()  # and streams held by hold_stream()
        server, self._server = self._server, None
        if server is None:
            return
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        # A connection wakes serve_forever at once; left to its poll, shutdown took
        # up to half a second on a busy machine.
        with contextlib.suppress(OSError):
            socket.create_connection(server.server_address, timeout=1).close()
        stopper.join()
        server.server_close()

    def fail_next(
        self,
        status: int,
        body: dict | str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        if body is None:
            body = {
                "error": {
                    "message": f"{self.name} answered {status}",
                    "type": "upstream_error",
                    "code": status,
                }
            }
        with self._lock:
            self._failures += [(status, body, headers or {})] * times

    def hang(self, seconds: float) -> None:
        self._hang_seconds = min(max(seconds, 0.0), MAX_HANG_SECONDS)

    def hold(self) -> threading.Event:
        """Every request, once recorded, waits until the returned event is set (at most
        MAX_HANG_SECONDS) before it is answered: a test acts while a call is in flight, and
        ends the wait when it is done, not after a guessed time."""
        gate = threading.Event()
        self._request_gate = gate
        return gate

    def hold_stream(self, after: int) -> threading.Event:
        """Streamed answers send their first `after` events, then wait until the returned
        event is set (at most MAX_HANG_SECONDS) before the rest; `stream_finished` is set once
        the last one is sent. A test sees whether chunks reach it while the stream is open."""
        gate = threading.Event()
        self._stream_gate = (after, gate)
        self.stream_finished.clear()
        return gate

    def tool_call(self, name: str, arguments: dict) -> None:
        self._tool_call = (name, arguments)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures: list[tuple[int, dict | str, dict[str, str]]] = []
        self._hang_seconds = 0.0
        self._request_gate: threading.Event | None = None
        self._stream_gate: tuple[int, threading.Event] | None = None
        self.stream_finished = threading.Event()
        self._tool_call: tuple[str, dict] | None = None
        # Fields an answer leaves out (e.g. "service_tier"), as some servers do.
        self.omit_fields: set[str] = set()
        # Models per page of a paged model list (Anthropic, Gemini); None: one page.
        self.page_size: int | None = None
        # The model list's shape: "openai" ({"data": [...]}), "array" (a bare JSON array,
        # as Together answers), "info" (Azure AI's /info: one model's description).
        self.list_format = "openai"

    @property
    def last(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError(f"{self.name} has received no request")
            return self.requests[-1]

    def __repr__(self) -> str:
        return f"<Upstream {self.name} {self.base_url or '(stopped)'}>"

    # Called from handler threads.

    def wait_for(self, path: str, timeout: float = 10.0) -> list[RecordedRequest]:
        """The requests to `path`, once one has arrived: for requests LiteLLM makes from a
        background thread after the call returned. Waits on arrivals, not on a clock."""
        with self._arrived:
            self._arrived.wait_for(lambda: any(r.path == path for r in self.requests), timeout)
            return [r for r in self.requests if r.path == path]

    def _record(self, request: RecordedRequest) -> tuple[int, dict | str, dict] | None:
        with self._lock:
            self.requests.append(request)
            self._arrived.notify_all()
            return self._failures.pop(0) if self._failures else None

    def _wait_if_hanging(self) -> None:
        if self._request_gate:
            self._request_gate.wait(MAX_HANG_SECONDS)
        if self._hang_seconds:
            self._stopping.wait(self._hang_seconds)

    def _tool_call_for(self, body: dict) -> tuple[str, dict] | None:
        # Answering a tool result with the same call again would loop an agent for ever.
        if self._tool_call and body.get("tools") and not _ends_with_tool_result(body):
            return self._tool_call
        return None


def _ends_with_tool_result(body: dict) -> bool:
    messages = body.get("messages") or body.get("contents") or body.get("input") or []
    if not messages or not isinstance(messages, list):
        return False
    last = messages[-1]
    # "function_call_output": a tool's result in the Responses API's input.
    if last.get("role") == "tool" or last.get("type") == "function_call_output":
        return True
    parts = last.get("content") if isinstance(last.get("content"), list) else last.get("parts")
    return any(
        isinstance(p, dict)
        and (p.get("type") == "tool_result" or "functionResponse" in p or "function_response" in p)
        for p in parts or []
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream

    def handle_error(self, request, client_address) -> None:
        # Clients that time out and hang up are expected: tests assert on what was recorded.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        upstream = self.server.upstream
        url = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )
        failure = upstream._record(request)
        upstream._wait_if_hanging()
        if failure:
            status, body, headers = failure
            self._send(status, body, headers)
            return
        try:
            body = request.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        missing = missing_query(request)
        if missing:
            # As the vendor does: a required query parameter missing is a 400, not an answer.
            message = f"missing required query parameter {missing!r}"
            self._send(400, {"error": {"code": "MissingApiVersionParameter", "message": message}})
            return
        route = route_for(request)
        if route is None:
            self._send(404, {"error": {"message": f"no route for {request.path}", "code": 404}})
            return
        try:
            answer = route(upstream, request, body)
        except Exception as error:
            # A bug in this fake should read as one, not as a dropped connection in litellm.
            self._send(500, {"error": {"message": f"fake upstream failed: {error!r}"}})
            return
        if isinstance(answer, Stream):
            self._send_stream(answer)
        elif isinstance(answer, Refusal):
            self._send(answer.status, answer.body)
        else:
            self._send(200, answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _send(
        self, status: int, body: dict | list | str, headers: dict[str, str] | None = None
    ) -> None:
        if isinstance(body, str):
            data = body.encode()
            content_type = "application/json" if _is_json(body) else "text/plain"
        else:
            data = json.dumps(body).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, stream: Stream) -> None:
        # HTTP/1.0 without Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", stream.content_type)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        upstream = self.server.upstream
        held = upstream._stream_gate
        for number, event in enumerate(stream.events):
            if held and number == held[0]:
                held[1].wait(MAX_HANG_SECONDS)
            self.wfile.write(event if isinstance(event, bytes) else event.encode())
            self.wfile.flush()
        upstream.stream_finished.set()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# Fixtures, imported by tests/conftest.py.


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream_factory() -> Iterator[Callable[[str], Upstream]]:
    started: list[Upstream] = []

    def make(name: str = "upstream") -> Upstream:
        server = Upstream(name).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
