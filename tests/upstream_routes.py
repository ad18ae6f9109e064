"""What the fake upstream answers: one function per API route, in each wire format.

A route gets the `Upstream` (its reply text, models and any tool call it was told to make),
the recorded request and its JSON body, and returns a JSON body or a `Stream`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.upstream import RecordedRequest, Upstream

GEMINI_CALL = re.compile(
    r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)


@dataclass
class Stream:
    content_type: str
    # Text (server-sent events), or bytes as sent (AWS's binary event-stream messages).
    events: list[str] | list[bytes]


@dataclass
class Refusal:
    """An error answer a route gives, as the vendor would (e.g. 400 for a malformed body)."""

    status: int
    body: dict


# Azure's routes that need ?api-version= (Azure OpenAI's deployments and model list, and
# Azure AI Foundry's model inference API); its /openai/v1 API needs none.
_NEEDS_API_VERSION = re.compile(
    r"^/openai/(deployments|models)(/|$)|/models/(chat/completions|info|embeddings)$"
)


def missing_query(request: RecordedRequest) -> str | None:
    """The query parameter the vendor requires on this route that the request lacks."""
    if _NEEDS_API_VERSION.search(request.path.rstrip("/")) and not request.query.get("api-version"):
        return "api-version"
    return None


def _sse(events: list[dict], done: bool = False, named: bool = False) -> Stream:
    lines = [
        (f"event: {event['type']}\n" if named else "") + f"data: {json.dumps(event)}\n\n"
        for event in events
    ]
    if done:
        lines.append("data: [DONE]\n\n")
    return Stream("text/event-stream", lines)


def route_for(request: RecordedRequest) -> Callable[..., dict | Stream] | None:
    # Imported here: those modules build on this one's helpers.
    from tests import upstream_clouds, upstream_embeddings

    path = request.path.rstrip("/")
    if found := upstream_clouds.route_for(request.method, path):
        return found
    if request.method == "POST":
        if path.endswith("/chat/completions"):
            return _openai_chat
        found = upstream_embeddings.route_for(path)
        if found:
            return found
        if path.endswith("/responses"):
            return _openai_responses
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
        if path.endswith("/models/info") or path == "/info":
            return _azure_ai_info
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


def _openai_chat(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | Stream:
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
    head = {key: value for key, value in head.items() if key not in upstream.omit_fields}
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


def _openai_responses(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | Stream:
    """OpenAI's Responses API: one output item (a message, or a function call), streamed as
    its named events."""
    text = upstream.reply_text
    call = upstream._tool_call_for(body)
    input_tokens, output_tokens = _usage(text)
    if call:
        item = {
            "type": "function_call", "id": _new_id("fc_"), "call_id": _new_id("call_"),
            "name": call[0], "arguments": json.dumps(call[1]), "status": "completed",
        }  # fmt: skip
    else:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = {
            "type": "message", "id": _new_id("msg_"), "status": "completed",
            "role": "assistant", "content": [part],
        }  # fmt: skip
    response = {
        "id": _new_id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model", ""),
        "output": [item],
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }
    if not body.get("stream"):
        return response
    return _sse(_responses_events(response, item), named=True)


def _responses_events(response: dict, item: dict) -> list[dict]:
    opened = {**response, "status": "in_progress", "output": [], "usage": None}
    events = [
        {"type": "response.created", "response": opened},
        {"type": "response.in_progress", "response": opened},
    ]
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        events.append(
            {"type": "response.output_item.added", "output_index": 0,
             "item": {**item, "arguments": "", "status": "in_progress"}}
        )  # fmt: skip
        events += [
            {"type": "response.function_call_arguments.delta", **where, "delta": piece}
            for piece in _pieces(item["arguments"])
        ]
        events.append(
            {"type": "response.function_call_arguments.done", **where,
             "name": item["name"], "arguments": item["arguments"]}
        )  # fmt: skip
    else:
        part = item["content"][0]
        events.append(
            {"type": "response.output_item.added", "output_index": 0,
             "item": {**item, "status": "in_progress", "content": []}}
        )  # fmt: skip
        where["content_index"] = 0
        events.append(
            {"type": "response.content_part.added", **where, "part": {**part, "text": ""}}
        )
        events += [
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
            for piece in _pieces(part["text"])
        ]
        events.append(
            {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []}
        )
        events.append({"type": "response.content_part.done", **where, "part": part})
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append({"type": "response.completed", "response": response})
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def _model_list(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | list:
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
    if upstream.list_format == "array":
        return data  # Together's GET /v1/models
    has_more = False
    if "anthropic-version" in request.headers:
        # Anthropic pages: ?limit (default 20, at most 1000) after ?after_id.
        ids = [item["id"] for item in data]
        after = request.query.get("after_id", [None])[0]
        start = ids.index(after) + 1 if after in ids else 0
        limit = min(int(request.query.get("limit", ["20"])[0]), 1000)
        limit = min(limit, upstream.page_size or limit)
        has_more = start + limit < len(data)
        data = data[start : start + limit]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    page = {"object": "list", "data": data, "has_more": has_more}
    return {**page, "first_id": first, "last_id": last}


def _azure_ai_info(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | list:
    # Azure AI model inference: GET /info describes the model the endpoint serves.
    if upstream.list_format == "array":
        return [{"id": model} for model in upstream.models]
    model = upstream.models[0] if upstream.models else ""
    return {"model_name": model, "model_type": "chat-completion", "model_provider_name": "Meta"}


# Anthropic.


def _anthropic_messages(
    upstream: Upstream, request: RecordedRequest, body: dict
) -> dict | Stream | Refusal:
    if "messages" not in body:
        error = {"type": "invalid_request_error", "message": "messages: Field required"}
        return Refusal(400, {"type": "error", "error": error})
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


def _gemini_generate(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | Stream:
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


def _gemini_models(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | list:
    models = [
        {
            "name": f"models/{model}",
            "displayName": model,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        for model in upstream.models
    ]
    if upstream.list_format == "array":
        return models
    # Gemini pages: ?pageSize (default 50, at most 1000), ?pageToken from nextPageToken.
    start = int(request.query.get("pageToken", ["0"])[0] or 0)
    size = min(int(request.query.get("pageSize", ["50"])[0]), 1000)
    size = min(size, upstream.page_size or size)
    page: dict = {"models": models[start : start + size]}
    if start + size < len(models):
        page["nextPageToken"] = str(start + size)
    return page


# Ollama.


def _ollama_chat(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | Stream:
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
    return Stream("application/x-ndjson", lines)


def _ollama_show(upstream: Upstream, request: RecordedRequest, body: dict) -> dict:
    return {
        "template": "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}",
        "details": {"family": "llama", "parameter_size": "8B"},
        "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
        "capabilities": ["completion", "tools"],
    }


def _ollama_tags(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | list:
    models = [
        {"name": model, "model": model, "modified_at": "2024-01-01T00:00:00Z", "size": 1}
        for model in upstream.models
    ]
    if upstream.list_format == "array":
        return models
    # Gemini pages: ?pageSize (default 50, at most 1000), ?pageToken from nextPageToken.
    start = int(request.query.get("pageToken", ["0"])[0] or 0)
    size = min(int(request.query.get("pageSize", ["50"])[0]), 1000)
    size = min(size, upstream.page_size or size)
    page: dict = {"models": models[start : start + size]}
    if start + size < len(models):
        page["nextPageToken"] = str(start + size)
    return page
