"""The OpenAI-compatible gateway: /v1/chat/completions, /v1/models, /v1/providers, /healthz.

Bearer tokens only: a dashboard session is never accepted here. Token checks and model
resolution read the per-process snapshot, so a request costs no configuration query.
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from limits import counters
from providers import services as provider_services
from providers.routing import live
from providers.routing.llm import is_loaded
from usage import request_log

from .. import selectors, services
from ..chat_params import RefusedParameter, chat_params
from ..models import TokenState, token_state

MISSING_TOKEN = (
    "Missing bearer token. Send 'Authorization: Bearer <token>'; an editor creates tokens on "
    "the dashboard or with `python manage.py routing token create NAME`."
)
INVALID_TOKEN = "Invalid or revoked token."
EXPIRED_TOKEN = "This token has expired; ask an editor for a new one."
MODEL_NOT_ALLOWED = "Token {token!r} may not use model {model!r}."
OVER_RPM = (
    "Rate limit reached: {scope} {name!r} may make {rpm} requests per minute. Try again in "
    "{seconds} s."
)
LIMITS_UNAVAILABLE = (
    "Limits cannot be counted right now (Redis does not answer), and this gateway refuses "
    "limited calls until it does. Try again shortly."
)
BAD_JSON = "The request body must be a JSON object."
BAD_MESSAGES = "'messages' must be a non-empty list of chat messages."
INTERNAL_ERROR = "Internal server error; it has been logged."
MODEL_NOT_FOUND = (
    "The model {model!r} does not exist or this token may not use it; GET /v1/models lists them."
)
BODY_TOO_LARGE = "The request body is larger than {limit} bytes."
METHOD_NOT_ALLOWED = "Method {method} is not allowed here; use {allowed}."
UNKNOWN_PATH = (
    "Unknown path {path!r}. The gateway serves POST /v1/chat/completions, GET /v1/models, "
    "GET /v1/models/{{model}} and GET /v1/providers."
)


def _error(
    status: int, message: str, type_: str, code: str | None = None, param: str | None = None
) -> JsonResponse:
    return JsonResponse(
        {"error": {"message": message, "type": type_, "code": code, "param": param}},
        status=status,
    )


# Set by gateway.fastpath for the requests it serves without Django's handler.
outside_django: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "outside_django", default=False
)


def _fresh_snapshot() -> live.Snapshot:
    if not outside_django.get():
        return live.snapshot()
    # What Django's request signals do around a request, for the fast path that skips them:
    # a broken or expired connection is replaced, not reused.
    close_old_connections()
    try:
        return live.snapshot()
    finally:
        close_old_connections()


async def _snapshot() -> live.Snapshot:
    return live.peek() or await sync_to_async(_fresh_snapshot)()


async def _authenticate(
    request: HttpRequest,
) -> tuple[live.Snapshot, live.TokenEntry] | JsonResponse:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return _error(401, MISSING_TOKEN, "authentication_error", "missing_token")
    snap = await _snapshot()
    token = snap.tokens.get(services.hash_token(raw.strip()))
    if token is None:
        return _error(401, INVALID_TOKEN, "authentication_error", "invalid_api_key")
    # Revoked tokens are not in the snapshot; an expired one is, to say so.
    state = token_state(revoked_at=None, expires_at=token.expires_at, now=timezone.now())
    if state == TokenState.EXPIRED:
        return _error(401, EXPIRED_TOKEN, "authentication_error", "expired_token")
    return snap, token


def _upstream_error(exc: provider_services.ProviderError) -> JsonResponse:
    status, code = exc.status_code, exc.code
    if code == "upstream_timeout":
        response = _error(504, str(exc), "api_error", code)
        # SDKs retry a 5xx by default: a call that took the whole timeout would be sent again.
        response["x-should-retry"] = "false"
    elif code == "unsupported_parameter":
        response = _error(400, str(exc), "invalid_request_error", code, exc.param)
    elif status == 429:
        response = _error(429, str(exc), "rate_limit_error", "upstream_rate_limited")
    elif status is None:
        response = _error(503, str(exc), "service_unavailable", "upstream_unreachable")
    elif status >= 500:
        response = _error(status, str(exc), "api_error", "upstream_error")
    elif status in (401, 403):
        # The caller's token is fine; the provider refused *our* stored credentials.
        response = _error(502, str(exc), "api_error", "upstream_auth_failed")
    else:
        response = _error(status, str(exc), "invalid_request_error", "upstream_rejected")
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _not_allowed(request: HttpRequest, allowed: str) -> JsonResponse:
    message = METHOD_NOT_ALLOWED.format(method=request.method, allowed=allowed)
    response = _error(405, message, "invalid_request_error", "method_not_allowed")
    response["Allow"] = allowed
    return response


async def _admit(
    request: HttpRequest, method: str
) -> tuple[live.Snapshot, live.TokenEntry] | JsonResponse:
    """The door of every authenticated endpoint: the one method it answers, then the token."""
    if request.method != method:
        return _not_allowed(request, method)
    return await _authenticate(request)


def _read_json(request: HttpRequest) -> Any:
    """The body's JSON, None when it is not JSON, or a ready error response."""
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error(413, BODY_TOO_LARGE.format(limit=limit), "invalid_request_error", "too_large")
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError):
        # RecursionError: thousands of nested brackets, beyond what the parser descends.
        return None


def _dump(obj: Any) -> dict:
    return obj.model_dump(mode="json") if hasattr(obj, "model_dump") else dict(obj)


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


async def _sse(stream: Any) -> AsyncIterator[str]:
    try:
        async for chunk in stream:
            yield f"data: {json.dumps(_usage_chunk(_dump(chunk)))}\n\n"
    except provider_services.ProviderError as exc:
        payload = json.loads(_upstream_error(exc).content)
        yield f"data: {json.dumps(payload)}\n\n"
    yield "data: [DONE]\n\n"


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    auth = await _admit(request, "POST")
    if isinstance(auth, JsonResponse):
        return auth
    snap, token = auth
    body = _read_json(request)
    if isinstance(body, JsonResponse):
        return body
    if not isinstance(body, dict):
        return _error(400, BAD_JSON, "invalid_request_error", "invalid_json")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, BAD_MESSAGES, "invalid_request_error", "invalid_messages")
    model = body.get("model") or "default"
    if not isinstance(model, str):
        return _error(400, "'model' must be a string.", "invalid_request_error", "invalid_model")
    if not token.allows(model):
        message = MODEL_NOT_ALLOWED.format(token=token.name, model=model)
        _log_refused(token, model, 403, message)
        return _error(403, message, "permission_error", "model_not_allowed")
    try:
        params = chat_params(body)
    except RefusedParameter as exc:
        return _error(400, str(exc), "invalid_request_error", "invalid_parameter", exc.param)
    verdict = await counters.take(_limits(token))
    if verdict is not None and not verdict.allowed:
        message, refusal = _over_limit(verdict)
        _log_refused(token, model, 429, message)
        return refusal
    response = await _complete(snap, token, model, messages, params)
    _rate_headers(response, verdict)
    return response


async def _complete(
    snap: live.Snapshot, token: live.TokenEntry, model: str, messages: list, params: dict
) -> HttpResponse:
    # A context variable: it follows this request into the service layer and its stream.
    # Reset afterwards: a caller that shares this context (a test client, a sync adapter)
    # must not log its own later calls under this token.
    reset = request_log.current_token.set(token.name)
    try:
        response = await provider_services.acompletion(
            messages, model=model, snapshot=snap, **params
        )
    except provider_services.UnknownModel as exc:
        return _error(404, str(exc), "invalid_request_error", "model_not_found")
    except provider_services.Unavailable as exc:
        return _error(503, str(exc), "service_unavailable", "no_deployment")
    except provider_services.ProviderError as exc:
        return _upstream_error(exc)
    finally:
        request_log.current_token.reset(reset)
    if params.get("stream"):
        streaming = StreamingHttpResponse(_sse(response), content_type="text/event-stream")
        streaming["Cache-Control"] = "no-cache"
        return streaming
    return JsonResponse(_dump(response))


def _log_refused(token: live.TokenEntry, model: str, status: int, message: str) -> None:
    reset = request_log.current_token.set(token.name)
    provider_services.log_refused(requested=model, status=status, message=message)
    request_log.current_token.reset(reset)


def _limits(token: live.TokenEntry) -> list[counters.Limit]:
    limits = []
    if token.limits.rpm:
        limits.append(counters.Limit("token", token.name, token.limits.rpm))
    if token.team and token.team_limits.rpm:
        limits.append(counters.Limit("team", token.team, token.team_limits.rpm))
    return limits


def _over_limit(verdict: counters.Verdict) -> tuple[str, JsonResponse]:
    """The refusal's message (for the request log too) and OpenAI's 429."""
    if verdict.limit is None:  # Redis down, and the failure mode is "closed"
        response = _error(429, LIMITS_UNAVAILABLE, "requests", "limits_unavailable")
        response["Retry-After"] = counters.retry_after(counters.REDIS_RETRY_AFTER_SECONDS)
        return LIMITS_UNAVAILABLE, response
    limit = verdict.limit
    message = OVER_RPM.format(
        scope=limit.scope, name=limit.name, rpm=limit.rpm, seconds=math.ceil(verdict.reset_seconds)
    )
    response = _error(429, message, "requests", "rate_limit_exceeded")
    response["Retry-After"] = counters.retry_after(verdict.reset_seconds)
    _rate_headers(response, verdict)
    return message, response


def _rate_headers(response: HttpResponse, verdict: counters.Verdict | None) -> None:
    """OpenAI's x-ratelimit-*-requests headers, for the tightest limit the call counted on."""
    if verdict is None or verdict.limit is None:
        return
    response["x-ratelimit-limit-requests"] = str(verdict.limit.rpm)
    response["x-ratelimit-remaining-requests"] = str(verdict.remaining)
    response["x-ratelimit-reset-requests"] = counters.reset_header(verdict.reset_seconds)


def _model_objects(snap: live.Snapshot, token: live.TokenEntry) -> dict[str, dict]:
    """Every model the token may use, by ID, as OpenAI's model objects."""
    named: dict[str, str] = {}
    if snap.default is not None:
        named["default"] = "routing-admin"
        if not snap.default.group:
            named[f"{snap.default.provider}/{snap.default.model}"] = snap.default.provider
    for group in snap.groups.values():
        named[group.name] = "routing-group"
        for deployment in group.deployments:
            named[deployment.label] = deployment.provider.name
    for entry in snap.providers.values():
        for model_id in entry.models:
            named[f"{entry.name}/{model_id}"] = entry.name
    return {
        model_id: {"id": model_id, "object": "model", "created": 0, "owned_by": owner}
        for model_id, owner in sorted(named.items())
        if token.allows(model_id)
    }


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    auth = await _admit(request, "GET")
    if isinstance(auth, JsonResponse):
        return auth
    data = list(_model_objects(*auth).values())
    return JsonResponse({"object": "list", "data": data})


@csrf_exempt
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    """GET /v1/models/{model}, as OpenAI's: the model object, or 404. The ID may hold '/'."""
    auth = await _admit(request, "GET")
    if isinstance(auth, JsonResponse):
        return auth
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
    auth = await _admit(request, "GET")
    if isinstance(auth, JsonResponse):
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
        return _not_allowed(request, "GET, HEAD")
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
    if request.path.startswith("/v1/"):
        return _error(500, INTERNAL_ERROR, "api_error", "internal_error")
    from django.views.defaults import server_error as page

    return page(request)
