"""The connection test: ask the provider for its model list, exactly as configured."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import httpx
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from .. import crypto, kinds, outbound
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
NOT_A_MODEL_LIST = (
    "The answer was JSON, but not a model list in {label}'s format: is the base URL right "
    "(e.g. {example})?"
)
TOO_MANY_PAGES = "OK, but the model list has more than {pages} pages: the first {count} are kept."
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


class _Failed(Exception):
    def __init__(self, result: ConnectionResult) -> None:
        self.result = result


def _fetch(client, probe, url, headers, *, started, limit, secrets) -> tuple[int, bytes]:
    """One request of the test; a failure is raised as the result to report."""
    try:
        with client.stream(probe.method, url, headers=headers, json=probe.json) as resp:
            body = _read_capped(resp, started + limit)
    except httpx.TimeoutException:
        raise _Failed(ConnectionResult(ok=False, message=TIMED_OUT.format(timeout=limit))) from None
    except httpx.HTTPError as exc:
        detail = redact(str(exc) or type(exc).__name__, secrets)
        message = UNREACHABLE.format(error=detail)
        raise _Failed(ConnectionResult(ok=False, message=message)) from None
    except ValueError as exc:
        raise _Failed(ConnectionResult(ok=False, message=str(exc))) from None
    latency_ms = (time.perf_counter() - started) * 1000
    status = resp.status_code
    if resp.is_redirect:
        location = redact(resp.headers.get("location", ""), secrets)
        message = REDIRECTED.format(location=location)
        raise _Failed(ConnectionResult(False, message, latency_ms, status=status))
    # Without a model list, the probe is a request refused for its content: the 400 says
    # that the route exists and the key was accepted.
    refused_as_probed = not probe.lists_models and status == 400
    if status >= 400 and not refused_as_probed:
        detail = redact(body[:300].decode("utf-8", "replace").strip(), secrets)
        message = HTTP_ERROR.format(status=status, detail=detail)
        raise _Failed(ConnectionResult(False, message, latency_ms, status=status))
    return status, body


def _parse(kind, body: bytes) -> tuple[object, list[str]]:
    try:
        payload = httpx.Response(200, content=body).json()
    except ValueError:
        raise _Failed(ConnectionResult(ok=False, message=NOT_JSON)) from None
    try:
        return payload, kind.parse_models(payload)
    except (kinds.ModelListError, KeyError, TypeError, AttributeError):
        example = kind.default_base_url or kind.base_url_example
        message = NOT_A_MODEL_LIST.format(label=kind.label, example=example)
        raise _Failed(ConnectionResult(ok=False, message=message)) from None


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
    probe = kind.probe(base_url, provider.api_version)
    sent = {**kind.merged_headers(headers), **dict(probe.headers), **kind.auth_headers(api_key)}
    started = time.perf_counter()
    limit = provider.test_timeout
    listed: list[str] = []
    note = ""
    try:
        with _client(probe.url, limit) as client:
            url: str | None = probe.url
            for _page in range(kinds.MAX_MODEL_PAGES):
                status, body = _fetch(
                    client, probe, url, sent, started=started, limit=limit, secrets=secrets
                )
                if not probe.lists_models:
                    break
                payload, models = _parse(kind, body)
                listed.extend(models)
                url = kind.next_models_url(url, payload)
                if url is None:
                    break
            else:
                note = TOO_MANY_PAGES.format(pages=kinds.MAX_MODEL_PAGES, count=len(listed))
    except _Failed as failed:
        return failed.result
    latency_ms = (time.perf_counter() - started) * 1000
    listed = sorted(set(listed))
    models = kind.callable_models(listed=listed, declared=list(provider.declared_models or []))
    message = note or probe.ok_message or kind.ok_message(listed=listed, models=models)
    return ConnectionResult(
        ok=True, message=message, latency_ms=latency_ms, models=models, status=status
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
