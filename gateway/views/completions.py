"""POST /v1/completions, OpenAI's legacy text completions API, plain and streamed.

LiteLLM calls a provider's own /completions where it has one (OpenAI's instruct models, any
OpenAI-compatible server such as vLLM), and bridges the others through chat completions.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from providers import services as provider_services

from ..chat_params import COMPLETIONS, RefusedParameter, chat_params
from . import gate
from .api import _sse
from .embeddings import valid_input
from .gate import openai_error as _error

BAD_PROMPT = (
    "'prompt' must be a non-empty string, a list of strings, a list of token IDs, or a list of "
    "lists of token IDs."
)


def _text_chunk(data: dict) -> dict:
    """A chunk as OpenAI streams it: `text` is a string on every choice (LiteLLM gives the
    last one None), and the usage chunk (stream_options.include_usage) has `choices: []`."""
    choices = data.get("choices") or []
    if data.get("usage") and all(
        not c.get("text") and c.get("finish_reason") is None for c in choices
    ):
        data["choices"] = []
    return _answer(data)


def _answer(data: dict[str, Any]) -> dict[str, Any]:
    for choice in data.get("choices") or ():
        if choice.get("text") is None:
            choice["text"] = ""
    return data


@csrf_exempt
async def completions(request: HttpRequest) -> HttpResponse:
    door = await gate.enter(request)
    if isinstance(door, HttpResponse):
        return door
    return await complete(door, gate.requested_model(door))


async def complete(door: gate.Door, model: str | HttpResponse) -> HttpResponse:
    """A text completion with `model` (the body's, or the one an Azure path names)."""
    prompt = door.body.get("prompt")
    if not valid_input(prompt):
        return _error(400, BAD_PROMPT, "invalid_request_error", "invalid_prompt", "prompt")
    if isinstance(model, HttpResponse):
        return model
    try:
        params = chat_params(door.body, COMPLETIONS)
    except RefusedParameter as exc:
        return _error(400, str(exc), "invalid_request_error", "invalid_parameter", exc.param)
    admitted = await gate.admit(door, model)
    if isinstance(admitted, HttpResponse):
        return admitted
    return await gate.respond(
        admitted,
        lambda on_spent: provider_services.atext_completion(
            prompt, model=model, snapshot=door.snap, on_spent=on_spent, relayable=True, **params
        ),
        stream=bool(params.get("stream")),
        events=lambda stream: _sse(stream, _text_chunk),
        body=_body,
    )


def _body(answer: Any) -> bytes | dict:
    # A relayed answer is OpenAI's wire format already: every `text` a string.
    body = gate.answer_body(answer)
    return body if isinstance(body, bytes) else _answer(body)
