"""Login throttling and the per-person limit on connection tests.

Counts are rows in the database (ThrottleHit), so every process and every worker shares
them. An attempt is recorded *before* the password is checked, then counted: two requests
racing each other both see the other's row, so parallel guesses cannot slip past the limit.

The client address is the peer address; X-Forwarded-For is believed only from a proxy listed
in ROUTING_TRUSTED_PROXIES, so a forged header changes nothing. Account lockout keys on the
username alone, whatever the address.
"""

from __future__ import annotations

import ipaddress
import math
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache, wraps

from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_htmx.http import reswap, retarget

from providers.addresses import network_list, unmapped

from .models import ThrottleHit

ACCOUNT_LOCKED = (
    "Too many failed logins for this account: it is locked for {minutes} more minute{s}, and "
    "until then no password is accepted, not even the right one. Try again later, or ask an "
    "admin."
)
ADDRESS_BLOCKED = (
    "Too many failed logins from your network address: logging in from it is blocked for "
    "{minutes} more minute{s}."
)
TOO_MANY_TESTS = (
    "Too many connection tests: at most {limit} a minute per person. Try again in {seconds} s."
)

LOGIN_USER, LOGIN_ADDRESS, TESTS, BATCH = "login-user", "login-ip", "tests", "tests-batch"
TEST_WINDOW = timedelta(minutes=1)
# "Test all" counts as one test: it grants each enabled provider one test of its own, to be
# fetched (row by row, by htmx) within this time.
BATCH_GRANT_SECONDS = 120


# --- the client address -----------------------------------------------------------------


@cache
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return network_list(entries)[0]  # the others are reported by the system check routing.E005


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = unmapped(ip)
    return any(ip in net for net in _networks(tuple(settings.ROUTING_TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    """The peer address; behind trusted proxies, the first address in X-Forwarded-For (read
    from the right) that is not itself a trusted proxy."""
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    if not _trusted(address):
        return address
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # garbage in the chain: trust nothing beyond our own proxy
        if not _trusted(hop):
            return hop
        address = hop
    return address


# --- counting ---------------------------------------------------------------------------


def _prune(now: datetime) -> None:
    horizon = max(
        settings.ROUTING_LOGIN_WINDOW_SECONDS,
        settings.ROUTING_LOGIN_LOCKOUT_SECONDS,
        BATCH_GRANT_SECONDS,
        60,
    )
    ThrottleHit.objects.filter(at__lt=now - timedelta(seconds=horizon)).delete()


def _minutes(seconds: float) -> dict:
    minutes = max(1, math.ceil(seconds / 60))
    return {"minutes": minutes, "s": "" if minutes == 1 else "s"}


def _locked_for(hit: ThrottleHit, limit: int, now: datetime) -> float:
    """Seconds left of a lockout: `limit` failures (other than this attempt) within the window
    lock the key until the lockout time has passed since the latest of them."""
    window = timedelta(seconds=settings.ROUTING_LOGIN_WINDOW_SECONDS)
    earlier = ThrottleHit.objects.filter(
        scope=hit.scope, key=hit.key, at__gte=now - window
    ).exclude(pk=hit.pk)
    summary = earlier.aggregate(latest=Max("at"))
    if summary["latest"] is None or earlier.count() < limit:
        return 0.0
    until = summary["latest"] + timedelta(seconds=settings.ROUTING_LOGIN_LOCKOUT_SECONDS)
    return max(0.0, (until - now).total_seconds())


def normalise_username(username: str) -> str:
    # "Admin", "ADMIN" and a full-width "ａｄｍｉｎ" are one account for the lockout.
    return unicodedata.normalize("NFKC", username).casefold().strip()[:200]


class LoginAttempt:
    """One login attempt, counted as a failure until `succeeded()` says otherwise.

    `username` is None for a single sign-on callback, where the account is not known before
    the IdP answers: then only the address is counted."""

    def __init__(self, username: str | None, address: str) -> None:
        now = timezone.now()
        _prune(now)
        self.account = None
        if username is not None:
            key = normalise_username(username)
            self.account = ThrottleHit.objects.create(scope=LOGIN_USER, key=key, at=now)
        network = ThrottleHit.objects.create(scope=LOGIN_ADDRESS, key=address[:200], at=now)
        self.hits = [hit for hit in (self.account, network) if hit is not None]
        self.refusal = ""
        account_limit = settings.ROUTING_LOGIN_FAILURE_LIMIT
        if self.account and (seconds := _locked_for(self.account, account_limit, now)):
            self.refusal = ACCOUNT_LOCKED.format(**_minutes(seconds))
        elif seconds := _locked_for(network, settings.ROUTING_LOGIN_IP_FAILURE_LIMIT, now):
            self.refusal = ADDRESS_BLOCKED.format(**_minutes(seconds))
        if self.refusal:
            # A refused attempt checks no password, so it is no failure: it must not make
            # the lockout last for ever.
            self.forget()

    def forget(self) -> None:
        ThrottleHit.objects.filter(pk__in=[hit.pk for hit in self.hits]).delete()

    def succeeded(self) -> None:
        # The account's failures are forgiven; the address keeps its other failures, or one
        # valid account would reset the budget of a password sprayer.
        if self.account is not None:
            ThrottleHit.objects.filter(scope=LOGIN_USER, key=self.account.key).delete()
        self.forget()


# --- the connection-test limit ------------------------------------------------------------


def _test_budget(key: str) -> float:
    """Record one test for `key`; seconds to wait when over the limit, else 0."""
    now = timezone.now()
    _prune(now)
    hit = ThrottleHit.objects.create(scope=TESTS, key=key, at=now)
    recent = ThrottleHit.objects.filter(scope=TESTS, key=key, at__gt=now - TEST_WINDOW)
    if recent.count() <= settings.ROUTING_TESTS_PER_MINUTE:
        return 0.0
    hit.delete()  # refused: it does not use up the next minute's budget
    oldest = recent.order_by("at").values_list("at", flat=True).first() or now
    return max(1.0, (oldest + TEST_WINDOW - now).total_seconds())


def _too_many(request: HttpRequest, seconds: float) -> HttpResponse:
    message = TOO_MANY_TESTS.format(
        limit=settings.ROUTING_TESTS_PER_MINUTE, seconds=math.ceil(seconds)
    )
    if getattr(request, "htmx", False):
        response = render(request, "429.html#message", {"message": message}, status=429)
        # Into the page's message area: the result slot of the test keeps its place.
        response = reswap(retarget(response, "#messages"), "innerHTML")
    else:
        response = render(request, "429.html", {"message": message}, status=429)
    response["Retry-After"] = str(math.ceil(seconds))
    return response


def grant_batch(request: HttpRequest, names: list[str]) -> None:
    """After a "Test all" (itself counted once): each of these providers may be tested once,
    with scope=all, without counting again. Grants are rows, so every worker sees them."""
    now = timezone.now()
    ThrottleHit.objects.bulk_create(
        [ThrottleHit(scope=BATCH, key=_grant_key(request, name), at=now) for name in names]
    )


def _grant_key(request: HttpRequest, name: str) -> str:
    return f"{request.user.pk}:{name}"[:200]


def _take_grant(request: HttpRequest, name: str | None) -> bool:
    if request.POST.get("scope") != "all" or not name:
        return False
    since = timezone.now() - timedelta(seconds=BATCH_GRANT_SECONDS)
    grants = ThrottleHit.objects.filter(scope=BATCH, key=_grant_key(request, name), at__gt=since)
    pk = grants.values_list("pk", flat=True).first()
    # The delete is the claim: of several requests racing for one grant, one deletes it.
    return pk is not None and ThrottleHit.objects.filter(pk=pk).delete()[0] == 1


def limit_tests(view: Callable) -> Callable:
    """A POST to the view counts as one connection test against the person's per-minute
    budget; over it, the answer is 429 with a message. Put it under role_required."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        counted = request.method == "POST" and request.user.is_authenticated
        if counted and _take_grant(request, kwargs.get("name")):
            counted = False
        if counted and (seconds := _test_budget(str(request.user.pk))):
            return _too_many(request, seconds)
        return view(request, *args, **kwargs)

    return wrapped


def unlock(username: str) -> int:
    """End an account's lockout before its time (its failed logins are forgotten)."""
    deleted, _ = ThrottleHit.objects.filter(
        scope=LOGIN_USER, key=normalise_username(username)
    ).delete()
    return deleted
