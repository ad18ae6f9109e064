"""The usage page: requests, errors, latency, tokens and cost over a chosen time range, as
server-drawn SVG charts (no JavaScript) over aggregates, and a page of recent requests."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from accounts.roles import has_role, require_team, team_or_role_required, team_roles

from . import selectors

TEMPLATE = "usage/usage.html"

# Chart geometry, in SVG user units; the SVGs scale to the page width.
WIDTH = 1000
SERIES_PLOT = 90
SERIES_HEIGHT = SERIES_PLOT + 18
# Room after the longest bar for its text ("p99 12,345 ms", "1,234,567 tokens · $12.34").
BAR_AREA = 760
BAR_HEIGHT = 10
LABEL_LINE = 15
ROW_GAP = 8
REQUESTS_COLOUR = "#2450c8"
ERRORS_COLOUR = "#b3261e"
# Each at least 3:1 against white (WCAG non-text contrast); lighter means faster.
PERCENTILE_COLOURS = ("#6f8fe0", "#2450c8", "#1d3a8f")
BUCKET_NAMES = {"1h": "five minutes", "24h": "hour", "7d": "six hours", "30d": "day"}
TIME_FORMATS = {"1h": "H:i", "24h": "M j H:i", "7d": "M j H:i", "30d": "M j"}
# What the template needs of the above.
SVG = {
    "width": WIDTH,
    "series_plot": SERIES_PLOT,
    "series_height": SERIES_HEIGHT,
    "series_label_y": SERIES_HEIGHT - 4,
    "bar_height": BAR_HEIGHT,
    "requests_colour": REQUESTS_COLOUR,
    "errors_colour": ERRORS_COLOUR,
}


@dataclass(frozen=True)
class SeriesBar:
    bucket: selectors.Bucket
    x: float
    width: float
    requests_y: float
    requests_height: float
    errors_y: float
    errors_height: float


@dataclass(frozen=True)
class SeriesChart:
    series: selectors.ProviderSeries
    peak: int
    bars: list[SeriesBar]


@dataclass(frozen=True)
class HBar:
    width: float
    y: float
    colour: str
    text: str

    @property
    def text_x(self) -> float:
        return round(self.width + 6, 2)

    @property
    def text_y(self) -> float:
        return self.y + BAR_HEIGHT - 1


@dataclass(frozen=True)
class HRow:
    label: str
    label_y: float
    bars: list[HBar]


@dataclass(frozen=True)
class HChart:
    height: float
    rows: list[HRow]


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def money(value: float | None) -> str:
    if value is None:
        return "no price"
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def _series_chart(series: selectors.ProviderSeries) -> SeriesChart:
    count = len(series.buckets)
    slot = WIDTH / count
    peak = max(b.requests for b in series.buckets)
    bars = []
    for i, bucket in enumerate(series.buckets):
        height = SERIES_PLOT * bucket.requests / peak if peak else 0
        errors = SERIES_PLOT * bucket.errors / peak if peak else 0
        bars.append(
            SeriesBar(
                bucket=bucket,
                x=round(i * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                requests_y=round(SERIES_PLOT - height, 2),
                requests_height=round(height, 2),
                errors_y=round(SERIES_PLOT - errors, 2),
                errors_height=round(errors, 2),
            )
        )
    return SeriesChart(series=series, peak=peak, bars=bars)


def _hchart(rows: list[tuple[str, list[tuple[float, str, str]]]]) -> HChart:
    """Horizontal bars: per row a label line, then one bar per (value, colour, text)."""
    top = max((value for _, bars in rows for value, _, _ in bars), default=0) or 1
    y = 0.0
    chart_rows = []
    for label, bars in rows:
        label_y = y + LABEL_LINE - 4
        y += LABEL_LINE
        hbars = []
        for value, colour, text in bars:
            hbars.append(HBar(round(BAR_AREA * value / top, 2), y, colour, text))
            y += BAR_HEIGHT + 2
        chart_rows.append(HRow(label, label_y, hbars))
        y += ROW_GAP
    return HChart(height=max(y, 1), rows=chart_rows)


def _latency_chart(latencies: list[selectors.Latency]) -> HChart:
    return _hchart(
        [
            (
                row.label,
                [
                    (value or 0, colour, f"p{percent} {ms(value)}")
                    for percent, value, colour in zip(
                        selectors.PERCENTILES, row.values, PERCENTILE_COLOURS, strict=True
                    )
                ],
            )
            for row in latencies
        ]
    )


def _token_chart(usages: list[selectors.TokenUsage]) -> HChart:
    return _hchart(
        [
            (u.token, [(u.tokens, REQUESTS_COLOUR, f"{u.tokens:,} tokens · {money(u.cost)}")])
            for u in usages
        ]
    )


def _team_chart(usages: list[selectors.TeamUsage]) -> HChart:
    return _hchart(
        [
            (
                u.team,
                [
                    (
                        u.requests,
                        REQUESTS_COLOUR,
                        f"{u.requests:,} requests, {u.errors:,} errors · {u.tokens:,} tokens"
                        f" · {money(u.cost)}",
                    )
                ],
            )
            for u in usages
        ]
    )


def _page_number(value: str | None) -> int:
    try:
        return min(max(int(value or 1), 1), selectors.MAX_PAGE)
    except ValueError:
        return 1


def _choices(values: list[str], selected: str) -> list[str]:
    # A value chosen under another range stays selectable, so the form shows what is applied.
    if selected and selected not in values:
        return [selected, *values]
    return values


def _charts(
    w: selectors.Window,
    totals: selectors.Totals,
    series: list[selectors.ProviderSeries],
    teams: dict[str, tuple[str, ...]],
) -> dict:
    latencies = selectors.latency_by_model(w, requests=totals.requests)
    usages = selectors.usage_by_token(w)
    # No teams, nothing to tell apart: the query runs only once there is one.
    team_usages = selectors.usage_by_team(w, teams=teams) if teams else []
    # The table fallback reads across providers: one line per bucket.
    table = [
        (bucket.start, [(s.buckets[i].requests, s.buckets[i].errors) for s in series])
        for i, bucket in enumerate(series[0].buckets if series else [])
    ]
    return {
        "series_charts": [_series_chart(s) for s in series],
        "series_table": table,
        "latencies": latencies,
        "latency_chart": _latency_chart(latencies),
        "usages": usages,
        "token_chart": _token_chart(usages),
        "team_usages": team_usages,
        "team_chart": _team_chart(team_usages),
    }


def _team_scope(request: HttpRequest) -> tuple[str, dict[str, tuple[str, ...]], bool]:
    """The team filtered on, the teams the person may choose (with their tokens' names),
    and whether they see the whole gateway (a global viewer or above).

    Someone with only team memberships sees their own teams only, and always one of them:
    their first when they name none; another team's name is a 403."""
    team = request.GET.get("team", "")
    if has_role(request.user, "viewer"):
        return team, selectors.team_tokens(), True
    mine = list(team_roles(request.user))
    team = team or mine[0]
    require_team(request.user, team)
    return team, selectors.team_tokens(teams=mine), False


@require_GET
@team_or_role_required
def usage(request: HttpRequest) -> HttpResponse:
    rng = selectors.RANGES.get(request.GET.get("range", ""))
    rng = rng or selectors.RANGES[selectors.DEFAULT_RANGE]
    team, teams, everyone = _team_scope(request)
    token = request.GET.get("token", "")
    if team and token not in teams.get(team, ()):
        # Another team's token matches nothing here; it is not echoed back as a choice.
        token = ""
    filters = selectors.Filters(
        provider=request.GET.get("provider", ""),
        model=request.GET.get("model", ""),
        token=token,
        team=team,
        team_tokens=teams.get(team, ()),
    )
    w = selectors.window(rng, until=timezone.now(), filters=filters)
    page = _page_number(request.GET.get("page"))
    totals, series = selectors.activity(w)
    context = {
        "nav": "usage",
        "ranges": selectors.RANGES.values(),
        "range": rng,
        "bucket_name": BUCKET_NAMES[rng.key],
        "time_format": TIME_FORMATS[rng.key],
        "since": w.since,
        "until": w.until,
        "filters": filters,
        # A team's member is always within one of their teams: that is no filter to clear.
        "filtered": bool(filters) if everyone else bool(replace(filters, team="")),
        "scope_team": "" if everyone else team,
        "everyone": everyone,
        "totals": totals,
        "error_rate": 100 * totals.errors / totals.requests if totals.requests else 0,
        "total_cost": money(totals.cost),
        "page_number": page,
        **SVG,
    }
    # An empty range costs one query; the other charts' queries run only when there is data.
    if totals.requests:
        context.update(_charts(w, totals, series, teams))
        context["requests"], context["has_next"] = selectors.recent_requests(w, page=page)
    choices = selectors.filter_choices(w)
    context["providers"] = _choices(choices["provider"], filters.provider)
    context["models"] = _choices(choices["model"], filters.model)
    context["tokens"] = _choices(choices["token"], filters.token)
    context["teams"] = _choices(list(teams), team) if everyone else list(teams)
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        # The filter form comes along out of band: its choices depend on the range.
        context["oob"] = True
        response = render(request, TEMPLATE + "#results", context)
    else:
        response = render(request, TEMPLATE, context)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response
