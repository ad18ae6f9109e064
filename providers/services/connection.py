"""The connection test: ask the provider for its model list, exactly as configured."""

from __future__ import annotations

import errno
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from .. import crypto, kinds
from ..models import Provider
from ..redact import redact
from ..routing import outbound
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
# What to do about an error, by its cause (explain()); {where} is host:port, {label} the kind's.
NOTHING_LISTENING = "Nothing is listening at {where}: is {label} running?"
NOTHING_LISTENING_REMOTE = (
    "Nothing is listening at {where}: check the base URL's host and port, and that the "
    "server is up."
)
NO_SUCH_HOST = (
    "The host name {host} could not be found (DNS): check the base URL for a typo, and that "
    "this server can resolve it."
)
TLS_UNVERIFIED = (
    "The TLS certificate of {host} could not be verified ({reason}): check the base URL's host; "
    "a private server needs a certificate this server trusts."
)
TIMED_OUT_HINT = (
    "Is the server at {where} up, and the base URL right? A server still loading a model may "
    "need a longer timeout."
)
# After "HTTP {status}: ", which says the status already.
WRONG_KEY = (
    "{label} refused the API key: check that it is complete and still active, and enter it again."
)
KEY_NOT_ALLOWED = (
    "{label} accepted the API key but refused this request: the key may lack the permission "
    "to list models, or belong to another project or region."
)
WRONG_BASE_URL = "Nothing found at {url}: the base URL is probably wrong, e.g. {example}."
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


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _where(provider: Provider) -> tuple[str, str]:
    parts = urlsplit(provider.effective_base_url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = ""
    shown = f"[{host}]" if ":" in host else host
    return host, f"{shown}:{port}"


def explain(error: BaseException | int, provider: Provider) -> str | None:
    """What a failed connection test means and what to do about it, in words a person can
    act on ("[Errno 111] Connection refused" becomes "Nothing is listening at
    127.0.0.1:9599: is vLLM running?"); None when there is nothing better to say than the
    error itself. `error` is the exception the test raised, or the HTTP status it got. The
    one place these are worded: the dashboard, Test all and the command line all show it."""
    kind = provider.kind_info
    host, where = _where(provider)
    if isinstance(error, int):
        if error == 401:
            return WRONG_KEY.format(label=kind.label)
        if error == 403:
            return KEY_NOT_ALLOWED.format(label=kind.label)
        if error == 404:
            url = kind.probe(provider.effective_base_url, provider.api_version).url
            example = kind.default_base_url or kind.base_url_example
            return WRONG_BASE_URL.format(url=url, example=example)
        return None
    if isinstance(error, httpx.TimeoutException):
        return TIMED_OUT_HINT.format(where=where)
    for cause in _causes(error):
        if isinstance(cause, outbound.Unresolved):
            return NO_SUCH_HOST.format(host=host)
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or "not trusted"
            return TLS_UNVERIFIED.format(host=host, reason=reason)
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            template = NOTHING_LISTENING if kind.local else NOTHING_LISTENING_REMOTE
            return template.format(where=where, label=kind.product)
    return None


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


@sensitive_variables("api_key", "headers", "auth")
def _fetch(
    client, probe, url, headers, *, provider, started, limit, api_key, secrets
) -> tuple[int, bytes]:
    """One request of the test; a failure is raised as the result to report."""
    body = probe.body
    try:
        auth = provider.kind_info.request_headers(
            method=probe.method,
            url=url,
            body=body,
            api_key=api_key,
            options=dict(provider.options or {}),
            timeout=limit,
        )
    except kinds.AuthFailed as exc:
        raise _Failed(ConnectionResult(ok=False, message=str(exc))) from None
    headers = {**headers, **auth}
    if probe.json is not None:
        headers.setdefault("Content-Type", "application/json")
    try:
        with client.stream(probe.method, url, headers=headers, content=body or None) as resp:
            body = _read_capped(resp, started + limit)
    except httpx.TimeoutException as exc:
        message = f"{TIMED_OUT.format(timeout=limit)} {explain(exc, provider)}"
        raise _Failed(ConnectionResult(ok=False, message=message)) from None
    except httpx.HTTPError as exc:
        detail = redact(str(exc) or type(exc).__name__, secrets)
        message = explain(exc, provider) or UNREACHABLE.format(error=detail)
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
        # Redacted before it is cut: a key straddling the cut would otherwise show its start.
        detail = redact(body[:4000].decode("utf-8", "replace").strip(), secrets)[:300]
        if advice := explain(status, provider):
            detail = f"{advice} (It answered: {detail})" if detail else advice
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
    secrets = (*kind.secret_values(api_key), *headers.values())
    base_url = provider.effective_base_url
    try:
        validate_base_url(base_url, local=kind.local)
    except ValidationError as exc:
        return ConnectionResult(ok=False, message=" ".join(exc.messages))
    probe = kind.probe(base_url, provider.api_version)
    # The kind's auth headers are added per request (_fetch): a signature covers the URL.
    sent = {**kind.merged_headers(headers), **dict(probe.headers)}
    started = time.perf_counter()
    limit = provider.test_timeout
    listed: list[str] = []
    note = ""
    try:
        with _client(probe.url, limit) as client:
            url: str | None = probe.url
            for _page in range(kinds.MAX_MODEL_PAGES):
                status, body = _fetch(
                    client,
                    probe,
                    url,
                    sent,
                    provider=provider,
                    started=started,
                    limit=limit,
                    api_key=api_key,
                    secrets=secrets,
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


def provider_test_unsaved(*, provider: Provider) -> ConnectionResult:
    """Test before saving: the very probe a saved provider's test runs, on an unsaved
    Provider (services.provider_draft); nothing is recorded or written."""
    if provider.pk is not None:
        raise TypeError("provider_test_unsaved() takes an unsaved provider; use provider_test")
    return _probe(provider)


def _outcome(future: Future) -> ConnectionResult:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - one broken probe must not abort the batch
        # The type only: an unexpected exception's text may carry the request, key included.
        return ConnectionResult(ok=False, message=PROBE_CRASHED.format(error=type(exc).__name__))


# How many providers "Test all" tests at a time: the page without JavaScript (one batch) and
# the htmx rows (one request each, bounded per process by the view) alike.
TEST_ALL_CONCURRENCY = 8


def provider_test_many(
    *,
    providers: list[Provider],
    max_workers: int = TEST_ALL_CONCURRENCY,
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
