"""The request log's hourly and daily roll-ups: what the usage page reads for a day or more.

They must agree with the log itself, add up when several batches (or processes) write the
same hour, survive a rebuild unchanged, and shrink with the retention."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from usage import request_log, selectors
from usage.models import LatencyRollup, RequestLog, UsageRollup
from usage.services import bucket_bounds, latency_bucket, prune_requests, rollup_rebuild

pytestmark = pytest.mark.django_db


def _record(at, *, provider="acme", model="m1", token="ci-bot", ok=True, latency=100.0, cost=0.01):
    return {
        "at": at,
        "token_name": token,
        "requested_model": "default",
        "provider": provider,
        "model": model,
        "ok": ok,
        "status": 200 if ok else 502,
        "latency_ms": latency,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": cost,
    }


def _rollups() -> set[tuple]:
    usage = UsageRollup.objects.values_list(
        "period", "start", "provider", "model", "token_name", "requests", "errors",
        "prompt_tokens", "completion_tokens",
    )  # fmt: skip
    latency = LatencyRollup.objects.values_list(
        "period", "start", "provider", "model", "token_name", "bucket", "count"
    )
    return set(usage) | set(latency)


def _window(key: str, **filters) -> selectors.Window:
    return selectors.window(
        selectors.RANGES[key], until=timezone.now(), filters=selectors.Filters(**filters)
    )


def test_batches_writing_the_same_hour_add_up():
    hour = datetime(2026, 11, 20, 10, tzinfo=UTC)
    request_log.write([_record(hour + timedelta(minutes=5)), _record(hour, ok=False)])
    request_log.write([_record(hour + timedelta(minutes=59), cost=None)])

    row = UsageRollup.objects.get(period="h", start=hour)
    assert (row.requests, row.errors, row.prompt_tokens, row.completion_tokens) == (3, 1, 30, 15)
    assert row.cost == pytest.approx(0.02)  # a record without a price adds nothing
    day = UsageRollup.objects.get(period="d", start=hour.replace(hour=0))
    assert day.requests == 3
    # Only successful requests have a latency worth a percentile.
    assert LatencyRollup.objects.get(period="h", start=hour).count == 2


def test_every_range_agrees_with_the_log_itself():
    now = timezone.now()
    rnd = random.Random(7)
    request_log.write(
        [
            _record(
                now - timedelta(minutes=rnd.randrange(1, 40 * 24 * 60)),
                provider=rnd.choice(["acme", "beta"]),
                ok=rnd.random() > 0.2,
                token=rnd.choice(["ci-bot", "web"]),
            )
            for _ in range(400)
        ]
    )
    for key in ("24h", "7d", "30d"):
        w = _window(key)
        totals, series = selectors.activity(w)
        logged = RequestLog.objects.filter(at__gte=w.since, at__lte=w.until)
        assert totals.requests == logged.count()
        assert totals.errors == logged.filter(ok=False).count()
        per_provider = {p: logged.filter(provider=p).count() for p in ("acme", "beta")}
        assert {s.provider: s.requests for s in series} == {
            p: n for p, n in per_provider.items() if n
        }
        tokens = {u.token: u.requests for u in selectors.usage_by_token(_window(key))}
        assert tokens == {t: logged.filter(token_name=t).count() for t in tokens}


def test_a_filtered_range_counts_only_matching_requests():
    now = timezone.now()
    request_log.write(
        [_record(now - timedelta(hours=2), token="web")] * 3
        + [_record(now - timedelta(hours=3), token="ci-bot", provider="beta")] * 2
    )
    totals, _ = selectors.activity(_window("7d", token="web"))
    assert totals.requests == 3
    assert selectors.filter_choices(_window("7d", token="web"))["token"] == ["ci-bot", "web"]


def test_histogram_percentiles_stay_close_to_the_exact_ones(monkeypatch):
    now = timezone.now()
    rnd = random.Random(3)
    latencies = [rnd.lognormvariate(6, 0.8) for _ in range(2000)]
    request_log.write([_record(now - timedelta(hours=1), latency=ms) for ms in latencies])
    w = _window("24h")

    [exact] = selectors.latency_by_model(w, requests=2000)
    monkeypatch.setattr(selectors, "EXACT_PERCENTILES_UP_TO", 100)
    with CaptureQueriesContext(connection) as queries:
        [estimated] = selectors.latency_by_model(w, requests=2000)

    # Two grouped reads (the busiest models, their histograms), not one per percentile.
    assert len(queries.captured_queries) == 2
    assert estimated.requests == exact.requests == 2000
    for got, want in zip(estimated.values, exact.values, strict=True):
        assert got == pytest.approx(want, rel=0.13)


def test_latency_buckets_hold_their_latency():
    for ms in (0.0, 0.5, 1.0, 99.9, 100.0, 12_345.6):
        low, high = bucket_bounds(latency_bucket(ms))
        assert low <= ms < high
    # Everything past the last bound (about nine minutes) shares one bucket.
    assert latency_bucket(10**7) == latency_bucket(10**9)


def test_rebuild_gives_the_same_rollups_as_the_writer():
    now = timezone.now()
    request_log.write([_record(now - timedelta(hours=h), latency=10.0 * h) for h in range(50)])
    written = _rollups()

    assert rollup_rebuild() == 50
    assert _rollups() == written


def test_prune_drops_rollups_of_periods_past_the_retention():
    now = timezone.now()
    request_log.write(
        [_record(now - timedelta(days=40)), _record(now - timedelta(days=10)), _record(now)]
    )
    deleted, cutoff = prune_requests(days=30)

    assert deleted == 1
    assert not UsageRollup.objects.filter(start__lt=cutoff - timedelta(days=1)).exists()
    assert sum(UsageRollup.objects.filter(period="h").values_list("requests", flat=True)) == 2
    assert sum(UsageRollup.objects.filter(period="d").values_list("requests", flat=True)) == 2


def test_a_failed_batch_leaves_neither_records_nor_rollups(monkeypatch):
    def broken(**_):
        raise RuntimeError("disk full")

    monkeypatch.setattr("usage.services.rollup_add", broken)
    with pytest.raises(RuntimeError):
        request_log.write([_record(timezone.now())])
    # All or nothing: retrying the batch will not count it twice.
    assert not RequestLog.objects.exists() and not UsageRollup.objects.exists()


def test_histograms_are_read_for_the_ten_busiest_models_only(monkeypatch):
    now = timezone.now()
    # Model m0 has 1 successful request, m1 has 2, ... m11 has 12 (and one error each).
    records = []
    for m in range(12):
        records += [_record(now - timedelta(hours=1), model=f"m{m}")] * (m + 1)
        records.append(_record(now - timedelta(hours=1), model=f"m{m}", ok=False))
    request_log.write(records)
    monkeypatch.setattr(selectors, "EXACT_PERCENTILES_UP_TO", 0)

    rows = selectors.latency_by_model(_window("24h"), requests=len(records))

    assert [(r.model, r.requests) for r in rows] == [(f"m{m}", m + 1) for m in range(11, 1, -1)]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"provider": "beta"},
        {"model": "m2"},
        {"token": "web"},
        {"provider": "beta", "token": "web"},
    ],
)
def test_each_filter_reads_a_rollup_that_agrees_with_the_log(filters, monkeypatch):
    now = timezone.now()
    rnd = random.Random(11)
    request_log.write(
        [
            _record(
                now - timedelta(hours=rnd.randrange(1, 100)),
                provider=rnd.choice(["acme", "beta"]),
                model=rnd.choice(["m1", "m2"]),
                token=rnd.choice(["ci-bot", "web"]),
                ok=rnd.random() > 0.1,
                latency=rnd.choice([10.0, 100.0, 1000.0]),
            )
            for _ in range(300)
        ]
    )
    monkeypatch.setattr(selectors, "EXACT_PERCENTILES_UP_TO", 0)  # histograms, always
    w = _window("7d", **filters)
    lookup = {"token_name" if k == "token" else k: v for k, v in filters.items()}
    logged = RequestLog.objects.filter(at__gte=w.since, **lookup)

    totals, _ = selectors.activity(w)
    assert totals.requests == logged.count()
    assert sum(u.requests for u in selectors.usage_by_token(w)) == logged.count()
    served = {(r.provider, r.model): r.requests for r in selectors.latency_by_model(w, requests=1)}
    assert sum(served.values()) == logged.filter(ok=True).count()


@pytest.mark.parametrize("key", ["1h", "7d"])
def test_providers_past_the_sixth_are_summed_into_one_series(key):
    now = timezone.now()
    # p1 has 1 request, p2 has 2, ... p8 has 8: p8..p4 are drawn, p3 + p2 + p1 summed.
    request_log.write(
        [
            _record(now - timedelta(minutes=5), provider=f"p{n}")
            for n in range(1, 9)
            for _ in range(n)
        ]
    )
    totals, series = selectors.activity(_window(key))
    assert [(s.provider, s.requests) for s in series] == [
        ("p8", 8), ("p7", 7), ("p6", 6), ("p5", 5), ("p4", 4), (selectors.OTHER_PROVIDERS, 6)
    ]  # fmt: skip
    assert totals.requests == 36
