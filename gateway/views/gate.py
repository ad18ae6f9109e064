"""What every endpoint that calls a model does around the call, in one place: the token at the
door, the body, the token's allowed models, limits and budgets before the call and counted
after it, upstream failures as error responses, and the rate headers on every answer.

An endpoint reads what is its own (chat messages, embedding input, a Responses request) and
hands the rest to these steps:

    door = await enter(request)                  # method, token, JSON object body
    admitted = await admit(door, model)          # allowed model, budget pricing, limits
    response = await call(admitted, lambda on_spent: provider_services.acall(...))
    return await finish(admitted, response)      # frees an unused slot, rate headers

or, for the last two, `respond(admitted, make_call, stream=..., events=...)`: the call, its
answer as a stream or JSON (a relayed answer's bytes as they came), then `finish`.

Each step answers a refusal as a ready response; `error` makes it in the endpoint's API's
own shape (OpenAI's by default, Anthropic's for /v1/messages).
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone

from limits import counters
from providers import services as provider_services
from providers.routing import live
from usage import request_log

from .. import services
from ..models import TokenState, token_state
from . import limits as limit_rules

MISSING_TOKEN = (
    "Missing bearer token. Send 'Authorization: Bearer <token>'; an editor creates tokens on "
    "the dashboard or with `python manage.py routing token create NAME`."
)
INVALID_TOKEN = "Invalid or revoked token."
EXPIRED_TOKEN = "This token has expired; ask an editor for a new one."
MODEL_NOT_ALLOWED = "Token {token!r} may not use model {model!r}."
BAD_JSON = "The request body must be a JSON object."
BAD_MODEL = "'model' must be a string."
BODY_TOO_LARGE = "The request body is larger than {limit} bytes."
METHOD_NOT_ALLOWED = "Method {method} is not allowed here; use {allowed}."

# Where a caller's SDK puts the token: OpenAI's and most others' `Authorization: Bearer`,
# Anthropic's `x-api-key`, Azure OpenAI's `api-key`. Any of them, on every endpoint: a token
# is a token, and which header carried it changes nothing it may do.
KEY_HEADERS = ("x-api-key", "api-key")


class ErrorMaker(Protocol):
    def __call__(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
    ) -> HttpResponse: ...


def openai_error(
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


async def snapshot() -> live.Snapshot:
    return live.peek() or await sync_to_async(_fresh_snapshot)()


def _raw_token(request: HttpRequest) -> str:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and raw.strip():
        return raw.strip()
    for header in KEY_HEADERS:
        raw = request.headers.get(header, "").strip()
        if raw:
            return raw
    return ""


async def authenticate(
    request: HttpRequest, error: ErrorMaker = openai_error
) -> tuple[live.Snapshot, live.TokenEntry] | HttpResponse:
    raw = _raw_token(request)
    if not raw:
        return error(401, MISSING_TOKEN, "authentication_error", "missing_token")
    snap = await snapshot()
    token = snap.tokens.get(services.hash_token(raw))
    if token is None:
        return error(401, INVALID_TOKEN, "authentication_error", "invalid_api_key")
    # Revoked tokens are not in the snapshot; an expired one is, to say so.
    state = token_state(revoked_at=None, expires_at=token.expires_at, now=timezone.now())
    if state == TokenState.EXPIRED:
        return error(401, EXPIRED_TOKEN, "authentication_error", "expired_token")
    return snap, token


def not_allowed(request: HttpRequest, allowed: str, error: ErrorMaker = openai_error):
    message = METHOD_NOT_ALLOWED.format(method=request.method, allowed=allowed)
    response = error(405, message, "invalid_request_error", "method_not_allowed")
    response["Allow"] = allowed
    return response


async def admit_method(
    request: HttpRequest, method: str, error: ErrorMaker = openai_error
) -> tuple[live.Snapshot, live.TokenEntry] | HttpResponse:
    """The door of every authenticated endpoint: the one method it answers, then the token."""
    if request.method != method:
        return not_allowed(request, method, error)
    return await authenticate(request, error)


def read_json(request: HttpRequest, error: ErrorMaker = openai_error) -> Any:
    """The body's JSON, None when it is not JSON, or a ready error response."""
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error(413, BODY_TOO_LARGE.format(limit=limit), "invalid_request_error", "too_large")
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError):
        # RecursionError: thousands of nested brackets, beyond what the parser descends.
        return None


@dataclass(frozen=True)
class Door:
    """A POST that passed the door: its configuration, token, JSON body and error shape."""

    snap: live.Snapshot
    token: live.TokenEntry
    body: dict
    error: ErrorMaker


async def enter(request: HttpRequest, error: ErrorMaker = openai_error) -> Door | HttpResponse:
    auth = await admit_method(request, "POST", error)
    if isinstance(auth, HttpResponse):
        return auth
    body = read_json(request, error)
    if isinstance(body, HttpResponse):
        return body
    if not isinstance(body, dict):
        return error(400, BAD_JSON, "invalid_request_error", "invalid_json")
    return Door(*auth, body, error)


def requested_model(door: Door) -> str | HttpResponse:
    """The body's "model" ("default" when left out), or a refusal of one that is no string."""
    model = door.body.get("model") or "default"
    if not isinstance(model, str):
        return door.error(400, BAD_MODEL, "invalid_request_error", "invalid_model")
    return model


@dataclass(frozen=True)
class Admitted:
    """A call let through: counted by `ticket` (None when no limit applies to the token)."""

    door: Door
    model: str
    ticket: counters.Ticket | None

    @property
    def on_spent(self) -> Callable[[Any], Awaitable[bool]] | None:
        return self.ticket.settle if self.ticket is not None else None


async def admit(door: Door, model: str) -> Admitted | HttpResponse:
    """The token's allowed models, a budget's need of a price, then its limits."""
    token, error = door.token, door.error
    if not token.allows(model):
        message = MODEL_NOT_ALLOWED.format(token=token.name, model=model)
        log_refused(token, model, 403, message)
        return error(403, message, "permission_error", "model_not_allowed")
    subjects = limit_rules.subjects(token)
    unpriced = limit_rules.unpriced(door.snap, subjects, model)
    if unpriced:
        log_refused(token, model, 403, unpriced)
        return error(403, unpriced, "permission_error", "model_unpriced")
    ticket = await counters.before(subjects, ledger_keys=limit_rules.ledger_keys(token))
    if ticket is not None and not ticket.allowed:
        message, refusal = limit_rules.over_limit(ticket, error)
        log_refused(token, model, 429, message)
        return refusal
    return Admitted(door, model, ticket)


def upstream_error(
    exc: provider_services.ProviderError, error: ErrorMaker = openai_error
) -> HttpResponse:
    status, code = exc.status_code, exc.code
    if code == "upstream_timeout":
        response = error(504, str(exc), "api_error", code)
        # SDKs retry a 5xx by default: a call that took the whole timeout would be sent again.
        response["x-should-retry"] = "false"
    elif code in ("unsupported_parameter", "unsupported_endpoint"):
        response = error(400, str(exc), "invalid_request_error", code, exc.param)
    elif status == 429:
        response = error(429, str(exc), "rate_limit_error", "upstream_rate_limited")
    elif status is None:
        response = error(503, str(exc), "service_unavailable", "upstream_unreachable")
    elif status >= 500:
        response = error(status, str(exc), "api_error", "upstream_error")
    elif status in (401, 403):
        # The caller's token is fine; the provider refused *our* stored credentials.
        response = error(502, str(exc), "api_error", "upstream_auth_failed")
    else:
        response = error(status, str(exc), "invalid_request_error", "upstream_rejected")
    for name, value in exc.headers.items():
        response[name] = value
    return response


async def call(
    admitted: Admitted,
    make_call: Callable[[Callable[[Any], Awaitable[bool]] | None], Awaitable[Any]],
) -> Any:
    """Await the service call `make_call(on_spent)` under the caller's token: its answer, or
    its failure as an error response (the model unknown, nothing to serve it, the upstream's)."""
    error = admitted.door.error
    # A context variable: it follows this request into the service layer and its stream.
    # Reset afterwards: a caller that shares this context (a test client, a sync adapter)
    # must not log its own later calls under this token.
    reset = request_log.current_token.set(admitted.door.token.name)
    try:
        return await make_call(admitted.on_spent)
    except provider_services.UnknownModel as exc:
        return error(404, str(exc), "invalid_request_error", "model_not_found")
    except provider_services.Unavailable as exc:
        return error(503, str(exc), "service_unavailable", "no_deployment")
    except provider_services.ProviderError as exc:
        return upstream_error(exc, error)
    except BaseException:
        if admitted.ticket is not None:
            await admitted.ticket.settle(None)
        raise
    finally:
        request_log.current_token.reset(reset)


async def finish(admitted: Admitted, response: HttpResponse) -> HttpResponse:
    ticket = admitted.ticket
    if ticket is not None and not isinstance(response, StreamingHttpResponse):
        # Refused before any provider was asked (unknown model, nothing to serve it): its
        # slot is freed here. A call settles once: after an answer, this does nothing.
        await ticket.settle(None)
    for name, value in counters.rate_headers(ticket).items():
        response[name] = value
    return response


def dump(answer: Any) -> dict:
    """A plain answer's JSON: LiteLLM's object dumped, a relayed answer's as it came."""
    if isinstance(answer, provider_services.Relayed):
        return answer.data
    return answer.model_dump(mode="json") if hasattr(answer, "model_dump") else dict(answer)


def answer_body(answer: Any) -> bytes | dict:
    """What a plain answer's response holds: a relayed answer's very bytes, else its JSON."""
    return answer.content if isinstance(answer, provider_services.Relayed) else dump(answer)


def streamed(events: AsyncIterator[str | bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


async def respond(
    admitted: Admitted,
    make_call: Callable[[Callable[[Any], Awaitable[bool]] | None], Awaitable[Any]],
    *,
    stream: bool,
    events: Callable[[Any], AsyncIterator[str | bytes]],
    body: Callable[[Any], bytes | dict] = answer_body,
) -> HttpResponse:
    """The end of every endpoint that calls a model: `call`, its answer as server-sent
    `events` (a stream) or as `body` (JSON, or bytes that already are), then `finish`."""
    answer = await call(admitted, make_call)
    if isinstance(answer, HttpResponse):
        response = answer
    elif stream:
        response = streamed(events(answer))
    else:
        content = body(answer)
        if isinstance(content, bytes):
            response = HttpResponse(content, content_type="application/json")
        else:
            response = JsonResponse(content)
    return await finish(admitted, response)


def log_refused(token: live.TokenEntry, model: str, status: int, message: str) -> None:
    reset = request_log.current_token.set(token.name)
    provider_services.log_refused(requested=model, status=status, message=message)
    request_log.current_token.reset(reset)
