"""Limits counted in the database, when no Redis is configured: exact on one machine with any
number of workers, and across machines that share one PostgreSQL database.

One transaction before a call and one after. Before: the rows of the limits it checks are
locked first (SQLite: the project's transactions take the write lock at BEGIN, IMMEDIATE;
PostgreSQL: an advisory lock per token or team, in key order, so two calls sharing a team
never wait on each other in a circle), so concurrent workers take turns between the check
and the count. After: rows are only added or removed, which needs no such turn.

- requests and tokens per minute: `LimitHit` rows of the last minute (n: 1 call, or a call's
  tokens); older ones are deleted as calls come;
- concurrent requests: a `LimitLease` row per call in flight;
- budgets: the ledger (`Spend`), which the call's cost is added to right after it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from django.db import close_old_connections, connection, transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone

from . import ledger
from .models import LimitHit, LimitLease


def _advisory_key(key: str) -> int:
    return zlib.crc32(key.encode())


def _lock(keys: Sequence[str]) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for key in sorted(set(keys)):
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(key)])


def _tokens_reset(key: str, used: int, tpm: int, horizon: datetime, window: float) -> float:
    """Seconds until enough of the window's tokens leave it for the next call to pass."""
    left = used
    for at, n in LimitHit.objects.filter(key=key).order_by("at").values_list("at", "n"):
        left -= n
        if left < tpm:
            return (at - horizon).total_seconds()
    return window


def before(checks: Sequence[Mapping], *, lease: str, window: float, lease_seconds: float):
    """Check every subject's limits (dicts: key, rpm, tpm, slots, budget as nanodollars or
    -1, start and end of the budget's period) and count the call. Returns (refused: subject
    index and kind, or None; six readings per subject, as redis_backend.BEFORE does)."""
    now = timezone.now()
    horizon = now - timedelta(seconds=window)
    refused, readings = None, []
    with transaction.atomic():
        _lock([c["key"] for c in checks])
        minute = [f"{kind}:{c['key']}" for c in checks for kind in ("rpm", "tpm")]
        LimitHit.objects.filter(key__in=minute, at__lte=horizon).delete()
        slot_keys = [c["key"] for c in checks if c["slots"]]
        if slot_keys:
            LimitLease.objects.filter(key__in=slot_keys, expires_at__lte=now).delete()
        for index, c in enumerate(checks):
            spent, calls, calls_reset, used, used_reset, busy = -1, -1, 0.0, -1, 0.0, -1
            hits = []
            if c["budget"] >= 0:
                spent = ledger.spent(c["key"], c["start"], c["end"])
                hits.append(("budget", spent >= c["budget"]))
            if c["rpm"]:
                found = LimitHit.objects.filter(key=f"rpm:{c['key']}").aggregate(
                    n=Count("id"), oldest=Min("at")
                )
                calls = found["n"]
                calls_reset = (found["oldest"] - horizon).total_seconds() if calls else window
                hits.append(("rpm", calls >= c["rpm"]))
            if c["tpm"]:
                found = LimitHit.objects.filter(key=f"tpm:{c['key']}").aggregate(
                    n=Sum("n"), oldest=Min("at")
                )
                used = found["n"] or 0
                used_reset = (found["oldest"] - horizon).total_seconds() if used else 0.0
                if used >= c["tpm"]:
                    used_reset = _tokens_reset(f"tpm:{c['key']}", used, c["tpm"], horizon, window)
                hits.append(("tpm", used >= c["tpm"]))
            if c["slots"]:
                busy = LimitLease.objects.filter(key=c["key"]).count()
                hits.append(("max_parallel", busy >= c["slots"]))
            readings += [spent, calls, calls_reset * 1000, used, used_reset * 1000, busy]
            over = next((kind for kind, hit in hits if hit), None)
            if refused is None and over:
                refused = (index, over)
        if refused is not None:
            return refused, readings
        LimitHit.objects.bulk_create(
            LimitHit(key=f"rpm:{c['key']}", at=now) for c in checks if c["rpm"]
        )
        until = now + timedelta(seconds=lease_seconds)
        LimitLease.objects.bulk_create(
            LimitLease(key=key, lease=lease, expires_at=until) for key in slot_keys
        )
    return None, readings


def after(
    tpm_keys: Sequence[str],
    *,
    lease: str,
    tokens: int,
    spend: Mapping[tuple[str, date], int],
    window: float,
) -> dict[str, int]:
    """Count a call's tokens and cost, and free its slots. Returns the tokens now in the
    window of each tpm key."""
    now = timezone.now()
    with transaction.atomic():
        if tokens:
            LimitHit.objects.bulk_create(
                LimitHit(key=f"tpm:{key}", at=now, n=tokens) for key in tpm_keys
            )
        if lease:
            LimitLease.objects.filter(lease=lease).delete()
        ledger.spend_upsert(spend)
    used = {}
    for key in tpm_keys:
        used[key] = (
            LimitHit.objects.filter(
                key=f"tpm:{key}", at__gt=now - timedelta(seconds=window)
            ).aggregate(n=Sum("n"))["n"]
            or 0
        )
    return used


def fresh(function, *args, **kwargs):
    """Run on a worker thread: the gateway's fast path runs outside Django's request signals,
    so a connection that broke or aged out is replaced here, as they would."""
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        close_old_connections()


def renew(leases: Sequence[str], lease_seconds: float) -> None:
    LimitLease.objects.filter(lease__in=leases).update(
        expires_at=timezone.now() + timedelta(seconds=lease_seconds)
    )


def release(leases: Sequence[str]) -> None:
    LimitLease.objects.filter(lease__in=leases).delete()
