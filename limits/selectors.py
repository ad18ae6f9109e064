"""A token's and a team's use against their limits, as the dashboard shows it: requests and
tokens in the last minute, US dollars spent in the budget's current period, and the calls
the limits refused.

Read from the request log (the last minute, the refusals) and its daily roll-up (the spend,
which needs no row older than a day), in a fixed number of queries however many tokens or
teams a page lists. A team's use is its tokens' (revoked ones too), as on the usage page.
The log is written in batches, so what it shows may lag the gateway's own counters
(limits.counters) by a few seconds; those decide, this only shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from usage.models import RequestLog, RollupPeriod, TokenRollup

from .rules import PERIODS, Limits, period_bounds

MINUTE = timedelta(seconds=60)
REFUSED_SINCE = timedelta(hours=24)
REFUSED_ROWS = 10
# A call the gateway's limits refused: answered 429 before any provider was asked (a
# provider's own 429 names that provider).
REFUSED = Q(status=429, provider="")
BUDGET_WINDOWS = {"day": "today", "week": "this week", "month": "this month", "total": "in total"}
# A gauge's bar turns "high" (the browser's warning colour; the text says it too) from here.
HIGH_SHARE = 0.8


@dataclass(frozen=True)
class Gauge:
    """One limit and what was used of it: a bar and its words."""

    key: str  # "rpm", "tpm" or "budget"
    label: str
    used: float
    limit: float
    unit: str
    window: str  # "in the last minute", "this month", "in total"
    resets_at: datetime | None = None

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0

    @property
    def percent(self) -> int:
        return round(100 * self.share)

    @property
    def reached(self) -> bool:
        return self.used >= self.limit

    @property
    def high(self) -> str:
        return _number(self.limit * HIGH_SHARE)

    @property
    def value_attr(self) -> str:
        # The bar stops at its end: what was used beyond it is in the words.
        return _number(min(self.used, self.limit))

    @property
    def max_attr(self) -> str:
        return _number(self.limit)

    @property
    def used_text(self) -> str:
        # "12 of 60 requests": the unit once, after the limit.
        return _amount(self.used, self.unit) if self.unit == "USD" else f"{round(self.used):,}"

    @property
    def limit_text(self) -> str:
        return _amount(self.limit, self.unit)

    @property
    def compact_text(self) -> str:
        """ "12/60 requests a minute", "$3.20 of $50.00 this month": a table cell's line."""
        if self.unit == "USD":
            return f"{self.used_text} of {self.limit_text} {self.window}"
        return f"{round(self.used):,}/{round(self.limit):,} {self.unit} a minute"

    @property
    def text(self) -> str:
        """ "12 of 60 requests in the last minute (20%)": the bar in words."""
        words = f"{self.used_text} of {self.limit_text} {self.window} ({self.percent}%)"
        return f"{words}, limit reached" if self.reached else words


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _amount(value: float, unit: str) -> str:
    if unit == "USD":
        return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:,.4f}"
    return f"{round(value):,} {unit}"


@dataclass(frozen=True)
class Refusal:
    at: datetime
    token: str
    model: str
    reason: str


@dataclass(frozen=True)
class Use:
    """What one token, or one team, used of its limits (and, on its own page, what the
    limits refused)."""

    limits: Limits
    requests: int = 0  # in the last minute, refused calls not counted
    tokens: int = 0  # prompt and completion, in the last minute
    spent: float = 0.0  # US dollars, in the budget's current period
    period_end: datetime | None = None
    refused: list[Refusal] = field(default_factory=list)
    refused_count: int = 0

    @property
    def gauges(self) -> list[Gauge]:
        found = []
        if self.limits.rpm:
            found.append(
                Gauge(
                    "rpm",
                    "Requests per minute",
                    self.requests,
                    self.limits.rpm,
                    "requests",
                    "in the last minute",
                )
            )
        if self.limits.tpm:
            found.append(
                Gauge(
                    "tpm",
                    "Tokens per minute",
                    self.tokens,
                    self.limits.tpm,
                    "tokens",
                    "in the last minute",
                )
            )
        budget = self.limits.budget
        if budget:
            window = BUDGET_WINDOWS[budget.period]
            found.append(
                Gauge(
                    "budget",
                    "Budget",
                    self.spent,
                    float(budget.usd),
                    "USD",
                    window,
                    self.period_end,
                )
            )
        return found


# --- the queries --------------------------------------------------------------------------

# Token names: a list, a subquery (a team's, AccessToken...values("name")), or None for all.
Names = Iterable[str] | QuerySet | None


def _named(rows: QuerySet, names: Names) -> QuerySet:
    return rows if names is None else rows.filter(token_name__in=names)


def _minute(names: Names, now: datetime) -> dict[str, tuple[int, int]]:
    """{token name: (requests, tokens)} of the last minute, refused calls left out: one
    grouped query."""
    rows = RequestLog.objects.filter(at__gt=now - MINUTE, at__lte=now).exclude(REFUSED)
    grouped = (
        _named(rows, names)
        .order_by()
        .values("token_name")
        .annotate(
            n=Count("*"),
            t=Coalesce(Sum("prompt_tokens"), 0) + Coalesce(Sum("completion_tokens"), 0),
        )
    )
    return {row["token_name"]: (row["n"], row["t"]) for row in grouped}


def _spent(names: Names, now: datetime) -> dict[str, dict[str, float]]:
    """{token name: {period: US dollars spent in its current one}}, from the daily roll-up
    (every period starts at a UTC midnight): one grouped query, one row per token."""
    sums = {}
    for period in PERIODS:
        start, _ = period_bounds(period, now)
        spent = Sum("cost", filter=Q(start__gte=start)) if start else Sum("cost")
        sums[period] = Coalesce(spent, 0.0)
    rows = _named(TokenRollup.objects.filter(period=RollupPeriod.DAY), names)
    grouped = rows.order_by().values("token_name").annotate(**sums)
    return {row["token_name"]: {p: row[p] for p in PERIODS} for row in grouped}


def refusals(names: Names, *, now: datetime | None = None) -> tuple[list[Refusal], int]:
    """The latest calls the limits refused in the last 24 hours, and how many there were:
    two queries at most."""
    now = now or timezone.now()
    rows = _named(RequestLog.objects.filter(REFUSED, at__gte=now - REFUSED_SINCE), names)
    latest = rows.order_by("-at", "-id").values_list(
        "at", "token_name", "requested_model", "error"
    )[:REFUSED_ROWS]
    refused = [Refusal(*row) for row in latest]
    # Fewer rows than a full list are the count.
    count = rows.order_by().count() if len(refused) == REFUSED_ROWS else len(refused)
    return refused, count


# --- what the pages call -------------------------------------------------------------------


@dataclass(frozen=True)
class Reads:
    """The last minute and the spend of some tokens, read once: each token's or team's Use
    is then a sum, with no further query."""

    minute: Mapping[str, tuple[int, int]]
    spent: Mapping[str, Mapping[str, float]]
    now: datetime

    def use(self, limits: Limits, names: Iterable[str], **more: Any) -> Use:
        names = list(names)
        period = limits.budget.period if limits.budget else "total"
        _, end = period_bounds(period, self.now)
        return Use(
            limits=limits,
            requests=sum(self.minute.get(n, (0, 0))[0] for n in names),
            tokens=sum(self.minute.get(n, (0, 0))[1] for n in names),
            spent=sum(self.spent.get(n, {}).get(period, 0.0) for n in names),
            period_end=end,
            **more,
        )


def read(names: Names, *, now: datetime | None = None) -> Reads:
    """What the tokens named (all of them for None) used: two queries, none for no names."""
    now = now or timezone.now()
    if names is not None and not isinstance(names, QuerySet):
        names = list(names)
        if not names:
            return Reads({}, {}, now)
    return Reads(_minute(names, now), _spent(names, now), now)


def teams_use(teams: Iterable, token_names: Mapping[str, Iterable[str]]) -> dict[str, Use]:
    """{team name: its Use} for a list of teams, given each team's token names (usage.
    selectors.team_tokens): two queries, however many teams and tokens."""
    teams = list(teams)
    reads = read(sorted({n for team in teams for n in token_names.get(team.name, ())}))
    return {team.name: reads.use(team.limits, token_names.get(team.name, ())) for team in teams}


def use_of(limits: Limits, names: Iterable[str], *, reads: Reads | None = None) -> Use:
    """One token's (names: its own) or one team's (its tokens') use, with what the limits
    refused in the last 24 hours; `reads` when the page has read them already."""
    names = list(names)
    reads = reads or read(names)
    if not names:  # a team with no token yet: nothing was called, nothing refused
        return reads.use(limits, names)
    refused, count = refusals(names, now=reads.now)
    return reads.use(limits, names, refused=refused, refused_count=count)
