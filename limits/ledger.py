"""The spend ledger (limits.models.Spend): what each token and each team spent per UTC day.

Budgets are summed from it: in the database directly, or, with Redis, once to seed a
budget's running total there (a Redis that restarted empty, a new period, a budget just
set). Redis is a counter, not the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection
from django.db.models import Sum

from usage.pricing import nanos

from .models import Spend


def spend_key(scope: str, name: str) -> str:
    return f"{scope}:{name}"


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


def spent(key: str, start: datetime | None, end: datetime | None) -> int:
    """Billionths of a dollar spent under `key` in [start, end) (None: unbounded)."""
    rows = Spend.objects.filter(key=key)
    if start is not None:
        rows = rows.filter(day__gte=day_of(start))
    if end is not None:
        rows = rows.filter(day__lt=day_of(end))
    return rows.aggregate(total=Sum("nanousd"))["total"] or 0


def spend_upsert(rows: Mapping[tuple[str, date], int]) -> None:
    """Add to the ledger's rows, creating them: one statement, safe with concurrent writers
    (INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL alike)."""
    values = [(key, day, n) for (key, day), n in sorted(rows.items()) if n]
    if not values:
        return
    q = connection.ops.quote_name
    table, n = q(Spend._meta.db_table), q("nanousd")
    sql = (
        f"INSERT INTO {table} ({q('key')}, {q('day')}, {n}) VALUES (%s, %s, %s) "
        f"ON CONFLICT ({q('key')}, {q('day')}) DO UPDATE SET {n} = {table}.{n} + EXCLUDED.{n}"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def ledger_add(*, records: Iterable[Mapping[str, Any]]) -> None:
    """Count request-log records' cost into the ledger, for their token and its team. Called
    by the request log's writer, in the transaction that writes the records."""
    from gateway.models import AccessToken

    records = [r for r in records if r.get("cost") and r.get("token_name") != "in-process"]
    if not records:
        return
    names = {r["token_name"] for r in records}
    teams = dict(
        AccessToken.objects.filter(name__in=names, team__isnull=False).values_list(
            "name", "team__name"
        )
    )
    rows: dict[tuple[str, date], int] = {}
    for r in records:
        day, n = day_of(r["at"]), nanos(r["cost"])
        keys = [spend_key("token", r["token_name"])]
        if r["token_name"] in teams:
            keys.append(spend_key("team", teams[r["token_name"]]))
        for key in keys:
            rows[(key, day)] = rows.get((key, day), 0) + n
    spend_upsert(rows)
