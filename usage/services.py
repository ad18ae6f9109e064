"""The request log's roll-ups, and its retention.

Every record is also counted, per hour and per day, into the roll-up tables of
usage/models.py: totals and, for successful requests, a latency histogram, each at the
grain one of the usage page's aggregates needs. The page reads those for ranges of a day or
more, so a month of a million requests costs it a few thousand rows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from .models import (
    LatencyRollup,
    ModelLatencyRollup,
    ModelRollup,
    RequestLog,
    RollupPeriod,
    TokenRollup,
    UsageRollup,
)

# Upper bounds (ms) of the latency buckets: each 25% wider than the one before, from 1 ms to
# about nine minutes; one more bucket holds everything slower. A percentile read from them
# is within half a bucket (about 12%) of the exact one.
LATENCY_BOUNDS: tuple[float, ...] = tuple(round(1.25**i, 4) for i in range(60))
PERIODS = {RollupPeriod.HOUR: timedelta(hours=1), RollupPeriod.DAY: timedelta(days=1)}
REBUILD_CHUNK = 20_000


def latency_bucket(latency_ms: float) -> int:
    return bisect_right(LATENCY_BOUNDS, max(latency_ms, 0.0))


def bucket_bounds(bucket: int) -> tuple[float, float]:
    low = LATENCY_BOUNDS[bucket - 1] if bucket > 0 else 0.0
    high = LATENCY_BOUNDS[bucket] if bucket < len(LATENCY_BOUNDS) else low * 1.25
    return low, high


def period_start(at: datetime, period: str) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if period == RollupPeriod.DAY else at


@dataclass(frozen=True)
class _Table:
    model: type[models.Model]
    keys: tuple[str, ...]  # the record's fields that make a row, after period and start
    latency: bool = False  # a histogram (bucket, count) rather than totals


TABLES = (
    _Table(UsageRollup, ("provider", "model", "token_name")),
    _Table(ModelRollup, ("provider", "model")),
    _Table(TokenRollup, ("token_name",)),
    _Table(LatencyRollup, ("provider", "model", "token_name"), latency=True),
    _Table(ModelLatencyRollup, ("provider", "model"), latency=True),
)
TOTALS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost")


def _field(record: Mapping[str, Any], name: str) -> str:
    return record.get(name) or ("in-process" if name == "token_name" else "")


def _aggregate(records: Iterable[Mapping[str, Any]]) -> dict[_Table, dict[tuple, Any]]:
    """Per table, its rows' keys (period, start, *keys[, bucket]) and what to add to them."""
    rows: dict[_Table, dict[tuple, Any]] = {table: {} for table in TABLES}
    for r in records:
        bucket = latency_bucket(r["latency_ms"]) if r["ok"] else None
        for period in PERIODS:
            at = (period, period_start(r["at"], period))
            for table in TABLES:
                key = (*at, *(_field(r, name) for name in table.keys))
                found = rows[table]
                if table.latency:
                    if bucket is not None:
                        found[(*key, bucket)] = found.get((*key, bucket), 0) + 1
                    continue
                row = found.setdefault(key, [0, 0, 0, 0, None])
                row[0] += 1
                row[1] += 0 if r["ok"] else 1
                row[2] += r.get("prompt_tokens") or 0
                row[3] += r.get("completion_tokens") or 0
                if r.get("cost") is not None:
                    row[4] = (row[4] or 0.0) + r["cost"]
    return rows


def _upsert(table: str, keys: list[str], adds: list[str], rows: list[tuple]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE adding to the counters: the same SQL on SQLite and
    PostgreSQL, and safe when several processes write the same hour at once."""
    q = connection.ops.quote_name
    columns = [*keys, *adds]
    updates = [f"{q(c)} = {q(table)}.{q(c)} + EXCLUDED.{q(c)}" for c in adds if c != "cost"]
    if "cost" in adds:
        updates.append(
            f"{q('cost')} = CASE WHEN EXCLUDED.{q('cost')} IS NULL THEN {q(table)}.{q('cost')} "
            f"ELSE COALESCE({q(table)}.{q('cost')}, 0) + EXCLUDED.{q('cost')} END"
        )
    sql = (
        f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(q(c) for c in keys)}) DO UPDATE SET {', '.join(updates)}"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def rollup_add(*, records: Iterable[Mapping[str, Any]]) -> None:
    """Count request-log records into the roll-ups. Call it in the transaction that writes
    them, so the two never disagree."""
    adapt = connection.ops.adapt_datetimefield_value
    for table, rows in _aggregate(records).items():
        keys = ["period", "start", *table.keys, *(["bucket"] if table.latency else [])]
        values = []
        for (period, start, *rest), added in rows.items():
            added = [added] if table.latency else added
            values.append((period, adapt(start), *rest, *added))
        adds = ["count"] if table.latency else list(TOTALS)
        _upsert(table.model._meta.db_table, keys, adds, values)


FIELDS = ("at", "provider", "model", "token_name", "ok", "latency_ms", "prompt_tokens",
          "completion_tokens", "cost")  # fmt: skip


@transaction.atomic
def rollup_rebuild() -> int:
    """Recount every roll-up from the request log (after a bulk load, or to repair them).
    Returns the number of records read."""
    for table in TABLES:
        table.model.objects.all().delete()
    read, chunk = 0, []
    for values in RequestLog.objects.order_by().values_list(*FIELDS).iterator(REBUILD_CHUNK):
        chunk.append(dict(zip(FIELDS, values, strict=True)))
        if len(chunk) == REBUILD_CHUNK:
            rollup_add(records=chunk)
            read, chunk = read + len(chunk), []
    rollup_add(records=chunk)
    return read + len(chunk)


PRUNE_DAYS_NEGATIVE = (
    "The number of days to keep must be 0 or more (0 deletes every record up to now), not {days:g}."
)
PRUNE_DAYS_TOO_MANY = "Cannot keep {days:g} days: that goes back before the year 1."


@transaction.atomic
def prune_requests(*, days: float | None = None) -> tuple[int, datetime]:
    """Delete records older than `days` (default: ROUTING_REQUEST_LOG_RETENTION_DAYS), and
    the roll-up periods that ended before the same cut-off."""
    keep = days if days is not None else settings.ROUTING_REQUEST_LOG_RETENTION_DAYS
    # A negative age puts the cut-off in the future: every record, today's too, would go.
    if not keep >= 0:  # NaN too
        raise ValidationError(PRUNE_DAYS_NEGATIVE.format(days=keep))
    try:
        cutoff = timezone.now() - timedelta(days=keep)
    except OverflowError:
        raise ValidationError(PRUNE_DAYS_TOO_MANY.format(days=keep)) from None
    deleted, _ = RequestLog.objects.filter(at__lt=cutoff).delete()
    for period, length in PERIODS.items():
        for table in TABLES:
            table.model.objects.filter(period=period, start__lte=cutoff - length).delete()
    return deleted, cutoff
