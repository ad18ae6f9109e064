"""Every limit of a token and of its team, held across every worker and every machine.

A call is checked once before it (`before`: requests per minute counted, tokens per minute
and the budget already spent compared, a concurrent-request slot taken) and settled once
after it (`Ticket.settle`: its tokens and cost counted, its slot freed), each in one atomic
step over the token's and the team's limits together: all pass and the call counts on all,
or none counts and the first one over says why.

- Requests and tokens per minute slide ("N in any 60 seconds", not per clock minute).
- Concurrent requests are leases (limits.leases): a dead worker's slots free themselves.
- A budget is a hard stop per UTC calendar period (limits.rules.period_bounds): a call is
  refused once the period's spend reached it. Spend is priced with LiteLLM's price map
  (usage.pricing) and kept in the database's ledger (limits.ledger).

Where: with `ROUTING_REDIS_URL`, Redis (limits.redis_backend: one Lua script before, one
after); without it, the database (limits.db_backend).

Redis unreachable: each call is answered at once by `ROUTING_LIMITS_ON_REDIS_FAILURE`
(`open`: let it through uncounted; `closed`: refuse it), Redis is not tried again for a
couple of seconds, and counting resumes on its own once it answers; `/healthz` says
`degraded` meanwhile. Short timeouts and no retries: no call waits on a dead Redis.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from usage.pricing import Spent, nanos

from . import db_backend, leases, ledger, redis_backend
from .rules import Limits

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
# After a Redis failure, calls skip Redis this long (answered by the failure mode at once).
REDIS_RETRY_AFTER_SECONDS = 2.0
REDIS_TIMEOUT_SECONDS = redis_backend.REDIS_TIMEOUT_SECONDS
REDIS_DOWN = "Redis at ROUTING_REDIS_URL does not answer ({error}); limits are {mode}."
# A spend key outlives its period by this much: machines' clocks may differ a little.
SPEND_KEY_GRACE = timedelta(hours=1)
KINDS = {1: "budget", 2: "rpm", 3: "tpm", 4: "max_parallel"}


def now() -> datetime:
    """The clock budget periods are read from (tests turn it to the next period)."""
    return timezone.now()


@dataclass(frozen=True)
class Subject:
    """A token, or a team, and its limits."""

    scope: str  # "token" or "team"
    name: str
    limits: Limits

    @property
    def key(self) -> str:
        return ledger.spend_key(self.scope, self.name)


@dataclass(frozen=True)
class Reading:
    """One limit of one subject, as counted for this call."""

    subject: Subject
    kind: str  # "rpm", "tpm", "max_parallel" or "budget"
    limit: int  # requests, tokens, slots, or billionths of a dollar
    used: int  # rpm and slots: this call included, once let through
    # When some of it comes back: the oldest call or tokens leave the window, the period
    # turns (math.inf: a total budget never does; 0: unknown, a slot frees when a call ends).
    reset_seconds: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(eq=False)
class Ticket:
    """What `before` decided, and what `settle` needs to count the call afterwards."""

    subjects: tuple[Subject, ...]
    allowed: bool
    readings: list[Reading] = field(default_factory=list)
    # The limit that refused the call, if one did.
    refused: Reading | None = None
    # Set when Redis was down: why (the failure mode decided, and nothing is counted).
    unavailable: str = ""
    backend: str = ""  # "redis" or "database"; "" when nothing was counted
    url: str = ""
    lease: str = ""
    member: str = ""
    # The ledger rows a call's cost goes to (its token's, its team's).
    ledger_keys: tuple[str, ...] = ()
    settled: bool = False
    _finalizer: weakref.finalize | None = field(default=None, repr=False)

    def _has(self, kind: str) -> bool:
        return any(getattr(s.limits, kind) for s in self.subjects)

    async def settle(self, spent: Spent | None) -> bool:
        """Count the call's tokens and cost and free its slot; once, whatever happens after.
        True when its cost went into the ledger here (the request log's writer then leaves
        it out)."""
        if self.settled:
            return False
        self.settled = True
        if self._finalizer is not None:
            self._finalizer.detach()
        if self.lease:
            leases.drop(self.lease)
        tokens = spent.tokens if spent else 0
        cost = nanos(spent.cost) if spent and self._has("budget") else 0
        # Requests per minute alone: counted before the call, nothing is left to do.
        if not self.backend or not (self._has("tpm") or self.lease or self._has("budget")):
            _count_settled()
            return False
        try:
            if self.backend == "redis":
                used = await _redis_after(self, tokens, cost)
            else:
                used = await sync_to_async(db_backend.fresh, thread_sensitive=False)(
                    _db_after, self, tokens, cost
                )
        except Exception as exc:  # noqa: BLE001 - counted as well as can be: say so, go on
            if self.backend == "redis":
                _mark_down(exc)
            else:
                log.warning("Could not count a call against its limits: %s", exc)
            return False
        finally:
            _count_settled()
        self.readings = [
            Reading(r.subject, r.kind, r.limit, used[r.subject.key], r.reset_seconds)
            if r.kind == "tpm" and r.subject.key in used
            else r
            for r in self.readings
        ]
        return self.backend == "database" and self._has("budget")


_settled_lock = threading.Condition()
_settled_count = 0


def _count_settled() -> None:
    global _settled_count
    with _settled_lock:
        _settled_count += 1
        _settled_lock.notify_all()


def settled_count() -> int:
    with _settled_lock:
        return _settled_count


def wait_settled(count: int, timeout: float = 10.0) -> bool:
    """Wait until this process has settled `count` calls in all (tests: a stream abandoned
    by its caller is settled by a task of its own, just after)."""
    with _settled_lock:
        return _settled_lock.wait_for(lambda: _settled_count >= count, timeout)


# --- Redis failures -----------------------------------------------------------------------

_down_lock = threading.Lock()
_down: dict[str, float | str] = {"until": 0.0, "error": ""}


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
        await redis_backend.ping()
    except Exception as exc:  # noqa: BLE001 - any failure: say why, in one line
        _mark_down(exc)
    else:
        _mark_up()
    down = redis_status()
    if down:
        return {"backend": "redis", "state": "degraded", "reason": down}
    return {"backend": "redis", "state": "ok"}


# --- before -------------------------------------------------------------------------------


def _period(subject: Subject, at: datetime) -> tuple[datetime | None, datetime | None]:
    budget = subject.limits.budget
    return budget.bounds(at) if budget else (None, None)


def _budget_nanos(subject: Subject) -> int:
    budget = subject.limits.budget
    return round(budget.usd * 10**9) if budget else -1


def _spend_redis_key(subject: Subject, at: datetime) -> str:
    budget = subject.limits.budget
    start, _ = _period(subject, at)
    suffix = f"{budget.period}:{start:%Y%m%d}" if budget and start else "total"
    return f"{redis_backend.subject_base(subject.key)}:spend:{suffix}"


def _seed_value(key: str, start: datetime | None, end: datetime | None) -> int:
    from usage import request_log

    # This process's records still queued would be missing from the ledger.
    try:
        request_log.flush()
    except Exception:  # noqa: BLE001 - the writer retries them; seed from what is there
        log.warning("Could not write the request log before seeding a budget", exc_info=True)
    return ledger.spent(key, start, end)


async def _redis_before(subjects: Sequence[Subject], at: datetime, member: str, lease: str):
    keys, args = [], [int(WINDOW_SECONDS * 1000), member, lease, int(leases.LEASE_SECONDS * 1000)]
    for s in subjects:
        base = redis_backend.subject_base(s.key)
        keys += [f"{base}:rpm", f"{base}:tpm", f"{base}:tpm:sum", f"{base}:slots"]
        keys.append(_spend_redis_key(s, at))
        limits = s.limits
        args += [limits.rpm or 0, limits.tpm or 0, limits.max_parallel or 0, _budget_nanos(s)]
    for _ in range(len(subjects) + 1):
        out = await redis_backend.before(keys, args)
        if out[0] != 2:
            refused = (out[1] - 1, KINDS[out[2]]) if out[0] == 1 else None
            return refused, out[3:]
        # A budget's running total is missing (new period, new budget, Redis restarted).
        subject = subjects[out[1] - 1]
        start, end = _period(subject, at)
        value = await sync_to_async(db_backend.fresh, thread_sensitive=False)(
            _seed_value, subject.key, start, end
        )
        expires = int((end + SPEND_KEY_GRACE).timestamp() * 1000) if end else 0
        await redis_backend.seed(keys[5 * (out[1] - 1) + 4], value, expires)
    raise RuntimeError("budget keys vanished while being seeded")


def _db_before(subjects: Sequence[Subject], at: datetime, lease: str):
    checks = []
    for s in subjects:
        start, end = _period(s, at)
        limits = s.limits
        checks.append(
            {"key": s.key, "rpm": limits.rpm, "tpm": limits.tpm, "slots": limits.max_parallel,
             "budget": _budget_nanos(s), "start": start, "end": end}
        )  # fmt: skip
    return db_backend.before(
        checks, lease=lease, window=WINDOW_SECONDS, lease_seconds=leases.LEASE_SECONDS
    )


def _readings(subjects, values, at: datetime, counted: bool) -> list[Reading]:
    readings = []
    for index, s in enumerate(subjects):
        spent, calls, calls_reset, used, used_reset, busy = values[6 * index : 6 * index + 6]
        limits = s.limits
        if spent >= 0:
            _, end = _period(s, at)
            reset = (end - at).total_seconds() if end else math.inf
            readings.append(Reading(s, "budget", _budget_nanos(s), spent, reset))
        if calls >= 0:
            readings.append(Reading(s, "rpm", limits.rpm, calls + counted, calls_reset / 1000))
        if used >= 0:
            readings.append(Reading(s, "tpm", limits.tpm, used, used_reset / 1000))
        if busy >= 0:
            readings.append(Reading(s, "max_parallel", limits.max_parallel, busy + counted, 0))
    return readings


async def before(subjects: Sequence[Subject], *, ledger_keys: Sequence[str] = ()) -> Ticket | None:
    """Check and count one call against every limit of its subjects, or refuse it. None when
    no limit applies: then nothing at all is done."""
    subjects = tuple(s for s in subjects if s.limits)
    if not subjects:
        return None
    at = now()
    member = uuid.uuid4().hex
    lease = uuid.uuid4().hex if any(s.limits.max_parallel for s in subjects) else ""
    url = settings.ROUTING_REDIS_URL
    if url:
        down = redis_status()
        if not down:
            try:
                refused, values = await _redis_before(subjects, at, member, lease)
            except Exception as exc:  # noqa: BLE001 - any Redis failure: the failure mode
                _mark_down(exc)
                down = redis_status()
            else:
                _mark_up()
        if down:
            allowed = settings.ROUTING_LIMITS_ON_REDIS_FAILURE == "open"
            return Ticket(subjects, allowed, unavailable=down, ledger_keys=tuple(ledger_keys))
    else:
        refused, values = await sync_to_async(db_backend.fresh, thread_sensitive=False)(
            _db_before, subjects, at, lease
        )
    readings = _readings(subjects, values, at, counted=refused is None)
    if refused is not None:
        index, kind = refused
        found = next(r for r in readings if r.subject == subjects[index] and r.kind == kind)
        return Ticket(subjects, False, readings, refused=found)
    ticket = Ticket(
        subjects, True, readings, backend="redis" if url else "database", url=url,
        lease=lease, member=member, ledger_keys=tuple(ledger_keys),
    )  # fmt: skip
    if lease:
        slot_keys = [
            f"{redis_backend.subject_base(s.key)}:slots" if url else s.key
            for s in subjects
            if s.limits.max_parallel
        ]
        leases.hold(lease, url, slot_keys)
        # A ticket dropped unsettled (a stream whose body was never read) frees its slot.
        ticket._finalizer = weakref.finalize(ticket, leases.abandon, lease)
    return ticket


# --- after --------------------------------------------------------------------------------


async def _redis_after(ticket: Ticket, tokens: int, cost: int) -> dict[str, int]:
    keys, args = [], [int(WINDOW_SECONDS * 1000), ticket.member, ticket.lease, tokens, cost]
    at = now()
    for s in ticket.subjects:
        base = redis_backend.subject_base(s.key)
        keys += [f"{base}:tpm", f"{base}:tpm:sum", f"{base}:slots", _spend_redis_key(s, at)]
        limits = s.limits
        args += [int(bool(limits.tpm)), int(bool(limits.max_parallel)), int(bool(limits.budget))]
    out = await redis_backend.after(keys, args)
    return {s.key: out[2 * i] for i, s in enumerate(ticket.subjects) if s.limits.tpm}


def _db_after(ticket: Ticket, tokens: int, cost: int) -> dict[str, int]:
    day = ledger.day_of(now())
    spend = {(key, day): cost for key in ticket.ledger_keys} if cost else {}
    return db_backend.after(
        [s.key for s in ticket.subjects if s.limits.tpm],
        lease=ticket.lease,
        tokens=tokens,
        spend=spend,
        window=WINDOW_SECONDS,
    )


# --- what the gateway says ----------------------------------------------------------------


def rate_headers(ticket: Ticket | None) -> dict[str, str]:
    """OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens}, each for the tighter
    of the token's and the team's limits."""
    headers: dict[str, str] = {}
    if ticket is None:
        return headers
    for kind, name in (("rpm", "requests"), ("tpm", "tokens")):
        found = [r for r in ticket.readings if r.kind == kind]
        if found:
            tightest = min(found, key=lambda r: r.remaining)
            headers[f"x-ratelimit-limit-{name}"] = str(tightest.limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(tightest.remaining)
            headers[f"x-ratelimit-reset-{name}"] = reset_header(tightest.reset_seconds)
    return headers


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


def period_end(ticket_reading: Reading) -> datetime | None:
    """When a budget's period ends (None: a total budget)."""
    _, end = _period(ticket_reading.subject, now())
    return end.astimezone(UTC) if end else None
