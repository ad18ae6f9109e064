"""limits.selectors: what a token or a team used of its limits, read from the request log
and its daily roll-up; the budget's calendar periods; the refusals; the words of a bar."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from limits import selectors
from limits.rules import Budget, Limits
from usage import request_log

pytestmark = pytest.mark.django_db

# A Wednesday: its week began on Monday 30 November, in the month before.
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _log(token: str, at: datetime, **fields) -> None:
    item = {
        "at": at,
        "token_name": token,
        "requested_model": "fast",
        "provider": "acme",
        "model": "m",
        "ok": True,
        "status": 200,
        "latency_ms": 5.0,
        "prompt_tokens": 7,
        "completion_tokens": 3,
        **fields,
    }
    request_log.write([item])


@pytest.fixture
def spending():
    for at, cost in (
        (NOW - timedelta(hours=1), 1.0),  # today
        (datetime(2026, 12, 1, 9, tzinfo=UTC), 8.0),  # this week and this month
        (datetime(2026, 11, 30, 0, tzinfo=UTC), 2.0),  # this week, last month
        (datetime(2026, 11, 29, 23, 59, tzinfo=UTC), 4.0),  # last week
        (datetime(2026, 10, 3, tzinfo=UTC), 16.0),  # only in total
    ):
        _log("bot", at, cost=cost)
    _log("other", NOW - timedelta(hours=1), cost=100.0)


@pytest.mark.parametrize(
    ("period", "spent", "end"),
    [
        ("day", 1.0, datetime(2026, 12, 3, tzinfo=UTC)),
        ("week", 11.0, datetime(2026, 12, 7, tzinfo=UTC)),
        ("month", 9.0, datetime(2027, 1, 1, tzinfo=UTC)),
        ("total", 31.0, None),
    ],
)
def test_the_spend_is_the_budgets_calendar_period_in_utc(spending, period, spent, end):
    limits = Limits(budget=Budget(Decimal("40"), period))
    use = selectors.read(["bot"], now=NOW).use(limits, ["bot"])
    assert use.spent == pytest.approx(spent)
    assert use.period_end == end
    (gauge,) = use.gauges
    assert (gauge.used, gauge.limit, gauge.resets_at) == (pytest.approx(spent), 40.0, end)


def test_a_teams_use_is_the_sum_of_its_tokens(spending):
    _log("bot", NOW - timedelta(seconds=10))
    _log("other", NOW - timedelta(seconds=20))
    _log("bot", NOW - timedelta(seconds=90))  # before the last minute
    reads = selectors.read(["bot", "other"], now=NOW)
    use = reads.use(Limits(rpm=10, tpm=100, budget=Budget(Decimal(200), "day")), ["bot", "other"])
    assert (use.requests, use.tokens) == (2, 20)
    assert use.spent == pytest.approx(101.0)


def test_refused_calls_are_not_use_and_a_providers_429_is_no_refusal(db):
    now = datetime.now(UTC)
    refused = {"provider": "", "model": "", "ok": False, "status": 429, "error": "over"}
    _log("bot", now - timedelta(seconds=5), prompt_tokens=None, completion_tokens=None, **refused)
    _log("bot", now - timedelta(seconds=5), ok=False, status=429, error="provider's")
    use = selectors.use_of(Limits(rpm=5), ["bot"])
    assert use.requests == 1  # the provider's 429 was a call
    assert [(r.reason, r.model, r.token) for r in use.refused] == [("over", "fast", "bot")]
    assert use.refused_count == 1


def test_no_names_reads_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        use = selectors.use_of(Limits(rpm=5), [])
    assert (use.requests, use.refused) == (0, [])


def test_a_bar_in_words():
    gauge = selectors.Gauge("rpm", "Requests per minute", 75, 60, "requests", "in the last minute")
    assert gauge.text == "75 of 60 requests in the last minute (125%), limit reached"
    assert (gauge.value_attr, gauge.max_attr, gauge.high) == ("60", "60", "48")
    assert gauge.compact_text == "75/60 requests a minute"
    money = selectors.Gauge("budget", "Budget", 0.0123, 50, "USD", "this month")
    assert money.text == "$0.0123 of $50.00 this month (0%)"
    assert not money.reached and money.value_attr == "0.0123"


def test_no_limits_no_bars():
    assert selectors.Use(limits=Limits()).gauges == []
    # Concurrency is the gateway's to count (calls in flight are not logged): no bar.
    assert selectors.Use(limits=Limits(max_parallel=3)).gauges == []
