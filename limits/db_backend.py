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

import random
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from . import ledger
from .models import LimitHit, LimitLease, Spend

# Deleting old rows is not needed to count right (counting skips them): one call in 16 does it.
PRUNE_SHARE = 1 / 16


def _advisory_key(key: str) -> int:
    return zlib.crc32(key.encode())


def _lock(keys: Sequence[str]) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # One round trip: every lock, in key order, and the commit that does not wait
            # for the disk (see _unsynced).
            cursor.execute(
                "SELECT set_config('synchronous_commit', 'off', true), "
                "(SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k)",
                [sorted({_advisory_key(key) for key in keys})],
            )


def _unsynced(cursor) -> None:
    """PostgreSQL: this transaction's commit does not wait for the disk (a crash of the
    database server may lose the last few milliseconds of counts, never corrupt them)."""
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL synchronous_commit = off")


def _tokens_reset(key: str, used: int, tpm: int, horizon: datetime, window: float) -> float:
    """Seconds until enough of the window's tokens leave it for the next call to pass."""
    left = used
    rows = LimitHit.objects.filter(key=key, at__gt=horizon).order_by("at").values_list("at", "n")
    for at, n in rows:
        left -= n
        if left < tpm:
            return (at - horizon).total_seconds()
    return window


def _when(value) -> datetime | None:
    """A MIN(at) as the database returns it from raw SQL (SQLite: text, in UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _read(checks: Sequence[Mapping], now: datetime, horizon: datetime) -> list:
    """Every reading of every subject in one SELECT of subqueries, each on an index."""
    q, ops = connection.ops.quote_name, connection.ops
    hits, leases = q(LimitHit._meta.db_table), q(LimitLease._meta.db_table)
    spend = q(Spend._meta.db_table)
    at, since = ops.adapt_datetimefield_value(now), ops.adapt_datetimefield_value(horizon)
    columns, params = [], []
    for c in checks:
        if c["budget"] >= 0:
            where = [f"{q('key')} = %s"]
            params.append(c["key"])
            for bound, op in ((c["start"], ">="), (c["end"], "<")):
                if bound is not None:
                    where.append(f"{q('day')} {op} %s")
                    params.append(ops.adapt_datefield_value(ledger.day_of(bound)))
            columns.append(
                f"(SELECT COALESCE(SUM(nanousd), 0) FROM {spend} WHERE {' AND '.join(where)})"
            )
        for kind, total in (("rpm", "COUNT(*)"), ("tpm", "COALESCE(SUM(n), 0)")):
            if c[kind]:
                for expr in (total, "MIN(at)"):
                    columns.append(f"(SELECT {expr} FROM {hits} WHERE {q('key')} = %s AND at > %s)")
                    params += [f"{kind}:{c['key']}", since]
        if c["slots"]:
            columns.append(
                f"(SELECT COUNT(*) FROM {leases} WHERE {q('key')} = %s AND expires_at > %s)"
            )
            params += [c["key"], at]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)}", params)
        return list(cursor.fetchone())


def _prune(checks: Sequence[Mapping], now: datetime, horizon: datetime) -> None:
    """Rows out of the window or past their lease: counting skips them, this deletes them."""
    minute = [f"{kind}:{c['key']}" for c in checks for kind in ("rpm", "tpm") if c[kind]]
    if minute:
        LimitHit.objects.filter(key__in=minute, at__lte=horizon).delete()
    slot_keys = [c["key"] for c in checks if c["slots"]]
    if slot_keys:
        LimitLease.objects.filter(key__in=slot_keys, expires_at__lte=now).delete()


def before(checks: Sequence[Mapping], *, lease: str, window: float, lease_seconds: float):
    """Check every subject's limits (dicts: key, rpm, tpm, slots, budget as nanodollars or
    -1, start and end of the budget's period) and count the call. Returns (refused: subject
    index and kind, or None; six readings per subject, as redis_backend.BEFORE does)."""
    now = timezone.now()
    horizon = now - timedelta(seconds=window)
    refused, readings = None, []
    with transaction.atomic():
        _lock([c["key"] for c in checks])
        if random.random() < PRUNE_SHARE:
            _prune(checks, now, horizon)
        values = iter(_read(checks, now, horizon))
        for index, c in enumerate(checks):
            spent, calls, calls_reset, used, used_reset, busy = -1, -1, 0.0, -1, 0.0, -1
            hits = []
            if c["budget"] >= 0:
                spent = int(next(values))
                hits.append(("budget", spent >= c["budget"]))
            if c["rpm"]:
                calls, oldest = int(next(values)), _when(next(values))
                calls_reset = (oldest - horizon).total_seconds() if oldest else window
                hits.append(("rpm", calls >= c["rpm"]))
            if c["tpm"]:
                used, oldest = int(next(values)), _when(next(values))
                used_reset = (oldest - horizon).total_seconds() if oldest else 0.0
                if used >= c["tpm"]:
                    used_reset = _tokens_reset(f"tpm:{c['key']}", used, c["tpm"], horizon, window)
                hits.append(("tpm", used >= c["tpm"]))
            if c["slots"]:
                busy = int(next(values))
                hits.append(("max_parallel", busy >= c["slots"]))
            readings += [spent, calls, calls_reset * 1000, used, used_reset * 1000, busy]
            over = next((kind for kind, hit in hits if hit), None)
            if refused is None and over:
                refused = (index, over)
        if refused is not None:
            return refused, readings
        rpm = [LimitHit(key=f"rpm:{c['key']}", at=now) for c in checks if c["rpm"]]
        if rpm:
            LimitHit.objects.bulk_create(rpm)
        until = now + timedelta(seconds=lease_seconds)
        slots = [
            LimitLease(key=c["key"], lease=lease, expires_at=until) for c in checks if c["slots"]
        ]
        if slots:
            LimitLease.objects.bulk_create(slots)
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
    if not (tpm_keys or lease or spend):
        return {}
    now = timezone.now()
    q = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        _unsynced(cursor)
        if tokens and tpm_keys:
            at = connection.ops.adapt_datetimefield_value(now)
            cursor.executemany(
                f"INSERT INTO {q(LimitHit._meta.db_table)} ({q('key')}, at, n) VALUES (%s, %s, %s)",
                [(f"tpm:{key}", at, tokens) for key in tpm_keys],
            )
        if lease:
            cursor.execute(f"DELETE FROM {q(LimitLease._meta.db_table)} WHERE lease = %s", [lease])
        ledger.spend_upsert(spend)
    if not tpm_keys:
        return {}
    hits = q(LimitHit._meta.db_table)
    since = connection.ops.adapt_datetimefield_value(now - timedelta(seconds=window))
    columns = [f"(SELECT COALESCE(SUM(n), 0) FROM {hits} WHERE {q('key')} = %s AND at > %s)"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns * len(tpm_keys))}",
            [p for key in tpm_keys for p in (f"tpm:{key}", since)],
        )
        return dict(zip(tpm_keys, (int(n) for n in cursor.fetchone()), strict=True))


def fresh(function, *args, **kwargs):
    """Run on a worker thread of the limits' own: its connection is kept from one call to the
    next (SQLite's CONN_MAX_AGE is 0, and opening one costs more than the whole check), and
    replaced when it broke, as Django's request signals would."""
    if connection.connection is not None and connection.errors_occurred:
        if not connection.is_usable():
            connection.close()
        connection.errors_occurred = False
    return function(*args, **kwargs)


def renew(leases: Sequence[str], lease_seconds: float) -> None:
    LimitLease.objects.filter(lease__in=leases).update(
        expires_at=timezone.now() + timedelta(seconds=lease_seconds)
    )


def release(leases: Sequence[str]) -> None:
    LimitLease.objects.filter(lease__in=leases).delete()
