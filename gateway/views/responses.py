"""POST /v1/responses: OpenAI's Responses API, for every provider (LiteLLM speaks it to those
that have it, and bridges it to chat completions for the others), through the same gate as
chat completions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from providers import services as provider_services

from ..api_params import RESPONSES_PARAMETERS, RESPONSES_READ, RESPONSES_UNKNOWN, api_params
from ..chat_params import RefusedParameter
from . import gate

BAD_INPUT = "'input' must be a string or a non-empty list of input items."


_dump = gate.dump


async def _events(stream: Any) -> AsyncIterator[str]:
    """The stream's events as OpenAI sends them: named, each with its JSON; a failure midway
    as the API's `error` event."""
    number = 0
    try:
        async for event in stream:
            data = _dump(event)
            number = data.get("sequence_number", number) or number
            yield f"event: {data.get('type', 'message')}\ndata: {json.dumps(data)}\n\n"
    except provider_services.ProviderError as exc:
        error = json.loads(gate.upstream_error(exc).content)["error"]
        data = {"type": "error", "sequence_number": number + 1, **error}
        yield f"event: error\ndata: {json.dumps(data)}\n\n"


def _request(door: gate.Door) -> tuple[Any, dict] | HttpResponse:
    body = door.body
    given = body.get("input")
    if not (isinstance(given, str) and given) and not (isinstance(given, list) and given):
        return door.error(400, BAD_INPUT, "invalid_request_error", "invalid_input", "input")
    try:
        params = api_params(
            body, accepted=RESPONSES_PARAMETERS, read=RESPONSES_READ, unknown=RESPONSES_UNKNOWN
        )
    except RefusedParameter as exc:
        return door.error(400, str(exc), "invalid_request_error", "invalid_parameter", exc.param)
    return given, params


@csrf_exempt
async def responses(request: HttpRequest) -> HttpResponse:
    door = await gate.enter(request)
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
        lambda on_spent: provider_services.aresponses(
            given, model=model, snapshot=door.snap, on_spent=on_spent, **params
        ),
        stream=bool(params.get("stream")),
        events=_events,
    )
