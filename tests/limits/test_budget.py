"""Budgets in US dollars per period, a hard stop: priced from LiteLLM's price map
(gpt-4o-mini here), counted after each call, checked before the next; the period's turn
(by its arithmetic, not by waiting); a total budget; a team's against a token's; a budget
set after the spending; models without a price. In the database and in Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openai
import pytest

from accounts import services as account_services
from gateway.services import token_create, token_limits_set
from limits import counters
from limits.models import Spend
from limits.rules import Budget, period_bounds
from providers.routing.llm import litellm
from tests.limits.conftest import HI, calls_received
from usage import request_log
from usage.models import RequestLog

# Every test twice: relayed without LiteLLM, and through LiteLLM (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]
WORDS = 200


def _price_of_one_call() -> float:
    """What LiteLLM's price map says one answer of the upstream costs (7 + 200 tokens)."""
    prompt, completion = litellm().cost_per_token(
        model="openai/gpt-4o-mini", prompt_tokens=7, completion_tokens=WORDS
    )
    return prompt + completion


@pytest.fixture
def priced(world):
    world.reply_text = " ".join(["word"] * WORDS)
    return world


def _spent(n: int) -> str:
    return f"${n * _price_of_one_call():.6f}".rstrip("0")


def test_a_budget_stops_calls_once_the_period_spent_it(priced, backend, client):
    one = _price_of_one_call()
    # Room for two calls: the second starts under the budget and ends over it.
    _, raw = token_create(name="ci", budget=Budget(Decimal("0.0002"), "day"), actor="test")
    c = client(raw)
    assert one * 1 < 0.0002 <= one * 2
    for _ in range(2):
        c.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="default", messages=HI)
    error, headers = refused.value.body, refused.value.response.headers
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    _, midnight = period_bounds("day", datetime.now(UTC))
    assert (
        f"Budget exceeded: token 'ci' has spent {_spent(2)} of its budget of $0.0002 per day. "
        f"It resets at {midnight:%Y-%m-%d %H:%M} UTC" in error["message"]
    )
    seconds = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(int(headers["retry-after"]) - seconds) <= 5
    assert headers["x-should-retry"] == "false"  # the SDK would retry in vain
    assert calls_received(priced) == 2
    request_log.flush()
    assert "Budget exceeded" in RequestLog.objects.get(status=429).error
    # The ledger holds what was spent, priced as LiteLLM prices it.
    assert Spend.objects.get(key="token:ci").nanousd == pytest.approx(2 * one * 1e9, abs=2)


def test_the_periods_turn_resets_a_budget(priced, backend, client, monkeypatch):
    _, raw = token_create(name="ci", budget=Budget(Decimal("0.0001"), "day"), actor="test")
    c = client(raw)
    c.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="default", messages=HI)
    # Tomorrow (UTC): a new period, nothing spent in it yet.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    monkeypatch.setattr(counters, "now", lambda: tomorrow)
    c.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="default", messages=HI)


def test_a_weekly_budget_counts_the_weeks_days_and_only_those(priced, backend, client):
    """Spent on Sunday is last week's; spent on Monday is this week's (weeks start on Monday)."""
    _, raw = token_create(name="ci", budget=Budget(Decimal("0.0001"), "week"), actor="test")
    start, _ = period_bounds("week", datetime.now(UTC))
    Spend.objects.create(key="token:ci", day=(start - timedelta(days=1)).date(), nanousd=10**9)
    client(raw).chat.completions.create(model="default", messages=HI)  # last week's: no matter
    with pytest.raises(openai.RateLimitError):
        client(raw).chat.completions.create(model="default", messages=HI)


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        ("day", _utc(2026, 12, 31, 23, 59), _utc(2026, 12, 31), _utc(2027, 1, 1)),
        ("week", _utc(2026, 12, 6, 12), _utc(2026, 11, 30), _utc(2026, 12, 7)),  # a Sunday
        ("week", _utc(2026, 12, 7), _utc(2026, 12, 7), _utc(2026, 12, 14)),  # a Monday
        ("month", _utc(2026, 12, 15), _utc(2026, 12, 1), _utc(2027, 1, 1)),
        ("month", _utc(2028, 2, 29, 23), _utc(2028, 2, 1), _utc(2028, 3, 1)),
        ("total", _utc(2026, 12, 15), None, None),
    ],
)
def test_budget_periods_are_utc_calendar_periods(period, at, start, end):
    assert period_bounds(period, at) == (start, end)


def test_a_total_budget_never_resets(priced, backend, client, monkeypatch):
    _, raw = token_create(name="ci", budget=Budget(Decimal("0.0001"), "total"), actor="test")
    c = client(raw)
    c.chat.completions.create(model="default", messages=HI)
    monkeypatch.setattr(counters, "now", lambda: datetime.now(UTC) + timedelta(days=400))
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="default", messages=HI)
    assert "of its total budget of $0.0001, which does not reset" in refused.value.body["message"]
    assert "retry-after" not in refused.value.response.headers


def test_a_teams_budget_holds_for_all_its_tokens_together(priced, backend, client):
    team = account_services.team_create(name="red", actor="test")
    account_services.team_update(team=team, budget=Budget(Decimal("0.0002"), "month"), actor="test")
    _, one = token_create(name="one", team=team, actor="test")
    _, two = token_create(name="two", team=team, budget=Budget(Decimal("5"), "day"), actor="test")
    client(one).chat.completions.create(model="default", messages=HI)
    client(two).chat.completions.create(model="default", messages=HI)
    for raw in (one, two):
        with pytest.raises(openai.RateLimitError) as refused:
            client(raw).chat.completions.create(model="default", messages=HI)
        assert "team 'red' has spent" in refused.value.body["message"]
        assert "per month" in refused.value.body["message"]


def test_a_tokens_own_budget_stops_it_before_its_teams(priced, backend, client):
    team = account_services.team_create(name="red", actor="test")
    account_services.team_update(team=team, budget=Budget(Decimal("5"), "month"), actor="test")
    _, one = token_create(
        name="one", team=team, budget=Budget(Decimal("0.0001"), "day"), actor="test"
    )
    _, two = token_create(name="two", team=team, actor="test")
    client(one).chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError) as refused:
        client(one).chat.completions.create(model="default", messages=HI)
    assert "token 'one' has spent" in refused.value.body["message"]
    client(two).chat.completions.create(model="default", messages=HI)  # the team has plenty


def test_a_budget_set_later_counts_what_the_period_spent_already(priced, backend, client):
    token, raw = token_create(name="ci", actor="test")
    c = client(raw)
    for _ in range(2):  # no limits yet: nothing is counted on the call path
        c.chat.completions.create(model="default", messages=HI)
    request_log.flush()  # the request log's writer keeps the ledger for every token
    assert Spend.objects.get(key="token:ci").nanousd > 0
    token_limits_set(token=token, budget=Budget(Decimal("0.0002"), "month"), actor="test")
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="default", messages=HI)
    assert refused.value.body["code"] == "budget_exceeded"


def test_a_budgeted_token_may_not_call_a_model_without_a_price(
    upstream, make_provider, backend, client
):
    """A hard stop cannot be kept where a call's cost cannot be counted: refused up front,
    naming the model. A token without a budget calls it as before."""
    make_provider(name="pa", base_url=upstream.base_url + "/v1")
    _, raw = token_create(name="ci", budget=Budget(Decimal("1"), "day"), actor="test")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client(raw).chat.completions.create(model="pa/upstream-model-a", messages=HI)
    error = refused.value.body
    assert error["code"] == "model_unpriced"
    assert "no price for 'openai/upstream-model-a'" in error["message"]
    assert calls_received(upstream) == 0
    _, free = token_create(name="free", actor="test")
    client(free).chat.completions.create(model="pa/upstream-model-a", messages=HI)
    request_log.flush()
    assert "no price" in RequestLog.objects.get(status=403).error
