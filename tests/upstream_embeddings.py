"""What the fake upstream answers for embeddings (OpenAI and its clones, Azure OpenAI,
Gemini's batchEmbedContents and embedContent, Ollama's /api/embed) and for OpenAI's legacy
text completions (/completions), plain and streamed.

A vector is made from its input alone (`vector_for`), so that a test can tell which input
it is and check that every number arrived unchanged, through base64 or not.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.upstream_routes import Refusal, Stream, _new_id, _pieces, _sse, _usage

if TYPE_CHECKING:
    from tests.upstream import RecordedRequest, Upstream

DIMENSIONS = 8
GEMINI_EMBED = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>batchEmbedContents|embedContent)$")


def vector_for(item: str | list, dimensions: int = DIMENSIONS) -> list[float]:
    """The embedding the fake gives `item` (a text, or a list of token IDs): numbers that a
    32-bit float holds exactly, so that base64 (float32) and JSON agree to the last digit."""
    digest = hashlib.sha256(repr(item).encode()).digest()
    return [(digest[i] - 128) / 256 for i in range(dimensions)]


def _tokens(item: str | list) -> int:
    return len(item) if isinstance(item, list) else max(1, len(item.split()))


def _inputs(raw: object) -> list:
    """OpenAI's `input`: a text, a list of texts, a list of token IDs, or a list of those."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(i, int) for i in raw):
        return [raw]
    return list(raw) if isinstance(raw, list) else []


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def openai_embeddings(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | Refusal:
    inputs = _inputs(body.get("input"))
    if not inputs:
        error = {"message": "'input' is required", "type": "invalid_request_error"}
        return Refusal(400, {"error": error})
    dimensions = body.get("dimensions") or DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _base64(vector) if as_base64 else vector,
        }
        for index, vector in enumerate(vector_for(item, dimensions) for item in inputs)
    ]
    tokens = sum(_tokens(item) for item in inputs)
    model = body.get("model") or request.path.split("/deployments/")[-1].split("/")[0]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def gemini_embed(upstream: Upstream, request: RecordedRequest, body: dict) -> dict:
    match = GEMINI_EMBED.search(request.path.rstrip("/"))
    assert match is not None

    def values(content: dict) -> list[float]:
        text = "".join(part.get("text", "") for part in content.get("parts", []))
        return vector_for(text, content.get("outputDimensionality") or DIMENSIONS)

    if match["method"] == "embedContent":
        return {"embedding": {"values": values(body.get("content") or {})}}
    requests = body.get("requests") or []
    return {"embeddings": [{"values": values(r.get("content") or {})} for r in requests]}


def ollama_embed(upstream: Upstream, request: RecordedRequest, body: dict) -> dict:
    inputs = _inputs(body.get("input"))
    return {
        "model": body.get("model", ""),
        "embeddings": [vector_for(item) for item in inputs],
        "total_duration": 1000,
        "prompt_eval_count": sum(_tokens(item) for item in inputs),
    }


def openai_text_completion(
    upstream: Upstream, request: RecordedRequest, body: dict
) -> dict | Stream:
    """OpenAI's legacy /completions: the reply text after the prompt, one choice a prompt."""
    model = body.get("model") or request.path.split("/deployments/")[-1].split("/")[0]
    text = upstream.reply_text
    prompt_tokens, completion_tokens = _usage(text)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    head = {"id": _new_id("cmpl-"), "object": "text_completion", "created": int(time.time())}
    head["model"] = model
    if not body.get("stream"):
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return {**head, "choices": [choice], "usage": usage}

    def chunk(piece: str, finish: str | None = None) -> dict:
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]}

    chunks = [chunk(piece) for piece in _pieces(text)] + [chunk("", "stop")]
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**head, "choices": [], "usage": usage})
    else:
        chunks[-1]["usage"] = usage
    return _sse(chunks, done=True)


def route_for(path: str) -> Callable[..., dict | Stream | Refusal] | None:
    """The route of a POST to `path` (without a trailing "/"), if it is one of this module's."""
    if path.endswith("/completions"):  # chat/completions is upstream_routes.py's
        return openai_text_completion
    if path.endswith("/embeddings"):
        return openai_embeddings
    if GEMINI_EMBED.search(path):
        return gemini_embed
    if path.endswith("/api/embed"):
        return ollama_embed
    return None
