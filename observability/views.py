"""GET /metrics: every worker's metrics in Prometheus' text format, for scrapers only.

Who may scrape is configured, never assumed: ROUTING_METRICS_TOKEN (the scraper sends
`Authorization: Bearer <token>`), ROUTING_METRICS_ALLOWED_IPS (addresses or CIDR networks;
behind ROUTING_TRUSTED_PROXIES, the client's address as they forward it), or both, and then
a scrape needs both. With neither, /metrics refuses every scrape and says what to set, and no
metric is counted (observability/setup.py).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from providers.addresses import network_list, unmapped

METRICS_OFF = (
    "Metrics are off: set ROUTING_METRICS_TOKEN (scrapers then send 'Authorization: Bearer "
    "<token>') or ROUTING_METRICS_ALLOWED_IPS (addresses or CIDR networks that may scrape), "
    "or both, and restart the server."
)
METRICS_TOKEN_WRONG = (
    "Missing or wrong bearer token: scrapers of /metrics send 'Authorization: Bearer "
    "<ROUTING_METRICS_TOKEN>'."
)
METRICS_ADDRESS_REFUSED = (
    "Address {address} may not scrape /metrics: it is not in ROUTING_METRICS_ALLOWED_IPS."
)
METRICS_NOT_COUNTED = (
    "Metrics are configured but this process does not count them: it was not started by the "
    "ASGI server (bin/run or `uvicorn routing_admin.asgi:application`)."
)
METHOD_NOT_ALLOWED = "Method {method} is not allowed here; use GET."


@cache
def _networks(entries: tuple[str, ...]) -> tuple:
    return network_list(entries)[0]


def _text(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response


def _token_ok(request: HttpRequest, expected: str) -> bool:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    given = raw.strip().encode() if scheme.lower() == "bearer" else b""
    # Compared in constant time; never logged or echoed.
    return hmac.compare_digest(given, expected.encode())


def _address_ok(address: str) -> bool:
    try:
        ip = unmapped(ipaddress.ip_address(address))
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.ROUTING_METRICS_ALLOWED_IPS)))


def refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request may not scrape, as a response; None when it may."""
    token, addresses = settings.ROUTING_METRICS_TOKEN, settings.ROUTING_METRICS_ALLOWED_IPS
    if not token and not addresses:
        return _text(403, METRICS_OFF)
    if addresses:
        from accounts.throttle import client_ip

        address = client_ip(request)
        if not _address_ok(address):
            return _text(403, METRICS_ADDRESS_REFUSED.format(address=address[:64]))
    if token and not _token_ok(request, token):
        response = _text(401, METRICS_TOKEN_WRONG)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return None


async def metrics(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = _text(405, METHOD_NOT_ALLOWED.format(method=request.method))
        response["Allow"] = "GET, HEAD"
        return response
    refused = refusal(request)
    if refused is not None:
        return refused
    from . import setup

    found = setup.installed_metrics()
    if found is None:
        return _text(503, METRICS_NOT_COUNTED)
    from prometheus_client import CONTENT_TYPE_LATEST

    # Reads every worker's files: off the event loop.
    body = await asyncio.to_thread(found.render)
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
