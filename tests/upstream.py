"""A fake model provider on 127.0.0.1 that records what it receives.

Tests do not mock LiteLLM: they point a provider's base URL at an `Upstream` and
check the request LiteLLM really built. The server speaks just enough of each
wire format (OpenAI and its many clones, Azure OpenAI, Anthropic, Gemini, Ollama)
for litellm to parse the answers, streamed or not.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# A forgotten hang() must not stall a test run for ever.
MAX_HANG_SECONDS = 60.0
GEMINI_CALL = re.compile(
    r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)


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

    def fail_next(self, status: int, body: dict | str | None = None, times: int = 1) -> None:
        if body is None:
            body = {
                "error": {
                    "message": f"{self.name} answered {status}",
                    "type": "upstream_error",
                    "code": status,
                }
            }
        with self._lock:
            self._failures += [(status, body)] * times

    def hang(self, seconds: float) -> None:
        self._hang_seconds = min(max(seconds, 0.0), MAX_HANG_SECONDS)

    def tool_call(self, name: str, arguments: dict) -> None:
        self._tool_call = (name, arguments)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures: list[tuple[int, dict | str]] = []
        self._hang_seconds = 0.0
        self._tool_call: tuple[str, dict] | None = None

    @property
    def last(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError(f"{self.name} has received no request")
            return self.requests[-1]

    def __repr__(self) -> str:
        return f"<Upstream {self.name} {self.base_url or '(stopped)'}>"

    # Called from handler threads.

    def _record(self, request: RecordedRequest) -> tuple[int, dict | str] | None:
        with self._lock:
            self.requests.append(request)
            return self._failures.pop(0) if self._failures else None

    def _wait_if_hanging(self) -> None:
        if self._hang_seconds:
            self._stopping.wait(self._hang_seconds)

    def _tool_call_for(self, body: dict) -> tuple[str, dict] | None:
        # Answering a tool result with the same call again would loop an agent for ever.
        if self._tool_call and body.get("tools") and not _ends_with_tool_result(body):
            return self._tool_call
        return None


def _ends_with_tool_result(body: dict) -> bool:
    messages = body.get("messages") or body.get("contents") or []
    if not messages:
        return False
    last = messages[-1]
    if last.get("role") == "tool":
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
            status, body = failure
            self._send(status, body)
            return
        try:
            body = request.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        route = _route(request)
        if route is None:
            self._send(404, {"error": {"message": f"no route for {request.path}", "code": 404}})
            return
        try:
            answer = route(upstream, request, body)
        except Exception as error:
            # A bug in this fake should read as one, not as a dropped connection in litellm.
            self._send(500, {"error": {"message": f"fake upstream failed: {error!r}"}})
            return
        if isinstance(answer, _Stream):
            self._send_stream(answer)
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

    def _send(self, status: int, body: dict | str) -> None:
        if isinstance(body, str):
            data = body.encode()
            content_type = "application/json" if _is_json(body) else "text/plain"
        else:
            data = json.dumps(body).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, stream: _Stream) -> None:
        # HTTP/1.0 without Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", stream.content_type)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for event in stream.events:
            self.wfile.write(event.encode())
            self.wfile.flush()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@dataclass
class _Stream:
    content_type: str
    events: list[str]


def _sse(events: list[dict], done: bool = False, named: bool = False) -> _Stream:
    lines = [
        (f"event: {event['type']}\n" if named else "") + f"data: {json.dumps(event)}\n\n"
        for event in events
    ]
    if done:
        lines.append("data: [DONE]\n\n")
    return _Stream("text/event-stream", lines)


def _route(request: RecordedRequest) -> Callable[..., dict | _Stream] | None:
    path = request.path.rstrip("/")
    if request.method == "POST":
        if path.endswith("/chat/completions"):
            return _openai_chat
        if path.endswith("/v1/messages"):
            return _anthropic_messages
        if GEMINI_CALL.search(path):
            return _gemini_generate
        if path.endswith("/api/chat") or path.endswith("/api/generate"):
            return _ollama_chat
        if path.endswith("/api/show"):
            return _ollama_show
    elif request.method == "GET":
        if path.endswith("/v1beta/models"):
            return _gemini_models
        if path.endswith("/models"):
            return _model_list
        if path.endswith("/api/tags"):
            return _ollama_tags
    return None


def _pieces(text: str, at_least: int = 3) -> list[str]:
    """Split text into at least `at_least` pieces that join back to it."""
    words = re.findall(r"\S+\s*|\s+", text)
    if len(words) >= at_least:
        return words
    size = max(1, -(-len(text) // at_least))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _usage(text: str) -> tuple[int, int]:
    return 7, max(1, len(text.split()))


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


# OpenAI and everything that copies its wire format, Azure OpenAI included.


def _openai_chat(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | _Stream:
    model = body.get("model") or request.path.split("/deployments/")[-1].split("/")[0]
    text = upstream.reply_text
    call = upstream._tool_call_for(body)
    prompt_tokens, completion_tokens = _usage(text)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    # litellm's groq adapter reads service_tier without a default, as Groq always sends it.
    head = {
        "id": _new_id("chatcmpl-"),
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": None,
    }
    if call:
        tool = {
            "id": _new_id("call_"),
            "type": "function",
            "function": {"name": call[0], "arguments": json.dumps(call[1])},
        }
        message, finish = {"role": "assistant", "content": None, "tool_calls": [tool]}, "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": text}, "stop"
    if not body.get("stream"):
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        return {**head, "object": "chat.completion", "choices": [choice], "usage": usage}

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {**head, "object": "chat.completion.chunk", "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if call:
        first = {**tool, "index": 0, "function": {"name": call[0], "arguments": ""}}
        chunks.append(chunk({"tool_calls": [first]}))
        for piece in _pieces(tool["function"]["arguments"]):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    else:
        chunks += [chunk({"content": piece}) for piece in _pieces(text)]
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(chunk({}, finish))
        chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    else:
        # Usage on the last chunk, as Groq and vLLM send it: without it litellm counts tokens
        # itself and, for llama-like names, tries to download a tokenizer from the Hugging Face hub.
        chunks.append({**chunk({}, finish), "usage": usage})
    return _sse(chunks, done=True)


def _model_list(upstream: Upstream, request: RecordedRequest, body: dict) -> dict:
    # One shape that satisfies both OpenAI's and Anthropic's model-list clients.
    data = [
        {
            "id": model,
            "object": "model",
            "type": "model",
            "display_name": model,
            "created": 1700000000,
            "created_at": "2024-01-01T00:00:00Z",
            "owned_by": upstream.name,
        }
        for model in upstream.models
    ]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"object": "list", "data": data, "has_more": False, "first_id": first, "last_id": last}


# Anthropic.


def _anthropic_messages(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | _Stream:
    text = upstream.reply_text
    call = upstream._tool_call_for(body)
    input_tokens, output_tokens = _usage(text)
    if call:
        content = [{"type": "tool_use", "id": _new_id("toolu_"), "name": call[0], "input": call[1]}]
        stop = "tool_use"
    else:
        content, stop = [{"type": "text", "text": text}], "end_turn"
    message = {
        "id": _new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    if not body.get("stream"):
        return message
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": input_tokens, "output_tokens": 1}
    if call:
        block = {**content[0], "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in _pieces(json.dumps(call[1]))
        ]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(text)]
    events = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": block},
        *({"type": "content_block_delta", "index": 0, "delta": delta} for delta in deltas),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]
    return _sse(events, named=True)


# Gemini (Google AI Studio).


def _gemini_generate(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | _Stream:
    match = GEMINI_CALL.search(request.path.rstrip("/"))
    assert match is not None
    text = upstream.reply_text
    call = upstream._tool_call_for(body)
    prompt_tokens, completion_tokens = _usage(text)
    usage = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": completion_tokens,
        "totalTokenCount": prompt_tokens + completion_tokens,
    }

    def answer(parts: list[dict], finish: str | None) -> dict:
        candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": match["model"]}

    if call:
        parts = [[{"functionCall": {"name": call[0], "args": call[1]}}]]
    else:
        parts = [[{"text": piece}] for piece in _pieces(text)]
    if match["method"] == "generateContent":
        return answer([part for chunk in parts for part in chunk], "STOP")
    return _sse([answer(p, "STOP" if i == len(parts) - 1 else None) for i, p in enumerate(parts)])


def _gemini_models(upstream: Upstream, request: RecordedRequest, body: dict) -> dict:
    models = [
        {
            "name": f"models/{model}",
            "displayName": model,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        for model in upstream.models
    ]
    return {"models": models}


# Ollama.


def _ollama_chat(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | _Stream:
    text = upstream.reply_text
    call = upstream._tool_call_for(body)
    prompt_tokens, completion_tokens = _usage(text)
    generate = request.path.rstrip("/").endswith("/api/generate")
    head = {"model": body.get("model", ""), "created_at": "2024-01-01T00:00:00Z"}
    done = {
        "done": True,
        "done_reason": "stop",
        "total_duration": 1000,
        "prompt_eval_count": prompt_tokens,
        "eval_count": completion_tokens,
    }

    def piece_of(piece: str) -> dict:
        if generate:
            return {"response": piece}
        return {"message": {"role": "assistant", "content": piece}}

    if call:
        tool = {"function": {"name": call[0], "arguments": call[1]}}
        pieces = [{"message": {"role": "assistant", "content": "", "tool_calls": [tool]}}]
    else:
        pieces = [piece_of(piece) for piece in _pieces(text)]
    # Ollama streams unless told otherwise.
    if body.get("stream", True) is False:
        merged = piece_of(text) if not call else pieces[0]
        return {**head, **merged, **done}
    lines = [json.dumps({**head, **piece, "done": False}) + "\n" for piece in pieces]
    lines.append(json.dumps({**head, **piece_of(""), **done}) + "\n")
    return _Stream("application/x-ndjson", lines)


def _ollama_show(upstream: Upstream, request: RecordedRequest, body: dict) -> dict:
    return {
        "template": "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}",
        "details": {"family": "llama", "parameter_size": "8B"},
        "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
        "capabilities": ["completion", "tools"],
    }


def _ollama_tags(upstream: Upstream, request: RecordedRequest, body: dict) -> dict:
    models = [
        {"name": model, "model": model, "modified_at": "2024-01-01T00:00:00Z", "size": 1}
        for model in upstream.models
    ]
    return {"models": models}


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
