"""The connection test: ask the provider for its model list, exactly as configured."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import httpx
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from .. import crypto, outbound
from ..models import Provider
from ..redact import redact
from ..validators import validate_base_url
from . import audit, health

MAX_BODY_BYTES = 4 * 1024 * 1024
TIMED_OUT = "No answer within {timeout:g} s (the connection test's limit)."
UNREACHABLE = "Could not connect: {error}"
REDIRECTED = (
    "The provider answered with a redirect to {location!r}; redirects are not followed. "
    "Use the final URL as the base URL."
)
HTTP_ERROR = "HTTP {status}: {detail}"
NOT_JSON = "The answer was not JSON: is the base URL right (it usually ends in /v1)?"
TOO_LARGE = "The answer was larger than 4 MiB; is the base URL right?"
PROBE_CRASHED = "The test itself failed unexpectedly ({error})."
KEY_UNDECRYPTABLE = (
    "The stored API key cannot be decrypted with ROUTING_ENCRYPTION_KEYS; restore the key it "
    "was encrypted with, or enter the API key again."
)


@dataclass
class ConnectionResult:
    ok: bool
    message: str
    latency_ms: float | None = None
    models: list[str] = field(default_factory=list)
    status: int | None = None
    # "healthy" / "unhealthy" when this test changed the provider's health state.
    health_change: str = ""


def _client(url: str, timeout: float) -> httpx.Client:
    """The one place the test's HTTP client is made (so its transport can be hardened)."""
    return outbound.client(timeout=timeout)


def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise ValueError(TOO_LARGE)
        # httpx's timeout is per read: a server trickling bytes would never trip it.
        if time.perf_counter() > deadline:
            raise httpx.ReadTimeout("the whole answer took longer than the timeout")
    return bytes(body)


@sensitive_variables("api_key", "headers", "secrets")
def _probe(provider: Provider) -> ConnectionResult:
    kind = provider.kind_info
    try:
        api_key = kind.effective_api_key(provider.get_api_key())
        headers = provider.get_headers()
    except crypto.UndecryptableSecret:
        return ConnectionResult(ok=False, message=KEY_UNDECRYPTABLE)
    secrets = (api_key, *headers.values())
    base_url = provider.effective_base_url
    try:
        validate_base_url(base_url, local=kind.local)
    except ValidationError as exc:
        return ConnectionResult(ok=False, message=" ".join(exc.messages))
    url = kind.models_url(base_url, provider.api_version)
    started = time.perf_counter()
    limit = provider.test_timeout
    try:
        with (
            _client(url, limit) as client,
            client.stream("GET", url, headers={**headers, **kind.auth_headers(api_key)}) as resp,
        ):
            body = _read_capped(resp, started + limit)
    except httpx.TimeoutException:
        return ConnectionResult(ok=False, message=TIMED_OUT.format(timeout=limit))
    except httpx.HTTPError as exc:
        detail = redact(str(exc) or type(exc).__name__, secrets)
        return ConnectionResult(ok=False, message=UNREACHABLE.format(error=detail))
    except ValueError as exc:
        return ConnectionResult(ok=False, message=str(exc))
    latency_ms = (time.perf_counter() - started) * 1000
    status = resp.status_code
    if resp.is_redirect:
        location = redact(resp.headers.get("location", ""), secrets)
        return ConnectionResult(
            ok=False,
            message=REDIRECTED.format(location=location),
            latency_ms=latency_ms,
            status=status,
        )
    if status >= 400:
        # Redacted before it is cut: a key straddling the cut would otherwise show its start.
        detail = redact(body[:4000].decode("utf-8", "replace").strip(), secrets)[:300]
        return ConnectionResult(
            ok=False,
            message=HTTP_ERROR.format(status=status, detail=detail),
            latency_ms=latency_ms,
            status=status,
        )
    try:
        models = kind.parse_models(httpx.Response(200, content=body).json())
    except (ValueError, KeyError, TypeError, AttributeError):
        return ConnectionResult(ok=False, message=NOT_JSON, latency_ms=latency_ms, status=status)
    return ConnectionResult(
        ok=True,
        message=f"OK: {len(models)} model{'s' if len(models) != 1 else ''} found",
        latency_ms=latency_ms,
        models=models,
        status=status,
    )


def provider_test(*, provider: Provider, actor: audit.Actor = None) -> ConnectionResult:
    """Run the real connection test and record its outcome (last test, model list, health
    history and state) on the provider."""
    result = _probe(provider)
    result.health_change = health.probe_record(provider=provider, result=result, actor=actor)
    return result


def _outcome(future: Future) -> ConnectionResult:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - one broken probe must not abort the batch
        # The type only: an unexpected exception's text may carry the request, key included.
        return ConnectionResult(ok=False, message=PROBE_CRASHED.format(error=type(exc).__name__))


def provider_test_many(
    *,
    providers: list[Provider],
    max_workers: int = 8,
    actor: audit.Actor = None,
    on_result: Callable[[Provider, ConnectionResult], None] | None = None,
) -> list[tuple[Provider, ConnectionResult]]:
    """Test several providers concurrently, at most `max_workers` at a time. Each probe has
    its own timeout, so one hanging provider never stalls the others: each result is
    recorded, and `on_result` called, as soon as it arrives. Returned in the given order."""
    if not providers:
        return []
    results: dict[int, ConnectionResult] = {}
    # Threads only talk to the network; results are written here, on the caller's connection.
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(providers)))) as pool:
        futures = {pool.submit(_probe, p): i for i, p in enumerate(providers)}
        for future in as_completed(futures):
            index = futures[future]
            provider, result = providers[index], _outcome(future)
            result.health_change = health.probe_record(
                provider=provider, result=result, actor=actor
            )
            results[index] = result
            if on_result is not None:
                on_result(provider, result)
    return [(p, results[i]) for i, p in enumerate(providers)]
