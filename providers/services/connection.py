"""The connection test: ask the provider for its model list, exactly as configured."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import crypto
from ..models import Provider
from ..redact import redact
from ..validators import validate_base_url

MAX_BODY_BYTES = 4 * 1024 * 1024
TIMED_OUT = "No answer within {timeout:g} s (the provider's timeout)."
UNREACHABLE = "Could not connect: {error}"
REDIRECTED = (
    "The provider answered with a redirect to {location!r}; redirects are not followed. "
    "Use the final URL as the base URL."
)
HTTP_ERROR = "HTTP {status}: {detail}"
NOT_JSON = "The answer was not JSON: is the base URL right (it usually ends in /v1)?"
TOO_LARGE = "The answer was larger than 4 MiB; is the base URL right?"
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


def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise ValueError(TOO_LARGE)
    return bytes(body)


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
    try:
        with (
            httpx.Client(timeout=provider.timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={**headers, **kind.auth_headers(api_key)}) as resp,
        ):
            body = _read_capped(resp)
    except httpx.TimeoutException:
        return ConnectionResult(ok=False, message=TIMED_OUT.format(timeout=provider.timeout))
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
        detail = redact(body[:300].decode("utf-8", "replace").strip(), secrets)
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


def provider_test(*, provider: Provider) -> ConnectionResult:
    """Run the real connection test and record its outcome on the provider row."""
    result = _probe(provider)
    _record(provider, result)
    return result


def provider_test_many(
    *, providers: list[Provider], max_workers: int = 8
) -> list[tuple[Provider, ConnectionResult]]:
    """Test several providers concurrently, at most `max_workers` at a time. Each probe has
    its own timeout, so one hanging provider never stalls the others."""
    if not providers:
        return []
    # Threads only talk to the network; results are written here, on the caller's connection.
    with ThreadPoolExecutor(max_workers=min(max_workers, len(providers))) as pool:
        results = list(pool.map(_probe, providers))
    for provider, result in zip(providers, results, strict=True):
        _record(provider, result)
    return list(zip(providers, results, strict=True))


def _record(provider: Provider, result: ConnectionResult) -> None:
    fields = {
        "last_test_ok": result.ok,
        "last_test_latency_ms": result.latency_ms,
        "last_test_at": timezone.now(),
        "last_test_message": result.message[:500],
    }
    if result.ok:
        fields["discovered_models"] = result.models
    # A plain UPDATE: a test result is not a configuration change, so it neither bumps the
    # edit version (which would make an open edit form stale) nor the routing version.
    Provider.objects.filter(pk=provider.pk).update(**fields)
    for name, value in fields.items():
        setattr(provider, name, value)
