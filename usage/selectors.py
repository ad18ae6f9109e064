"""Aggregates over the request log for the usage page.

The log may hold millions of rows. Ranges of a day or more read the hourly or daily
roll-ups (usage.services) instead; the last hour, and the page of recent requests, read the
log through its `at` index. Every query is an aggregate or a bounded slice, and the number
of queries is fixed: it never grows with the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, Trunc, TruncDay, TruncHour, TruncMinute

from . import services
from .models import (
    LatencyRollup,
    ModelLatencyRollup,
    ModelRollup,
    RequestLog,
    TokenRollup,
    UsageRollup,
)

# Distinct (provider, model, token) combinations read for the filter selects.
CHOICES_LIMIT = 500
# Providers drawn separately in the time series; the rest are summed into one series.
SERIES_PROVIDERS = 6
OTHER_PROVIDERS = "other providers"
# What the database calls the summed series: no provider name can contain a space.
_OTHER = " other"
NO_PROVIDER = "no provider"
# Requests of tokens that belong to no team (global tokens, in-process calls, and tokens of a
# removed team); no team name can contain a space.
NO_TEAM = "no team"
LATENCY_MODELS = 10
PERCENTILES = (50, 90, 99)
TOKEN_ROWS = 20
PER_PAGE = 50
# A deep page costs a walk over every row before it; past 10,000 requests, narrow the range.
MAX_PAGE = 200


@dataclass(frozen=True)
class Range:
    key: str
    label: str
    span: timedelta
    bucket: timedelta
    # The database truncates to this unit; Python folds the result into `bucket`, so
    # five-minute and six-hour buckets need no database-specific date arithmetic.
    trunc: type[Trunc]
    # The roll-up the time series reads (None: the request log itself), and the one every
    # other aggregate reads; the range starts at the beginning of the latter's hour or day,
    # so both cover exactly the same requests.
    rollup: str | None = None
    align: str | None = None


RANGES = {
    r.key: r
    for r in (
        Range("1h", "Last hour", timedelta(hours=1), timedelta(minutes=5), TruncMinute),
        Range("24h", "Last 24 hours", timedelta(hours=24), timedelta(hours=1), TruncHour, "h", "h"),
        Range("7d", "Last 7 days", timedelta(days=7), timedelta(hours=6), TruncHour, "h", "d"),
        Range("30d", "Last 30 days", timedelta(days=30), timedelta(days=1), TruncDay, "d", "d"),
    )
}
DEFAULT_RANGE = "24h"
# Up to this many requests in a range, latency percentiles are exact (read from the log);
# above it they come from the roll-up's histogram, within about 12%.
EXACT_PERCENTILES_UP_TO = 20_000


@dataclass(frozen=True)
class Filters:
    provider: str = ""
    model: str = ""
    token: str = ""
    # A team filters on its tokens' names (team_tokens), revoked ones too: the request log
    # keeps token names, never teams, and a token's team never changes.
    team: str = ""
    team_tokens: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.provider or self.model or self.token or self.team)

    @property
    def by_token(self) -> bool:
        return bool(self.token or self.team)

    def scope(self) -> Filters:
        """Only the team: the filter choices are read within it, whatever the other filters."""
        return Filters(team=self.team, team_tokens=self.team_tokens)


@dataclass(frozen=True)
class Totals:
    requests: int
    errors: int
    tokens: int
    cost: float | None


@dataclass(frozen=True)
class Bucket:
    start: datetime
    requests: int
    errors: int


@dataclass(frozen=True)
class ProviderSeries:
    provider: str
    requests: int
    errors: int
    buckets: list[Bucket]


@dataclass(frozen=True)
class Latency:
    provider: str
    model: str
    requests: int
    # Milliseconds at PERCENTILES, in order; None when the row vanished mid-read.
    values: tuple[float | None, ...]

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}" if self.provider else self.model


@dataclass(frozen=True)
class TokenUsage:
    token: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TeamUsage:
    team: str
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Window:
    """What the page shows: a range ending now, and the filters."""

    rng: Range
    since: datetime
    until: datetime
    filters: Filters

    def _filtered(self, rows: QuerySet) -> QuerySet:
        if self.filters.provider:
            rows = rows.filter(provider=self.filters.provider)
        if self.filters.model:
            rows = rows.filter(model=self.filters.model)
        if self.filters.token:
            rows = rows.filter(token_name=self.filters.token)
        if self.filters.team:
            rows = rows.filter(token_name__in=self.filters.team_tokens)
        return rows

    def requests(self) -> QuerySet[RequestLog]:
        # order_by(): the model's "-at, -id" ordering has no place in aggregates.
        rows = RequestLog.objects.filter(at__gte=self.since, at__lte=self.until).order_by()
        return self._filtered(rows)

    def rollups(self, model: type[models.Model], *, period: str = "") -> QuerySet:
        period = period or self.rng.align
        rows = model.objects.filter(period=period, start__gte=self.since)
        return self._filtered(rows.filter(start__lte=self.until).order_by())

    # The narrowest roll-up that can answer with these filters (usage/models.py).

    def totals(self, *, period: str = "") -> QuerySet:
        return self.rollups(UsageRollup if self.filters.by_token else ModelRollup, period=period)

    def token_totals(self) -> QuerySet:
        narrow = not (self.filters.provider or self.filters.model)
        return self.rollups(TokenRollup if narrow else UsageRollup)

    def histograms(self) -> QuerySet:
        return self.rollups(LatencyRollup if self.filters.by_token else ModelLatencyRollup)


def window(rng: Range, *, until: datetime, filters: Filters) -> Window:
    since = until - rng.span
    if rng.align:
        since = services.period_start(since, rng.align)
    return Window(rng, since, until, filters)


def filter_choices(w: Window) -> dict[str, list[str]]:
    """Distinct providers, models and token names seen in the range (whatever the filters,
    but within the team filtered on: a team's member sees nothing of other teams' tokens).

    From the log (the last hour): one grouped query, so the range is read once through the
    `at` index. From the roll-ups: the (provider, model) pairs and the token names, each
    from its own narrow table. Limited all the same."""
    unfiltered = replace(w, filters=w.filters.scope())
    if w.rng.rollup:
        pairs = unfiltered.totals().values_list("provider", "model").distinct()
        tokens = unfiltered.token_totals().values_list("token_name", flat=True).distinct()
        combinations = [(p, m, "") for p, m in pairs[:CHOICES_LIMIT]]
        combinations += [("", "", t) for t in tokens[:CHOICES_LIMIT]]
    else:
        rows = unfiltered.requests().values_list("provider", "model", "token_name")
        combinations = rows.distinct()[:CHOICES_LIMIT]
    seen: dict[str, set[str]] = {"provider": set(), "model": set(), "token": set()}
    for provider, model, token in combinations:
        seen["provider"].add(provider)
        seen["model"].add(model)
        seen["token"].add(token)
    return {key: sorted(values - {""}) for key, values in seen.items()}


def _tokens_expression():
    return Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)


def bucket_starts(rng: Range, *, since: datetime, until: datetime) -> list[datetime]:
    size = int(rng.bucket.total_seconds())
    first = int(since.timestamp()) // size * size
    last = int(until.timestamp()) // size * size
    return [datetime.fromtimestamp(s, tz=UTC) for s in range(first, last + size, size)]


def _activity_source(w: Window) -> tuple[QuerySet, dict[str, Any]]:
    if w.rng.rollup:
        rows = w.totals(period=w.rng.rollup).annotate(slot=F("start"))
        tokens = Sum(F("prompt_tokens") + F("completion_tokens"))
        return rows, {"requests": Sum("requests"), "errors": Sum("errors"), "tokens": tokens}
    rows = w.requests().annotate(slot=w.rng.trunc("at", tzinfo=UTC))
    counts = {"requests": Count("id"), "errors": Count("id", filter=Q(ok=False))}
    return rows, {**counts, "tokens": Sum(_tokens_expression())}


def _drawn_providers(w: Window) -> list[str] | None:
    """The providers drawn as series of their own, or None when every one is."""
    rows, sums = _activity_source(w)
    busiest = rows.values("provider").annotate(n=sums["requests"]).order_by("-n", "provider")
    top = [row["provider"] for row in busiest[: SERIES_PROVIDERS + 1]]
    return None if len(top) <= SERIES_PROVIDERS else top[: SERIES_PROVIDERS - 1]


def _activity_rows(w: Window):
    """Requests, errors, tokens and cost per series and time slot: at most SERIES_PROVIDERS
    series (the busiest providers, then the rest summed) come back, however many there are."""
    rows, sums = _activity_source(w)
    drawn = _drawn_providers(w)
    if drawn is None:
        series = F("provider")
    else:
        series = Case(When(provider__in=drawn, then=F("provider")), default=Value(_OTHER))
    grouped = rows.annotate(series=series).values("series", "slot")
    return grouped.annotate(**sums, cost=Sum("cost"))


def activity(w: Window) -> tuple[Totals, list[ProviderSeries]]:
    """Totals, and requests and errors per provider and bucket, the busiest providers first.

    Two queries: the busiest providers, then at most one row per series and slot (60 for the
    last hour, 30 for a month), whatever the number of requests; the totals are their sums."""
    size = int(w.rng.bucket.total_seconds())
    starts = bucket_starts(w.rng, since=w.since, until=w.until)
    first = int(starts[0].timestamp())
    per_provider: dict[str, list[list[int]]] = {}
    tokens, costs = 0, []
    for row in _activity_rows(w):
        tokens += row["tokens"] or 0
        if row["cost"] is not None:
            costs.append(row["cost"])
        index = min(max((int(row["slot"].timestamp()) - first) // size, 0), len(starts) - 1)
        name = row["series"] or NO_PROVIDER
        slots = per_provider.setdefault(name, [[0, 0] for _ in starts])
        slots[index][0] += row["requests"]
        slots[index][1] += row["errors"]
    other = per_provider.pop(_OTHER, None)
    ranked = sorted(per_provider.items(), key=lambda item: (-sum(r for r, _ in item[1]), item[0]))
    if other is not None:
        ranked.append((OTHER_PROVIDERS, other))
    series = [
        ProviderSeries(
            provider=name,
            requests=sum(r for r, _ in slots),
            errors=sum(e for _, e in slots),
            buckets=[Bucket(start, r, e) for start, (r, e) in zip(starts, slots, strict=True)],
        )
        for name, slots in ranked
    ]
    totals = Totals(
        requests=sum(s.requests for s in series),
        errors=sum(s.errors for s in series),
        tokens=tokens,
        cost=sum(costs) if costs else None,
    )
    return totals, series


def _offset(percent: int, count: int) -> int:
    # Nearest rank: the smallest value with at least `percent`% of values at or below it.
    return max((percent * count + 99) // 100 - 1, 0)


def latency_by_model(w: Window, *, requests: int) -> list[Latency]:
    """p50/p90/p99 latency of successful requests for the busiest models: exact while the
    range holds few requests, from the roll-up's histogram beyond that."""
    if w.rng.rollup and requests > EXACT_PERCENTILES_UP_TO:
        return _latency_from_histogram(w)
    return _latency_exact(w.requests())


def _latency_exact(rows: QuerySet[RequestLog]) -> list[Latency]:
    """Portable percentiles (SQLite has no percentile_cont): one grouped count for the top
    LATENCY_MODELS models, then one small query per model and percentile that fetches the
    single latency at that rank. At most 1 + 10 * 3 queries, however many rows there are."""
    ok = rows.filter(ok=True)
    top = (
        ok.values("provider", "model")
        .annotate(requests=Count("id"))
        .order_by("-requests", "provider", "model")[:LATENCY_MODELS]
    )
    result = []
    for row in top:
        mine = ok.filter(provider=row["provider"], model=row["model"])
        count = row["requests"]
        values = []
        for percent in PERCENTILES:
            rank = _offset(percent, count)
            # From the nearer end, so the database keeps the smaller top-N heap.
            if rank < count // 2:
                ordered = mine.order_by("latency_ms")
            else:
                ordered, rank = mine.order_by("-latency_ms"), count - 1 - rank
            try:
                values.append(ordered.values_list("latency_ms", flat=True)[rank])
            except IndexError:
                values.append(None)
        result.append(Latency(row["provider"], row["model"], count, tuple(values)))
    return result


def _latency_from_histogram(w: Window) -> list[Latency]:
    """Two grouped queries: the busiest models (by successful requests), then how many of
    their requests fell in each latency bucket, read through the (provider, model) index."""
    busiest = (
        w.totals()
        .values("provider", "model")
        .annotate(served=Sum("requests") - Sum("errors"))
        .filter(served__gt=0)
        .order_by("-served", "provider", "model")[:LATENCY_MODELS]
    )
    pairs = {(row["provider"], row["model"]) for row in busiest}
    if not pairs:
        return []
    # Two INs rather than ten ORed pairs: the database then seeks the (provider, model) index
    # for each combination instead of scanning the range; the few extra pairs are dropped.
    counts = w.histograms().filter(
        provider__in={p for p, _ in pairs}, model__in={m for _, m in pairs}
    )
    histograms: dict[tuple[str, str], dict[int, int]] = {}
    for row in counts.values("provider", "model", "bucket").annotate(n=Sum("count")):
        if (row["provider"], row["model"]) in pairs:
            buckets = histograms.setdefault((row["provider"], row["model"]), {})
            buckets[row["bucket"]] = row["n"]
    ranked = sorted(histograms.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return [
        Latency(provider, model, sum(buckets.values()), _percentiles(buckets))
        for (provider, model), buckets in ranked[:LATENCY_MODELS]
    ]


def _percentiles(buckets: dict[int, int]) -> tuple[float | None, ...]:
    # The value at each rank, placed evenly within its bucket's bounds.
    count = sum(buckets.values())
    values = []
    for percent in PERCENTILES:
        rank, below = _offset(percent, count), 0
        for bucket in sorted(buckets):
            if rank < below + buckets[bucket]:
                low, high = services.bucket_bounds(bucket)
                values.append(low + (high - low) * (rank - below + 0.5) / buckets[bucket])
                break
            below += buckets[bucket]
    return tuple(values)


def usage_by_token(w: Window) -> list[TokenUsage]:
    """Tokens (prompt + completion) and cost per access token name, the heaviest first."""
    if w.rng.rollup:
        rows = w.token_totals().values("token_name")
        requests, prompt, completion = (
            Sum("requests"),
            Sum("prompt_tokens"),
            Sum("completion_tokens"),
        )
        total = Sum(F("prompt_tokens") + F("completion_tokens"))
    else:
        rows = w.requests().values("token_name")
        requests = Count("id")
        prompt = Sum(Coalesce("prompt_tokens", 0))
        completion = Sum(Coalesce("completion_tokens", 0))
        total = Sum(_tokens_expression())
    grouped = rows.annotate(
        requests=requests, prompt=prompt, completion=completion, spent=Sum("cost"), total=total
    ).order_by("-total", "token_name")[:TOKEN_ROWS]
    return [
        TokenUsage(
            token=row["token_name"],
            requests=row["requests"],
            prompt_tokens=row["prompt"] or 0,
            completion_tokens=row["completion"] or 0,
            cost=row["spent"],
        )
        for row in grouped
    ]


def team_tokens(*, teams: list[str] | None = None) -> dict[str, tuple[str, ...]]:
    """{team name: its tokens' names, revoked ones too}, the teams by name (all of them, or
    those named): one query, however many teams and tokens."""
    from accounts.models import Team

    rows = Team.objects.order_by("name", "tokens__name")
    if teams is not None:
        rows = rows.filter(name__in=teams)
    found: dict[str, list[str]] = {}
    for team, token in rows.values_list("name", "tokens__name"):
        names = found.setdefault(team, [])
        if token is not None:
            names.append(token)
    return {team: tuple(names) for team, names in found.items()}


def usage_by_team(w: Window, *, teams: dict[str, tuple[str, ...]]) -> list[TeamUsage]:
    """Requests, errors, tokens and cost per team (the busiest first; NO_TEAM for tokens of
    none), from the per-token totals mapped to teams by the database: one grouped query that
    answers at most one row per team, however many tokens there are."""
    label = Case(
        *(When(token_name__in=names, then=Value(team)) for team, names in teams.items() if names),
        default=Value(NO_TEAM),
        output_field=CharField(),
    )
    if w.rng.rollup:
        rows = w.token_totals()
        sums = {
            "n": Sum("requests"),
            "failed": Sum("errors"),
            "prompt": Sum("prompt_tokens"),
            "completion": Sum("completion_tokens"),
        }
    else:
        rows = w.requests()
        sums = {
            "n": Count("id"),
            "failed": Count("id", filter=Q(ok=False)),
            "prompt": Sum(Coalesce("prompt_tokens", 0)),
            "completion": Sum(Coalesce("completion_tokens", 0)),
        }
    grouped = rows.annotate(team=label).values("team").annotate(**sums, spent=Sum("cost"))
    found = [
        TeamUsage(
            team=row["team"],
            requests=row["n"],
            errors=row["failed"] or 0,
            prompt_tokens=row["prompt"] or 0,
            completion_tokens=row["completion"] or 0,
            cost=row["spent"],
        )
        for row in grouped
    ]
    return sorted(found, key=lambda u: (-u.requests, u.team == NO_TEAM, u.team))


def recent_requests(w: Window, *, page: int) -> tuple[list[RequestLog], bool]:
    """One page of requests, newest first, and whether there is a next one.

    One row more than a page tells whether a next page exists: no COUNT(*) over the range."""
    page = min(page, MAX_PAGE)
    start = (page - 1) * PER_PAGE
    found = list(w.requests().order_by("-at", "-id")[start : start + PER_PAGE + 1])
    return found[:PER_PAGE], len(found) > PER_PAGE and page < MAX_PAGE
