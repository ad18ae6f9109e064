"""Requests-per-minute limits that hold across every worker and every machine.

A call is counted against every limit that applies to it (its token's, its team's) in one
atomic step: all pass and all count, or none counts and the first one over says why. The
window slides: "N in any 60 seconds", not N per clock minute, so a burst at a minute's turn
cannot get 2N through.

- With `ROUTING_REDIS_URL`, the count lives in Redis (a sorted set per limit, updated by one
  Lua script, timed by Redis' own clock), which every worker on every machine shares.
- Without it, in the database (`LimitHit` rows): on SQLite the transaction takes the write
  lock first (the project's `transaction_mode` is IMMEDIATE), on PostgreSQL an advisory lock
  per limit, so concurrent workers take turns and the count is exact on one machine, and on
  every machine that shares the PostgreSQL database.

Redis unreachable: each call is answered at once by `ROUTING_LIMITS_ON_REDIS_FAILURE`
(`open`: let it through uncounted; `closed`: refuse it), Redis is not tried again for a
couple of seconds, and counting resumes on its own once it answers; `/healthz` says
`degraded` meanwhile. Short timeouts and no retries: no call waits on a dead Redis.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from .models import LimitHit

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
# Loopback or a LAN answers in well under a millisecond; a loaded machine can stall a few
# hundred. Longer would hold every limited call that long while Redis hangs.
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_CONNECTIONS = 16  # per worker process (per event loop)
# After a Redis failure, calls skip Redis this long (answered by the failure mode at once).
REDIS_RETRY_AFTER_SECONDS = 2.0
REDIS_DOWN = "Redis at ROUTING_REDIS_URL does not answer ({error}); limits are {mode}."


@dataclass(frozen=True)
class Limit:
    scope: str  # "token" or "team"
    name: str
    rpm: int

    @property
    def key(self) -> str:
        return f"routing-admin:rpm:{self.scope}:{self.name}"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # The limit that refused the call, or else the one with the fewest calls left.
    limit: Limit | None
    remaining: int = 0
    reset_seconds: float = 0.0
    # Set when Redis was down: why, and that the failure mode decided.
    unavailable: str = ""


# --- the database -------------------------------------------------------------------------


def _advisory_key(key: str) -> int:
    return zlib.crc32(key.encode())


def _db_take(limits: Sequence[Limit]) -> tuple[int, list[int], list[float]]:
    """(index of the limit that refused, or -1; calls counted per limit; seconds until
    each limit's oldest counted call leaves the window)."""
    keys = [limit.key for limit in limits]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Sorted, so that two calls sharing a team cannot wait on each other.
                for key in sorted(set(keys)):
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(key)])
        now = timezone.now()
        horizon = now - timedelta(seconds=WINDOW_SECONDS)
        LimitHit.objects.filter(key__in=keys, at__lte=horizon).delete()
        counts, resets = [], []
        for index, limit in enumerate(limits):
            times = list(
                LimitHit.objects.filter(key=limit.key).order_by("at").values_list("at", flat=True)
            )
            oldest = (times[0] - horizon).total_seconds() if times else WINDOW_SECONDS
            if len(times) >= limit.rpm:
                return index, [*counts, len(times)], [*resets, oldest]
            counts.append(len(times) + 1)
            resets.append(oldest)
        LimitHit.objects.bulk_create(LimitHit(key=key, at=now) for key in keys)
    return -1, counts, resets


def _db_take_fresh(limits: Sequence[Limit]) -> tuple[int, list[int], list[float]]:
    # The gateway's fast path runs outside Django's request signals: replace a connection
    # that broke or aged out, as they would.
    close_old_connections()
    try:
        return _db_take(limits)
    finally:
        close_old_connections()


# --- Redis --------------------------------------------------------------------------------

# KEYS: one sorted set per limit. ARGV: window in ms, this call's member, then each limit.
# Redis' TIME, so that machines' clocks do not matter. Returns {refused index (0: none),
# then per key: count after this call (or at refusal), ms until its oldest call leaves}.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1])
local out = {0}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local reset = window
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  if n >= tonumber(ARGV[2 + i]) then
    out[1] = i
    table.insert(out, n)
    table.insert(out, reset)
    return out
  end
  table.insert(out, n + 1)
  table.insert(out, reset)
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
end
return out
"""

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_down_lock = threading.Lock()
_down: dict[str, float | str] = {"until": 0.0, "error": ""}


def _script():
    """This event loop's client and script: asyncio connections belong to one loop."""
    loop = asyncio.get_running_loop()
    url = settings.ROUTING_REDIS_URL
    found = _clients.get(loop)
    if found is None or found.url != url:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # A few connections, which a burst queues for, rather than one per call in flight:
        # opening sixty at once takes longer than the timeout on a busy machine.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_TIMEOUT_SECONDS * 2,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        client = Redis(connection_pool=pool)
        found = client.register_script(_TAKE)
        found.url = url
        _clients[loop] = found
    return found


async def _redis_take(limits: Sequence[Limit]) -> tuple[int, list[int], list[float]]:
    member = uuid.uuid4().hex
    args = [int(WINDOW_SECONDS * 1000), member, *(limit.rpm for limit in limits)]
    out = await _script()(keys=[limit.key for limit in limits], args=args)
    refused = int(out[0]) - 1
    counts = [int(n) for n in out[1::2]]
    resets = [int(ms) / 1000 for ms in out[2::2]]
    return refused, counts, resets


def redis_status() -> str:
    """Why Redis is not being used for limits right now; "" when it is (or is not set)."""
    with _down_lock:
        if _down["until"] and time.monotonic() < float(_down["until"]):
            return str(_down["error"])
    return ""


def _mark_down(exc: Exception) -> None:
    mode = settings.ROUTING_LIMITS_ON_REDIS_FAILURE
    message = REDIS_DOWN.format(
        error=type(exc).__name__, mode="not enforced" if mode == "open" else "refusing calls"
    )
    with _down_lock:
        first = not _down["until"]
        _down["until"] = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
        _down["error"] = message
    if first:
        log.warning(message)


def _mark_up() -> None:
    with _down_lock:
        if _down["until"]:
            log.warning("Redis answers again; limits are counted there again.")
        _down["until"], _down["error"] = 0.0, ""


async def status() -> dict[str, str]:
    """For /healthz: where limits are counted, and whether that works right now."""
    if not settings.ROUTING_REDIS_URL:
        return {"backend": "database", "state": "ok"}
    try:
        await _script().registered_client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure: say why, in one line
        _mark_down(exc)
    else:
        _mark_up()
    down = redis_status()
    if down:
        return {"backend": "redis", "state": "degraded", "reason": down}
    return {"backend": "redis", "state": "ok"}


# --- the one entry point ------------------------------------------------------------------


async def take(limits: Sequence[Limit]) -> Verdict | None:
    """Count one call against every limit, or refuse it. None when no limit applies."""
    if not limits:
        return None
    if settings.ROUTING_REDIS_URL:
        down = redis_status()
        if not down:
            try:
                refused, counts, resets = await _redis_take(limits)
            except Exception as exc:  # noqa: BLE001 - any Redis failure: the failure mode
                _mark_down(exc)
                down = redis_status()
            else:
                _mark_up()
        if down:
            allowed = settings.ROUTING_LIMITS_ON_REDIS_FAILURE == "open"
            return Verdict(allowed=allowed, limit=None, unavailable=down)
    else:
        refused, counts, resets = await sync_to_async(_db_take_fresh, thread_sensitive=False)(
            limits
        )
    if refused >= 0:
        return Verdict(False, limits[refused], 0, resets[refused])
    left = [limit.rpm - count for limit, count in zip(limits, counts, strict=True)]
    tightest = min(range(len(limits)), key=left.__getitem__)
    return Verdict(True, limits[tightest], left[tightest], resets[tightest])


def reset_header(seconds: float) -> str:
    """OpenAI's duration format for x-ratelimit-reset-*: "20ms", "6s", "1m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest):g}s"


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
