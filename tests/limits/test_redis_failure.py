"""Redis going away and coming back: no call hangs on it, the failure mode decides meanwhile,
and counting is exact again once it answers, budgets included (Redis is not the ledger: a
budget it lost is seeded again from the database)."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import httpx
import openai
import pytest

from gateway.services import token_create
from limits import counters
from limits.rules import Budget
from tests.limits.conftest import HI, REDIS_URL, forget_redis_counts, redis_client
from tests.limits.test_budget import WORDS, _price_of_one_call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def priced(world):
    world.reply_text = " ".join(["word"] * WORDS)
    return world


@pytest.fixture
def on_redis(settings):
    redis_client().ping()
    forget_redis_counts()
    settings.ROUTING_REDIS_URL = REDIS_URL
    counters._mark_up()
    return settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_budget_redis_lost_is_seeded_again_from_the_ledger(priced, on_redis, client):
    _, raw = token_create(name="ci", budget=Budget(Decimal("0.0003"), "month"), actor="test")
    c = client(raw)
    assert 2 * _price_of_one_call() < 0.0003 <= 3 * _price_of_one_call()
    c.chat.completions.create(model="default", messages=HI)
    redis_client().flushdb()  # Redis restarted without its data
    c.chat.completions.create(model="default", messages=HI)
    redis_client().flushdb()
    c.chat.completions.create(model="default", messages=HI)
    # Three calls, as if Redis had never left: the third ended over the budget.
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="default", messages=HI)
    assert refused.value.body["code"] == "budget_exceeded"


def test_calls_let_through_while_redis_was_down_count_on_the_budget_after(priced, on_redis, client):
    _, raw = token_create(name="ci", budget=Budget(Decimal("0.0003"), "month"), actor="test")
    c = client(raw)
    c.chat.completions.create(model="default", messages=HI)
    on_redis.ROUTING_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    on_redis.ROUTING_LIMITS_ON_REDIS_FAILURE = "open"
    c.chat.completions.create(model="default", messages=HI)  # uncounted in Redis, logged
    # Redis is back, empty (it restarted): the ledger knows both calls.
    forget_redis_counts()
    on_redis.ROUTING_REDIS_URL = REDIS_URL
    counters._mark_up()
    c.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="default", messages=HI)


def test_every_limit_counts_again_when_redis_is_back(world, on_redis, client, gateway):
    _, raw = token_create(name="ci", rpm=2, max_parallel=1, actor="test")
    c = client(raw)
    c.chat.completions.create(model="default", messages=HI)
    on_redis.ROUTING_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    on_redis.ROUTING_LIMITS_ON_REDIS_FAILURE = "open"
    for _ in range(3):  # over the limit, uncounted: let through
        c.chat.completions.create(model="default", messages=HI)
    assert httpx.get(gateway + "/healthz").json()["status"] == "degraded"
    forget_redis_counts()
    on_redis.ROUTING_REDIS_URL = REDIS_URL
    counters._mark_up()
    assert httpx.get(gateway + "/healthz").json()["limits"] == {"backend": "redis", "state": "ok"}
    for _ in range(2):
        c.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="default", messages=HI)
    assert "2 requests per minute" in refused.value.body["message"]


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_redis_that_hangs_holds_no_call_for_long(world, settings, client, mode):
    """A socket that accepts and never answers: each limited call waits one short timeout
    at most, then the failure mode answers (and, for a couple of seconds, at once)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        settings.ROUTING_REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.ROUTING_LIMITS_ON_REDIS_FAILURE = mode
        counters._mark_up()
        _, raw = token_create(name="ci", rpm=1, tpm=10, max_parallel=1, actor="test")
        c = client(raw)
        started = time.monotonic()
        for _ in range(3):
            if mode == "open":
                c.chat.completions.create(model="default", messages=HI)
            else:
                with pytest.raises(openai.RateLimitError) as refused:
                    c.chat.completions.create(model="default", messages=HI)
                assert refused.value.body["code"] == "limits_unavailable"
        # One timeout (0.5 s), not three, and nowhere near redis-py's default 5 s.
        assert time.monotonic() - started < 4 * counters.REDIS_TIMEOUT_SECONDS + 2
