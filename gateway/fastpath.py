"""ASGI plumbing in front of Django for the gateway's busiest endpoints.

Django's ASGI handler runs each request in a context of its own for sync code: the first
sync-only middleware hook (Security, Session, CSRF, Auth, Messages... all of them) starts a
thread for the request, and every hook then hops to it and back. On a 2-core machine that
cost about 3 ms of CPU per call, more than the gateway does itself (`python -m bench`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
from contextlib import aclosing
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestAborted, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from .urls import FAST_ROUTES
from .views.api import INTERNAL_ERROR
from .views.gate import BODY_TOO_LARGE, outside_django
from .views.gate import openai_error as _error

log = logging.getLogger("django.request")


class FastPath:
    """ASGI: the endpoints of FAST_ROUTES (chat completions, embeddings, completions, models)
    go straight to their async views.

    These endpoints need none of Django's middleware: no session, cookie or CSRF token is
    ever used there. SecurityMiddleware's HTTPS redirect and headers still apply, and so does
    CorsMiddleware (preflight answers and CORS headers for ROUTING_CORS_ALLOWED_ORIGINS), both
    called in the order MIDDLEWARE has them; every other path goes through Django as before.
    A streamed answer is sent as Django's handler sends one: while it lasts, the client's
    disconnect is listened for, and it cancels the stream (which logs the call as abandoned
    and closes the upstream's).
    """

    routes = {"/" + route: view for route, (view, _) in FAST_ROUTES.items()}

    def __init__(self, app: Any) -> None:
        from corsheaders.middleware import CorsMiddleware
        from django.middleware.security import SecurityMiddleware

        self.app = app
        self.security = SecurityMiddleware(lambda request: None)
        self.cors = CorsMiddleware(lambda request: None)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        from django.core.handlers.asgi import ASGIRequest

        view = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if view is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except RequestDataTooBig as exc:
            body, too_large = b"", _error(413, str(exc), "invalid_request_error", "too_large")
        else:
            too_large = None
        if body is None:
            return  # the client went away
        request = ASGIRequest(scope, io.BytesIO(body))
        outside_django.set(True)  # this task's context only: one request
        response = (
            self.security.process_request(request)
            or self.cors.check_preflight(request)
            or too_large
            or await _call(view, request)
        )
        response = self.security.process_response(
            request, self.cors.add_response_headers(request, response)
        )
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        if response.streaming:
            await _stream(response, headers, receive, send)
            return
        content = response.content
        headers.append((b"content-length", str(len(content)).encode()))
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": content})


class _Sent(Exception):
    pass


async def _stream(response: HttpResponse, headers: list, receive: Any, send: Any) -> None:
    """Sent as Django's ASGIHandler sends it, which this mirrors: a disconnect cancels it."""
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    try:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_disconnected(receive))
                async with aclosing(aiter(response)) as parts:
                    async for part in parts:
                        await send({"type": "http.response.body", "body": part, "more_body": True})
                await send({"type": "http.response.body"})
                raise _Sent
        except* (_Sent, RequestAborted):
            pass
    except BaseExceptionGroup as group:
        # A failure mid-stream reaches the server as itself, as from Django's handler.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _disconnected(receive: Any) -> None:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise RequestAborted
    raise RuntimeError(f"Unexpected ASGI message after the request body: {message['type']}")


async def _read_body(receive: Any) -> bytes | None:
    """The whole body, or None when the client disconnected first."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    parts, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        more = message.get("more_body", False)
        if limit is not None and size > limit:
            raise RequestDataTooBig(BODY_TOO_LARGE.format(limit=limit))
    return b"".join(parts)


async def _call(view, request: HttpRequest) -> HttpResponse:
    """What Django's handler and middleware would answer for a failure, in OpenAI's shape."""
    from providers.middleware import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS

    try:
        return await view(request)
    except (OperationalError, InterfaceError) as exc:
        log.error("Database unavailable on %s: %s", request.path, exc)
        response = _error(503, DATABASE_UNAVAILABLE, "service_unavailable", "database_unavailable")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except Exception:  # noqa: BLE001 - logged as Django would, answered as OpenAI would
        log.exception("Internal Server Error: %s", request.path)
        return _error(500, INTERNAL_ERROR, "api_error", "internal_error")


def nodelay_on_listeners() -> None:
    """Call when a worker starts (in routing_admin/asgi.py). `uvicorn --workers N` hands each
    worker a listening socket made with protocol 0, so asyncio never turns Nagle's algorithm
    off for the connections it accepts, and every keep-alive answer then waits about 40 ms
    for the client's delayed ACK (Kludex/uvicorn#3149; `python -m bench` measured 52 ms a
    call with two workers, 5 with the fix). Linux copies TCP_NODELAY from a listening
    socket to the connections it accepts, so it is set on the listeners this process has."""
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return  # not Linux: nothing to do
    for fd in fds:
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue  # not a socket
        with sock:
            try:
                listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                if listening and sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                continue
