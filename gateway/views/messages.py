"""POST /v1/messages: Anthropic's Messages API, for the Anthropic SDK and Claude Code
(`ANTHROPIC_BASE_URL` = the gateway, `ANTHROPIC_API_KEY` = a gateway token, sent as
`x-api-key`), through the same gate as chat completions. Anthropic-kind providers get the
request in their own format; LiteLLM translates it for every other provider. Errors come in
Anthropic's shape, which its SDK reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from providers import services as provider_services

from ..api_params import MESSAGES_PARAMETERS, MESSAGES_READ, MESSAGES_UNKNOWN, api_params
from ..chat_params import RefusedParameter
from . import gate

BAD_MESSAGES = "'messages' must be a non-empty list of messages."
BAD_MAX_TOKENS = "'max_tokens' is required: a positive integer."

# Anthropic's error types by status (https://docs.claude.com/en/api/errors).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def _error_body(status: int, message: str) -> dict:
    type_ = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": type_, "message": message}}


def anthropic_error(
    status: int, message: str, type_: str, code: str | None = None, param: str | None = None
) -> JsonResponse:
    """gate.ErrorMaker in Anthropic's shape: its type follows the status, as Anthropic's do."""
    return JsonResponse(_error_body(status, message), status=status)


def _sse(data: dict) -> bytes:
    return f"event: {data.get('type', 'message')}\ndata: {json.dumps(data)}\n\n".encode()


async def _events(stream: Any) -> AsyncIterator[bytes]:
    """The stream as Anthropic sends it (LiteLLM gives server-sent events as bytes); a failure
    midway as Anthropic's `error` event."""
    try:
        async for chunk in stream:
            if isinstance(chunk, dict):
                yield _sse(chunk)
            else:
                yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)
    except provider_services.ProviderError as exc:
        failed = gate.upstream_error(exc, anthropic_error)
        yield _sse(json.loads(failed.content))


def _request(door: gate.Door) -> tuple[list, dict] | HttpResponse:
    body, error = door.body, door.error
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error(400, BAD_MESSAGES, "invalid_request_error", "invalid_messages")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return error(400, BAD_MAX_TOKENS, "invalid_request_error", "invalid_max_tokens")
    try:
        params = api_params(
            body, accepted=MESSAGES_PARAMETERS, read=MESSAGES_READ, unknown=MESSAGES_UNKNOWN
        )
    except RefusedParameter as exc:
        return error(400, str(exc), "invalid_request_error", "invalid_parameter", exc.param)
    return messages, params


@csrf_exempt
async def messages(request: HttpRequest) -> HttpResponse:
    door = await gate.enter(request, anthropic_error)
    if isinstance(door, HttpResponse):
        return door
    read = _request(door)
    if isinstance(read, HttpResponse):
        return read
    given, params = read
    model = gate.requested_model(door)
    if isinstance(model, HttpResponse):
        return model
    admitted = await gate.admit(door, model)
    if isinstance(admitted, HttpResponse):
        return admitted
    return await gate.respond(
        admitted,
        lambda on_spent: provider_services.amessages(
            given, model=model, snapshot=door.snap, on_spent=on_spent, **params
        ),
        stream=bool(params.get("stream")),
        events=_events,
        body=dict,
    )
