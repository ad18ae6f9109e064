"""POST /v1/embeddings, OpenAI's embeddings API, for every provider LiteLLM embeds with.

The `openai` SDK asks for base64 unless told otherwise, and decodes it itself; LangChain's
`OpenAIEmbeddings` sends token IDs. Providers are always asked for floats (Gemini's and
Ollama's APIs have no base64, and LiteLLM refuses the parameter for them): the gateway
encodes the answer as the caller asked, as OpenAI does (little-endian float32).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from providers import services as provider_services

from ..chat_params import EMBEDDINGS, RefusedParameter, chat_params
from . import gate
from .gate import openai_error as _error

BAD_INPUT = (
    "'input' must be a non-empty string, a list of strings, a list of token IDs, or a list of "
    "lists of token IDs."
)
BAD_ENCODING = "'encoding_format' must be 'float' or 'base64'."
ENCODINGS = ("float", "base64")


def _is_text_or_tokens(item: Any) -> bool:
    if isinstance(item, str):
        return bool(item)
    return _is_tokens(item)


def _is_tokens(item: Any) -> bool:
    return (
        isinstance(item, list)
        and bool(item)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
    )


def valid_input(value: Any) -> bool:
    if _is_text_or_tokens(value):
        return True
    return isinstance(value, list) and bool(value) and all(map(_is_text_or_tokens, value))


def _encoded(body: dict, encoding: str) -> dict:
    if encoding != "base64":
        return body
    for item in body.get("data") or ():
        vector = item.get("embedding")
        if isinstance(vector, list):
            packed = struct.pack(f"<{len(vector)}f", *vector)
            item["embedding"] = base64.b64encode(packed).decode()
    return body


@csrf_exempt
async def embeddings(request: HttpRequest) -> HttpResponse:
    door = await gate.enter(request)
    if isinstance(door, HttpResponse):
        return door
    return await embed(door, gate.requested_model(door))


async def embed(door: gate.Door, model: str | HttpResponse) -> HttpResponse:
    """Embeddings with `model` (the body's, or the one an Azure path names)."""
    inputs = door.body.get("input")
    if not valid_input(inputs):
        return _error(400, BAD_INPUT, "invalid_request_error", "invalid_input", "input")
    if isinstance(model, HttpResponse):
        return model
    try:
        params = chat_params(door.body, EMBEDDINGS)
    except RefusedParameter as exc:
        return _error(400, str(exc), "invalid_request_error", "invalid_parameter", exc.param)
    encoding = params.pop("encoding_format", None) or "float"
    if encoding not in ENCODINGS:
        return _error(
            400, BAD_ENCODING, "invalid_request_error", "invalid_parameter", "encoding_format"
        )
    admitted = await gate.admit(door, model)
    if isinstance(admitted, HttpResponse):
        return admitted
    return await gate.respond(
        admitted,
        lambda on_spent: provider_services.aembedding(
            inputs, model=model, snapshot=door.snap, on_spent=on_spent, relayable=True, **params
        ),
        stream=False,
        events=None,
        # Floats as they came; base64 is the gateway's to encode.
        body=gate.answer_body
        if encoding == "float"
        else lambda a: _encoded(gate.dump(a), encoding),
    )
