"""HTTP clients for calls to providers: the address checked is the address connected to.

A base URL is checked when it is saved, but a host name can resolve to something else by the
time the server connects (DNS rebinding), and a provider can answer with a redirect to an
address nobody checked. So every outbound connection goes through this module:

- the host is resolved once, every address is checked with addresses.check_address, and the
  socket is opened to one of those very addresses; TLS still verifies the certificate (and
  sends SNI) for the host name, and the Host header is the URL's;
- a redirect is never followed, whatever the HTTP client above was told;
- an answer is refused beyond MAX_RESPONSE_BYTES or MAX_RESPONSE_SECONDS, and compressed
  answers (which could inflate past any cap) are not asked for and refused;
- an answer's cookies are dropped before any client sees them: the clients are shared by
  every provider and team, and a cookie jar would send one team's session (an
  authenticating proxy's, say) with another team's calls to the same host.

Loopback is allowed only for a host that is loopback by its very name (127.0.0.1, ::1,
localhost): a local kind's default URL. Any other name reaching a private or loopback
address must be listed in ROUTING_ALLOWED_PRIVATE_HOSTS, so a name that rebinds to 127.0.0.1
is refused whatever kind uses it. Link-local and metadata addresses are never allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpcore
import httpx
from django.core.exceptions import ValidationError

from ..addresses import (
    ADDRESS_METADATA,
    METADATA_HOSTNAMES,
    check_address,
    is_loopback_host,
    resolve_host,
)

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_RESPONSE_SECONDS = 900.0
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)

ADDRESS_REFUSED = "Refused to connect to {host}: {reason}"
UNRESOLVED = "Could not resolve {host}: {error}"
REDIRECT_REFUSED = (
    "The provider answered with a redirect (HTTP {status}) to another URL; redirects are "
    "not followed, so that a stored key never reaches a host it was not saved for. Use the "
    "final URL as the base URL."
)
TOO_LARGE = "The provider's answer was larger than {limit}; it was cut off."
TOO_SLOW = "The provider's answer took longer than {seconds:g} s in all; it was cut off."
COMPRESSED = (
    "The provider sent a compressed answer (Content-Encoding: {encoding}) although none was "
    "asked for; it was refused."
)

# Told of each HTTP request to a provider (observability/setup.py, for traces): None unless
# traces are on. `observer.attempt(request)` is a context manager, told of the answer.
observer: Any = None

# Set on a request that got a redirect answer. httpx copies a request's extensions into the
# request that follows the redirect, so the transport recognises it and refuses it.
_REDIRECTED = "routing_redirected"


class Refused(httpx.TransportError):
    """The transport refused to follow a redirect or to read further."""


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address that must not be connected to (httpx turns this into
    an httpx.ConnectError caused by it)."""


class Unresolved(AddressRefused):
    """The host name did not resolve (DNS): nothing was connected to."""


def refusal(exc: BaseException) -> str | None:
    """The message of a refusal behind `exc`, however deeply LiteLLM or an SDK wrapped it
    (they replace it with "Connection error."), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Refused | AddressRefused):
            return str(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` comes from a connection that could not be made at all (refused,
    unreachable network), however deeply LiteLLM or an SDK wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx.ConnectError | httpcore.ConnectError | ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# --- Where to connect. ---


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def pin(host: str, *, local: bool | None = None) -> list[str]:
    """Resolve `host` once and return its addresses, every one of them checked; raise
    AddressRefused naming the first refused address. `local` is the provider kind's
    flag when known; None allows loopback only for hosts that are loopback by name."""
    host = host.lower().strip("[]")
    if host.rstrip(".") in METADATA_HOSTNAMES:
        # Some resolve to a public address (Equinix's), so the answer alone proves nothing.
        reason = ADDRESS_METADATA % {"address": host}
        raise AddressRefused(ADDRESS_REFUSED.format(host=host, reason=reason))
    allow_loopback = is_loopback_host(host) if local is None else local
    literal = _literal(host)
    try:
        addresses = [literal] if literal is not None else resolve_host(host)
    except OSError as exc:
        raise Unresolved(UNRESOLVED.format(host=host, error=exc)) from None
    for ip in addresses:
        try:
            check_address(ip, local=allow_loopback, host=None if literal else host)
        except ValidationError as exc:
            reason = " ".join(exc.messages)
            raise AddressRefused(ADDRESS_REFUSED.format(host=host, reason=reason)) from None
    return [str(ip) for ip in addresses]


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, local: bool | None) -> None:
        self._local = local
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        error: Exception | None = None
        # httpcore then starts TLS with the URL's host name, not the address.
        for address in pin(host, local=self._local):
            try:
                return self._inner.connect_tcp(
                    address,
                    port,
                    timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise httpcore.ConnectError("Unix sockets are not used for providers.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, local: bool | None) -> None:
        self._local = local
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        # getaddrinfo blocks: resolve in a worker thread, within the connect timeout.
        with anyio.fail_after(timeout):
            addresses = await anyio.to_thread.run_sync(
                lambda: pin(host, local=self._local), abandon_on_cancel=True
            )
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise httpcore.ConnectError("Unix sockets are not used for providers.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# --- What is sent and read. ---


class _Guard:
    """Checks shared by the sync and async transports."""

    def __init__(self, max_bytes: int, max_seconds: float) -> None:
        self.max_bytes, self.max_seconds = max_bytes, max_seconds

    def before(self, request: httpx.Request) -> None:
        if request.extensions.get(_REDIRECTED):
            status = request.extensions[_REDIRECTED]
            raise Refused(REDIRECT_REFUSED.format(status=status), request=request)
        request.headers["Accept-Encoding"] = "identity"

    def after(self, request: httpx.Request, response: httpx.Response) -> str | None:
        """A reason to refuse the response, or None."""
        # Before the client's cookie jar reads them (see the module's docstring).
        if "set-cookie" in response.headers:
            del response.headers["set-cookie"]
        if response.has_redirect_location:
            request.extensions[_REDIRECTED] = response.status_code
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return COMPRESSED.format(encoding=encoding)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            return self.too_large()
        return None

    def too_large(self) -> str:
        mib, rest = divmod(self.max_bytes, 1024 * 1024)
        return TOO_LARGE.format(
            limit=f"{mib} MiB" if mib and not rest else f"{self.max_bytes} bytes"
        )

    def check(self, received: int, started: float) -> None:
        if received > self.max_bytes:
            raise Refused(self.too_large())
        if time.monotonic() - started > self.max_seconds:
            raise Refused(TOO_SLOW.format(seconds=self.max_seconds))


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, guard: _Guard, started: float) -> None:
        self._inner, self._guard, self._started = inner, guard, started

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._inner:
            received += len(chunk)
            self._guard.check(received, self._started)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncCappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, guard: _Guard, started: float) -> None:
        self._inner, self._guard, self._started = inner, guard, started

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            self._guard.check(received, self._started)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class PinnedTransport(httpx.BaseTransport):
    def __init__(
        self,
        *,
        local: bool | None = None,
        verify: Any = True,
        max_bytes: int = MAX_RESPONSE_BYTES,
        max_seconds: float = MAX_RESPONSE_SECONDS,
        shared: bool = False,
    ) -> None:
        self._guard = _Guard(max_bytes, max_seconds)
        # Shared by every client LiteLLM makes: one of them being closed (LiteLLM closes the
        # clients it evicts from its cache) must not close the pool under the others.
        self._shared = shared
        # A transport never uses proxies (the client would mount those, and a client given a
        # transport ignores them); trust_env here only lets SSL_CERT_FILE name a CA bundle.
        self._inner = httpx.HTTPTransport(verify=verify, limits=LIMITS)
        # httpx does not expose the network backend; its pool does (httpcore's public API).
        self._inner._pool._network_backend = _PinnedBackend(local)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if observer is None:
            return self._handle(request)
        with observer.attempt(request) as attempt:
            return attempt.answered(self._handle(request))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self._guard.before(request)
        started = time.monotonic()
        response = self._inner.handle_request(request)
        refusal = self._guard.after(request, response)
        if refusal:
            response.close()
            raise Refused(refusal, request=request)
        response.stream = _CappedStream(response.stream, self._guard, started)
        return response

    def close(self) -> None:
        if not self._shared:
            self._inner.close()


class _LazyExpiryPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, asking only the connection it is about to reuse whether it expired.

    httpcore asks every pooled connection, when each request starts and again when it ends,
    whether the server closed it: a poll() system call a connection, about a tenth of the
    gateway's CPU at concurrency 16 (issue 18). Only a connection about to carry a request
    needs the answer; one that expired while nobody asked is found out, and closed, when it
    is next chosen, or when it is one idle connection too many.
    """

    def _assign_requests_to_connections(self) -> list[Any]:
        closing: list[Any] = []
        self._connections = [c for c in self._connections if not c.is_closed()]
        idle = [c for c in self._connections if c.is_idle()]
        for connection in idle[self._max_keepalive_connections :]:
            self._connections.remove(connection)
            closing.append(connection)
        for pool_request in [r for r in self._requests if r.is_queued()]:
            origin = pool_request.request.url.origin
            connection = self._reusable(origin, closing)
            if connection is None:
                if len(self._connections) >= self._max_connections:
                    idle = [c for c in self._connections if c.is_idle()]
                    if not idle:
                        continue  # stays queued until a connection is released
                    self._connections.remove(idle[0])
                    closing.append(idle[0])
                connection = self.create_connection(origin)
                self._connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing

    def _reusable(self, origin: httpcore.Origin, closing: list[Any]) -> Any:
        for connection in list(self._connections):
            if not (connection.can_handle_request(origin) and connection.is_available()):
                continue
            if connection.has_expired():
                self._connections.remove(connection)
                closing.append(connection)
                continue
            return connection
        return None


class AsyncPinnedTransport(httpx.AsyncBaseTransport):
    """One connection pool per event loop: pooled connections belong to the loop that opened
    them, and a process may run several loops (asgiref threads, tests)."""

    def __init__(
        self,
        *,
        local: bool | None = None,
        verify: Any = True,
        max_bytes: int = MAX_RESPONSE_BYTES,
        max_seconds: float = MAX_RESPONSE_SECONDS,
        shared: bool = False,
    ) -> None:
        self._guard = _Guard(max_bytes, max_seconds)
        self._local, self._verify, self._shared = local, verify, shared
        self._pools: weakref.WeakKeyDictionary[Any, httpx.AsyncHTTPTransport] = (
            weakref.WeakKeyDictionary()
        )

    def _pool(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(verify=self._verify, limits=LIMITS)
            pool._pool = _LazyExpiryPool(
                ssl_context=pool._pool._ssl_context,
                max_connections=LIMITS.max_connections,
                max_keepalive_connections=LIMITS.max_keepalive_connections,
                keepalive_expiry=LIMITS.keepalive_expiry,
                network_backend=_AsyncPinnedBackend(self._local),
            )
            self._pools[loop] = pool
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if observer is None:
            return await self._handle(request)
        with observer.attempt(request) as attempt:
            return attempt.answered(await self._handle(request))

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self._guard.before(request)
        started = time.monotonic()
        response = await self._pool().handle_async_request(request)
        refusal = self._guard.after(request, response)
        if refusal:
            await response.aclose()
            raise Refused(refusal, request=request)
        response.stream = _AsyncCappedStream(response.stream, self._guard, started)
        return response

    async def aclose(self) -> None:
        if self._shared:
            return
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()


def client(
    *, timeout: float | httpx.Timeout, transport: PinnedTransport | None = None, **kwargs: Any
) -> httpx.Client:
    """An httpx client for providers: pinned, redirects off, capped. `kwargs` go to
    PinnedTransport (local=, verify=, max_bytes=, max_seconds=)."""
    return httpx.Client(
        transport=transport or PinnedTransport(**kwargs), timeout=timeout, follow_redirects=False
    )


def async_client(
    *, timeout: float | httpx.Timeout, transport: AsyncPinnedTransport | None = None, **kwargs: Any
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport or AsyncPinnedTransport(**kwargs),
        timeout=timeout,
        follow_redirects=False,
    )
