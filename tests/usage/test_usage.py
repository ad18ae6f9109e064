"""The usage page: who may see it, the aggregates it draws, ranges, filters, htmx, paging, and
a query count that does not grow with the log."""

import re
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from usage import request_log, selectors
from usage.models import RequestLog

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
URL = reverse("usage")


def log(count=1, *, ago=timedelta(minutes=10), **fields):
    """`count` requests, `ago` before now (a timedelta, or one per row)."""
    now = timezone.now()
    agos = ago if isinstance(ago, list) else [ago] * count
    defaults = {
        "token_name": "ci-bot",
        "requested_model": "fast",
        "provider": "acme",
        "model": "gpt-4o-mini",
        "ok": True,
        "status": 200,
        "latency_ms": 100.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": 0.001,
    }
    latencies = fields.pop("latencies", None)
    rows = []
    for i, delta in enumerate(agos):
        row = {**defaults, **fields, "at": now - delta}
        if latencies:
            row["latency_ms"] = latencies[i]
        rows.append(row)
    # The writer's path: the records and their roll-ups, together.
    request_log.write(rows)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _desc(html: str, ident: str) -> str:
    return _text(re.search(rf'<desc id="{ident}">(.*?)</desc>', html, re.S).group(1))


def _recent_rows(html: str) -> int:
    section = html.split('id="recent-heading"', 1)[1]
    return len(re.findall(r'<tr>\s*<td class="num"><time', section))


@pytest.fixture
def viewer(client, login_as):
    login_as("viewer")
    return client


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and response.url.startswith("/login/?next=/usage/")


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_may_read_it(client, login_as, role):
    login_as(role)
    assert client.get(URL).status_code == 200


def test_empty_range_says_so(viewer):
    log(ago=timedelta(days=3))
    html = viewer.get(URL).content.decode()
    assert "No requests in this range" in html
    assert "<svg" not in html


def test_it_aggregates_requests_errors_and_latency(viewer):
    # Ten successes with latencies 10..100 ms; two slow errors that must not count.
    log(10, latencies=[10.0 * i for i in range(1, 11)])
    log(2, ok=False, status=502, error="upstream said no", latency_ms=9000.0)
    log(3, provider="beta", model="m2", latencies=[5.0, 7.0, 9.0])
    html = viewer.get(URL).content.decode()

    assert 'role="img"' in html and "<title id=" in html
    assert _desc(html, "series-1-desc").startswith("acme: 12 requests, 2 errors")
    assert _desc(html, "series-2-desc").startswith("beta: 3 requests, 0 errors")
    latency = _desc(html, "latency-desc")
    assert "acme/gpt-4o-mini: p50 50 ms, p90 90 ms, p99 100 ms." in latency
    assert "beta/m2: p50 7 ms, p90 9 ms, p99 9 ms." in latency
    # 15 rows of 10 + 5 tokens at $0.001.
    assert "ci-bot: 225 tokens · $0.0150." in _desc(html, "token-usage-desc")
    facts = _text(re.search(r'<dl class="facts card">(.*?)</dl>', html, re.S).group(1))
    assert "Requests 15" in facts and "Errors 2 (13.3%)" in facts and "Tokens 225" in facts
    assert "upstream said no" in html and "502" in html


def test_buckets_follow_the_range(viewer):
    log(2, ago=timedelta(minutes=3))
    log(1, ago=timedelta(hours=5), ok=False)
    response = viewer.get(URL)
    (chart,) = response.context["series_charts"]
    starts = selectors.bucket_starts(
        selectors.RANGES["24h"], since=response.context["since"], until=response.context["until"]
    )
    assert len(chart.bars) == len(starts) == 25
    assert all(b.bucket.start.minute == 0 for b in chart.bars)
    counts = {b.bucket.start: (b.bucket.requests, b.bucket.errors) for b in chart.bars}
    now = timezone.now().astimezone(UTC)
    for ago, expected in ((timedelta(minutes=3), (2, 0)), (timedelta(hours=5), (1, 1))):
        hour = (now - ago).replace(minute=0, second=0, microsecond=0)
        assert counts[hour] == expected
    assert sum(r for r, _ in counts.values()) == 3

    response = viewer.get(URL, {"range": "1h"})
    (chart,) = response.context["series_charts"]
    assert chart.series.requests == 2 and len(chart.bars) == 13
    assert all(b.bucket.start.minute % 5 == 0 for b in chart.bars)


def test_range_excludes_older_rows(viewer):
    log(1, ago=timedelta(minutes=30), token_name="recent")
    log(1, ago=timedelta(hours=3), token_name="hours-old")
    log(1, ago=timedelta(days=3), token_name="days-old")
    log(1, ago=timedelta(days=20), token_name="weeks-old")
    seen = {}
    for key in ("1h", "24h", "7d", "30d"):
        response = viewer.get(URL, {"range": key})
        seen[key] = response.context["totals"].requests
        assert f'<option value="{key}" selected>' in response.content.decode()
    assert seen == {"1h": 1, "24h": 2, "7d": 3, "30d": 4}
    # Unknown ranges fall back to 24 hours; so does no range at all.
    assert viewer.get(URL, {"range": "1y"}).context["range"].key == "24h"
    html = viewer.get(URL).content.decode()
    assert "hours-old" in html and "days-old" not in html


def test_filters_narrow_every_aggregate(viewer):
    log(4, provider="acme", model="gpt-4o-mini", token_name="ci-bot")
    log(2, provider="beta", model="m2", token_name="web")
    log(1, provider="beta", model="m3", token_name="ci-bot", ago=timedelta(days=2))
    response = viewer.get(URL, {"provider": "beta"})
    html = response.content.decode()
    assert response.context["totals"].requests == 2
    assert [c.series.provider for c in response.context["series_charts"]] == ["beta"]
    assert "matching the filters" in html
    # Choices are the distinct values within the range; m3 is older than 24 hours.
    assert response.context["providers"] == ["acme", "beta"]
    assert response.context["models"] == ["gpt-4o-mini", "m2"]
    assert response.context["tokens"] == ["ci-bot", "web"]
    assert '<option value="beta" selected>' in html

    assert viewer.get(URL, {"model": "gpt-4o-mini"}).context["totals"].requests == 4
    assert viewer.get(URL, {"token": "web"}).context["totals"].requests == 2
    assert viewer.get(URL, {"token": "web", "provider": "acme"}).context["totals"].requests == 0
    # A filter chosen under another range stays selected.
    response = viewer.get(URL, {"model": "m3"})
    assert response.context["models"][0] == "m3" and "No requests in this range" in (
        response.content.decode()
    )
    assert viewer.get(URL, {"range": "7d", "model": "m3"}).context["totals"].requests == 1


def test_htmx_gets_the_results_and_fresh_filters_only(viewer):
    log(3)
    response = viewer.get(URL, {"range": "1h"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith('<section id="usage-results"')
    assert 'id="usage-filters"' in html and 'hx-swap-oob="true"' in html
    assert 'role="img"' in html
    assert "HX-Request" in response["Vary"]
    full = viewer.get(URL).content.decode()
    assert "<html" in full and "hx-swap-oob" not in full


def test_recent_requests_page_without_counting(viewer):
    log(60, ago=[timedelta(seconds=10 + i) for i in range(60)])
    response = viewer.get(URL)
    html = response.content.decode()
    assert _recent_rows(html) == 50
    assert 'rel="next"' in html and 'rel="prev"' not in html and "Page 1" in html
    html = viewer.get(URL, {"page": "2"}, **HX).content.decode()
    assert _recent_rows(html) == 10
    assert 'rel="prev"' in html and 'rel="next"' not in html
    html = viewer.get(URL, {"page": "9"}).content.decode()
    assert "No requests on this page" in html
    assert viewer.get(URL, {"page": "x"}).context["page_number"] == 1
    assert viewer.get(URL, {"page": "99999"}).context["page_number"] == selectors.MAX_PAGE


def test_everything_is_escaped(viewer):
    log(2, token_name="<script>alert(1)</script>", model="<b>m</b>", requested_model="<i>x")
    html = viewer.get(URL).content.decode()
    assert "<script>alert" not in html and "<b>m</b>" not in html and "<i>x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;m&lt;/b&gt;" in html


def _queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(URL, params).status_code == 200
    return len(ctx.captured_queries)


def _spread(count: int, models: int) -> None:
    for m in range(models):
        share = count // models
        log(
            share,
            ago=[timedelta(minutes=1 + i % 600) for i in range(share)],
            model=f"model-{m}",
            provider=f"p{m % 3}",
            token_name=f"t{m % 4}",
            latencies=[float(i % 97) for i in range(share)],
        )


def test_query_count_does_not_grow_with_rows(viewer, django_assert_max_num_queries):
    _spread(10, models=2)
    few = _queries(viewer)
    _spread(290, models=2)
    assert RequestLog.objects.count() == 300
    assert _queries(viewer) == few
    assert _queries(viewer, range="30d") == few


def test_query_count_is_capped_however_many_models(viewer, django_assert_max_num_queries):
    _spread(300, models=15)
    # Session, user, groups; teams (none: no by-team query); choices (pairs, tokens); busiest
    # providers; totals and series; 1 + 10 * 3 latency; tokens; page.
    with django_assert_max_num_queries(41):
        response = viewer.get(URL)
    assert len(response.context["latencies"]) == selectors.LATENCY_MODELS
    assert len(response.context["series_charts"]) == 3
