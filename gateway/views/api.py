"""The OpenAI-compatible gateway: /v1/chat/completions, /v1/models, /v1/providers, /healthz
(embeddings, completions and Azure OpenAI's paths have modules of their own beside this one).

Bearer tokens only: a dashboard session is never accepted here. Token checks and model
resolution read the per-process snapshot, so a request costs no configuration query.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from limits import counters
from providers import services as provider_services
from providers.middleware import GATEWAY_PREFIXES
from providers.routing import live, modes
from providers.routing.llm import alitellm, is_loaded
from usage import request_log

from .. import selectors
from ..chat_params import RefusedParameter, chat_params
from . import gate
from .gate import (  # noqa: F401 - the names tests and the fast path know them by
    BAD_JSON,
    BODY_TOO_LARGE,
    EXPIRED_TOKEN,
    INVALID_TOKEN,
    METHOD_NOT_ALLOWED,
    MISSING_TOKEN,
    MODEL_NOT_ALLOWED,
    outside_django,
)
from .gate import openai_error as _error

BAD_MESSAGES = "'messages' must be a non-empty list of chat messages."
INTERNAL_ERROR = "Internal server error; it has been logged."
MODEL_NOT_FOUND = (
    "The model {model!r} does not exist or this token may not use it; GET /v1/models lists them."
)
UNKNOWN_PATH = (
    "Unknown path {path!r}. The gateway serves POST /v1/chat/completions, POST /v1/embeddings, "
    "POST /v1/completions, POST /v1/responses, POST /v1/messages, GET /v1/models, "
    "GET /v1/models/{{model}}, GET /v1/providers, and "
    "Azure OpenAI's POST /openai/deployments/{{deployment}}/chat/completions, /embeddings and "
    "/completions."
)


_dump = gate.dump
streamed = gate.streamed


def _usage_chunk(data: dict) -> dict:
    """LiteLLM gives the usage chunk (stream_options.include_usage) one empty choice; OpenAI
    sends it with `choices: []`, and clients that read the usage there expect that."""
    choices = data.get("choices") or []
    if (
        data.get("usage")
        and choices
        and all(
            c.get("finish_reason") is None and not any((c.get("delta") or {}).values())
            for c in choices
        )
    ):
        data["choices"] = []
    return data


async def _sse(
    stream: Any, shape: Callable[[dict], dict] = _usage_chunk
) -> AsyncIterator[str | bytes]:
    """Server-sent events of a stream's chunks, each made into OpenAI's shape by `shape`; a
    relayed stream's events are in it already, as bytes."""
    try:
        async for chunk in stream:
            if isinstance(chunk, bytes):
                yield chunk
            else:
                yield f"data: {json.dumps(shape(_dump(chunk)))}\n\n"
    except provider_services.ProviderError as exc:
        payload = json.loads(gate.upstream_error(exc).content)
        yield f"data: {json.dumps(payload)}\n\n"
    yield "data: [DONE]\n\n"


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    door = await gate.enter(request)
    if isinstance(door, HttpResponse):
        return door
    return await chat(door, gate.requested_model(door))


async def chat(door: gate.Door, model: str | HttpResponse) -> HttpResponse:
    """A chat completion of `model` (the body's, or the one an Azure path names)."""
    messages = door.body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, BAD_MESSAGES, "invalid_request_error", "invalid_messages")
    if isinstance(model, HttpResponse):
        return model
    try:
        params = chat_params(door.body)
    except RefusedParameter as exc:
        return _error(400, str(exc), "invalid_request_error", "invalid_parameter", exc.param)
    admitted = await gate.admit(door, model)
    if isinstance(admitted, HttpResponse):
        return admitted
    return await gate.respond(
        admitted,
        lambda on_spent: provider_services.acompletion(
            messages, model=model, snapshot=door.snap, on_spent=on_spent, relayable=True, **params
        ),
        stream=bool(params.get("stream")),
        events=_sse,
    )


def _model_objects(snap: live.Snapshot, token: live.TokenEntry) -> dict[str, dict]:
    """Every model the token may use, by ID, as OpenAI's model objects; `serves` says which
    of the gateway's APIs the model is for, where its kind or LiteLLM's price map says."""
    named: dict[str, tuple[str, tuple[str, ...]]] = {}
    for entry in snap.providers.values():
        for model_id in entry.models:
            named[f"{entry.name}/{model_id}"] = entry.name, modes.serves(entry.kind, model_id)
    for group in snap.groups.values():
        served = [modes.serves(d.provider.kind, d.model) for d in group.deployments]
        # A group serves what all its deployments serve; one that nothing describes, nothing.
        common = set.intersection(*map(set, served)) if served and all(served) else set()
        named[group.name] = "routing-group", tuple(sorted(common))
        for deployment in group.deployments:
            named[deployment.label] = deployment.provider.name, served.pop(0)
    default = snap.default
    if default is not None:
        if default.group:
            named["default"] = "routing-admin", named.get(default.group, ("", ()))[1]
        else:
            entry = snap.providers.get(default.provider)
            label = f"{default.provider}/{default.model}"
            served = modes.serves(entry.kind, default.model) if entry else ()
            named[label] = default.provider, served
            named["default"] = "routing-admin", served
    return {
        model_id: {
            "id": model_id,
            "object": "model",
            "created": 0,
            "owned_by": owner,
            **({"serves": list(served)} if served else {}),
        }
        for model_id, (owner, served) in sorted(named.items())
        if token.allows(model_id)
    }


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    auth = await gate.admit_method(request, "GET")
    if isinstance(auth, HttpResponse):
        return auth
    await alitellm()  # the price map, loaded off the event loop
    data = list(_model_objects(*auth).values())
    return JsonResponse({"object": "list", "data": data})


@csrf_exempt
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    """GET /v1/models/{model}, as OpenAI's: the model object, or 404. The ID may hold '/'."""
    auth = await gate.admit_method(request, "GET")
    if isinstance(auth, HttpResponse):
        return auth
    await alitellm()
    found = _model_objects(*auth).get(model_id)
    if found is None:
        message = MODEL_NOT_FOUND.format(model=model_id[:300])
        return _error(404, message, "invalid_request_error", "model_not_found", "model")
    return JsonResponse(found)


@csrf_exempt
async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other /v1/ path: OpenAI's error shape, not Django's HTML page."""
    message = UNKNOWN_PATH.format(path=request.path[:300])
    return _error(404, message, "invalid_request_error", "unknown_url")


@csrf_exempt
async def providers(request: HttpRequest) -> HttpResponse:
    auth = await gate.admit_method(request, "GET")
    if isinstance(auth, HttpResponse):
        return auth
    data = [
        {
            "name": p.name,
            "kind": p.kind,
            # What every page calls the provider (its display name, else its name).
            "display_name": p.title,
            "kind_label": p.kind_info.label,
            "health": {
                "ok": p.last_test_ok,
                "latency_ms": p.last_test_latency_ms,
                "checked_at": p.last_test_at.isoformat() if p.last_test_at else None,
                # Health-check's verdict: several failures in a row (issue #6).
                "healthy": p.unhealthy_since is None,
                "unhealthy_since": p.unhealthy_since.isoformat() if p.unhealthy_since else None,
            },
        }
        async for p in selectors.providers_with_health()
    ]
    return JsonResponse({"object": "list", "data": data})


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        connection.close()
        return False


@csrf_exempt
async def healthz(request: HttpRequest) -> HttpResponse:
    # HEAD too: load balancers' health probes often send it.
    if request.method not in ("GET", "HEAD"):
        return gate.not_allowed(request, "GET, HEAD")
    ok = await sync_to_async(_database_answers)()
    limits = await counters.status()
    # Degraded: serving, but limits are not counted as configured (Redis is away).
    status = "unavailable" if not ok else "degraded" if limits["state"] != "ok" else "ok"
    return JsonResponse(
        {
            "status": status,
            "database": "ok" if ok else "unavailable",
            "limits": limits,
            "litellm": "loaded" if is_loaded() else "not loaded",
            # This process's request-log queue: records waiting, batches that failed.
            "request_log": request_log.status(),
        },
        status=200 if ok else 503,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: OpenAI's error shape for the gateway's clients, the 500 page for people."""
    if request.path.startswith(GATEWAY_PREFIXES):
        return _error(500, INTERNAL_ERROR, "api_error", "internal_error")
    from django.views.defaults import server_error as page

    return page(request)
