"""Faults the app must survive: the database going away, and the server shutting down.

DatabaseUnavailableMiddleware: Django closes a broken connection at the end of the request
(close_old_connections) and the next request opens a new one, so the app recovers by itself
once the database is back; the middleware makes the meantime readable: the dashboard shows
templates/503.html, the gateway (/v1/, /openai/) answers in OpenAI's error shape, both ask to retry.

LifespanShutdown (ASGI): uvicorn ends a process by re-raising SIGTERM after its graceful
shutdown, so atexit handlers never run there; the request log is flushed on the ASGI
lifespan "shutdown" event instead, after the last request has finished.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (
    "The database is not answering right now, so this request could not be served; nothing "
    "was changed. Try again in a moment."
)
RETRY_AFTER_SECONDS = 5
# The gateway's paths: OpenAI's API, and Azure OpenAI's (/openai/deployments/...).
GATEWAY_PREFIXES = ("/v1/", "/openai/")


def _unavailable(exc: Exception) -> bool:
    # Connection refused or lost, database shutting down: an outage. Integrity, data and
    # programming errors are bugs or bad requests and stay server errors.
    return isinstance(exc, OperationalError | InterfaceError)


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Works for sync and async views alike (MiddlewareMixin adapts to either)."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _unavailable(exception):
            return None
        # The reason goes to the log; the page says what to do (the error may name a host).
        log.error("Database unavailable on %s: %s", request.path, exception)
        if request.path.startswith(GATEWAY_PREFIXES):
            response: HttpResponse = JsonResponse(
                {
                    "error": {
                        "message": DATABASE_UNAVAILABLE,
                        "type": "service_unavailable",
                        "code": "database_unavailable",
                        "param": None,
                    }
                },
                status=503,
            )
        else:
            # Rendered without the request: context processors would query the database.
            page = render_to_string("503.html", {"message": DATABASE_UNAVAILABLE})
            response = HttpResponse(page, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response


class LifespanShutdown:
    """Wraps the ASGI application: answers the lifespan protocol (Django does not) and writes
    the queued request-log records when the server shuts down."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                from gateway.fastpath import nodelay_on_listeners

                # The listening sockets exist now, in this worker (uvicorn --workers N).
                nodelay_on_listeners()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await sync_to_async(_flush_request_log, thread_sensitive=False)()
                from observability.setup import shutdown as send_last_spans

                await sync_to_async(send_last_spans, thread_sensitive=False)()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _flush_request_log() -> None:
    from django.db import close_old_connections

    from usage import request_log

    try:
        # What atexit would have run: writes the queue, or logs how many records were lost.
        request_log.flush_at_exit()
    finally:
        close_old_connections()
