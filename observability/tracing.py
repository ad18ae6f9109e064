"""OpenTelemetry traces of gateway requests, sent over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT.

Only imported when that variable is set (observability/setup.py): the SDK and its exporter
cost nothing otherwise. Each gateway request is a server span, child of the caller's span
when it sends a W3C `traceparent`; under it:
- "routing": which target the requested model resolved to (a group, a provider's model);
- "upstream attempt": each HTTP request to a provider, as the outbound transport sends it
  (so a router's retries and fallbacks are one span each), with the provider it went to;
- "request log": the call's record, queued for the log's writer.
The exporter's other settings are OpenTelemetry's own variables (OTEL_SERVICE_NAME,
OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY, ...). Attributes hold names, statuses
and counts: never a key, a URL's query (Gemini's carries the key) or a prompt.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

SERVICE_NAME = "routing-admin"

tracer: trace.Tracer = trace.get_tracer("routing_admin")


def start() -> None:
    """Install the SDK's tracer provider, exporting in batches (a background thread)."""
    global tracer
    # OTEL_SERVICE_NAME, when set, wins over this default (Resource.create merges it in).
    resource = Resource.create({"service.name": SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("routing_admin")


def shutdown() -> None:
    """Send what is still batched (the server is stopping)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


class _Headers:
    """propagate.extract's getter over ASGI's header list."""

    @staticmethod
    def get(carrier: list, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [v.decode("latin-1") for k, v in carrier if k.lower() == name]
        return found or None

    @staticmethod
    def keys(carrier: list) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


async def serve(app: Any, scope: dict, receive: Any, send: Any, endpoint: str) -> None:
    """Serve one gateway request inside its server span."""
    parent = propagate.extract(scope.get("headers") or [], getter=_Headers())
    method = scope.get("method", "")
    attributes = {"http.request.method": method, "http.route": endpoint, "url.path": endpoint}
    with tracer.start_as_current_span(
        f"{method} {endpoint}", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:

        async def answered(message: dict) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        await app(scope, receive, answered)


@contextlib.contextmanager
def routing(model: str | None) -> Iterator[trace.Span]:
    with tracer.start_as_current_span(
        "routing", attributes={"routing.requested_model": (model or "default")[:264]}
    ) as span:
        yield span


def routed(span: trace.Span, target: Any) -> None:
    group = getattr(target, "group", None)
    if group is not None:
        span.set_attribute("routing.group", group.name)
        span.set_attribute("routing.deployments", [d.label for d in group.deployments])
    else:
        span.set_attribute("routing.provider", target.provider.name)
        span.set_attribute("routing.model", target.model)


def _provider_of(url: Any) -> str:
    """The provider whose base URL the request goes to ("" when none or several match)."""
    from providers.routing import live

    snap = live.last_built()
    if snap is None:
        return ""
    here = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}".lower()
    found = {
        name
        for name, entry in snap.providers.items()
        if entry.base_url and here.startswith(_without_query(entry.base_url).rstrip("/"))
    }
    return found.pop() if len(found) == 1 else ""


def _without_query(url: str) -> str:
    parts = urlsplit(url.lower())
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Attempt:
    """One HTTP request to a provider: a client span from sending it to the end of the
    answer's body (a stream's last chunk), or to the failure."""

    def __init__(self, request: Any) -> None:
        url = request.url
        self.span = tracer.start_span(
            "upstream attempt",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": request.method,
                "server.address": url.host,
                "server.port": url.port or (443 if url.scheme == "https" else 80),
                "url.path": url.path,
                "routing.provider": _provider_of(url),
            },
        )
        self.handed = False

    def answered(self, response: Any) -> Any:
        self.span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            self.span.set_status(Status(StatusCode.ERROR))
        inner = response.stream
        if hasattr(inner, "__aiter__"):
            response.stream = _AsyncBody(inner, self.span)
        else:
            response.stream = _Body(inner, self.span)
        self.handed = True  # the body ends the span
        return response

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            _failed(self.span, exc)
        if not self.handed:
            self.span.end()


def _failed(span: trace.Span, exc: BaseException) -> None:
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    span.set_attribute("error.type", type(exc).__name__)


def _end(span: trace.Span) -> None:
    if span.is_recording():  # a body may be closed twice
        span.end()


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Any, span: trace.Span) -> None:
        self._inner, self._span = inner, span

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except Exception as exc:
            _failed(self._span, exc)
            raise

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            _end(self._span)


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, inner: Any, span: trace.Span) -> None:
        self._inner, self._span = inner, span

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:
            _failed(self._span, exc)
            raise

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            _end(self._span)


def logged(fields: dict[str, Any], endpoint: str) -> None:
    """The call's request-log record, as an instant span (the writer stores it later)."""
    attributes = {
        "routing.endpoint": endpoint,
        "routing.provider": fields.get("provider", ""),
        "routing.model": fields.get("model", ""),
        "routing.token": fields.get("token_name", ""),
        "routing.fallbacks": fields.get("fallbacks", 0),
        "routing.stream": bool(fields.get("stream")),
        "http.response.status_code": fields.get("status") or 0,
        "routing.latency_ms": fields.get("latency_ms", 0.0),
        "routing.ok": bool(fields.get("ok")),
    }
    for kind in ("prompt", "completion"):
        if fields.get(f"{kind}_tokens") is not None:
            attributes[f"gen_ai.usage.{kind}_tokens"] = fields[f"{kind}_tokens"]
    tracer.start_span("request log", attributes=attributes).end()
