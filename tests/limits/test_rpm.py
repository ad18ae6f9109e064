"""Requests-per-minute limits of tokens and teams, through the real gateway with the official
`openai` client, counted in the database (no Redis) and in Redis; exact under concurrency;
and what happens while Redis does not answer."""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import openai
import pytest
import redis

from accounts import services as account_services
from gateway.services import token_create, token_limits_set
from limits import counters
from limits.models import LimitHit
from limits.rules import Limits
from tests.gateway.test_gateway import gateway  # noqa: F401 - the uvicorn fixture
from tests.limits.conftest import HI, REDIS_URL
from usage import request_log
from usage.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True)


def _client(gateway, raw):  # noqa: F811
    return openai.OpenAI(base_url=gateway + "/v1", api_key=raw, max_retries=0, timeout=30)


def test_a_token_gets_exactly_its_rpm_then_429_in_openais_shape(gateway, world, backend):  # noqa: F811
    _, raw = token_create(name="ci", rpm=3, actor="test")
    client = _client(gateway, raw)
    remaining = []
    for _ in range(3):
        answer = client.chat.completions.with_raw_response.create(model="default", messages=HI)
        assert answer.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(answer.headers["x-ratelimit-remaining-requests"])
        assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="default", messages=HI)
    error = refused.value.body
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "token 'ci' may make 3 requests per minute" in error["message"]
    response = refused.value.response
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    # The refused call never reached the provider, and the request log says why.
    assert len([r for r in world.requests if r.path.endswith("/chat/completions")]) == 3
    request_log.flush()
    refused_row = RequestLog.objects.get(status=429)
    assert refused_row.token_name == "ci" and "3 requests per minute" in refused_row.error


def test_a_teams_rpm_holds_for_all_its_tokens_together(gateway, world, backend):  # noqa: F811
    team = account_services.team_create(name="red", actor="test")
    account_services.team_update(team=team, rpm=2, actor="test")
    _, one = token_create(name="one", team=team, actor="test")
    _, two = token_create(name="two", team=team, rpm=10, actor="test")
    _client(gateway, one).chat.completions.create(model="default", messages=HI)
    answer = _client(gateway, two).chat.completions.with_raw_response.create(
        model="default", messages=HI
    )
    # The team's limit is the tighter one: it is the one the headers describe.
    assert answer.headers["x-ratelimit-limit-requests"] == "2"
    assert answer.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as refused:
        _client(gateway, one).chat.completions.create(model="default", messages=HI)
    assert "team 'red' may make 2 requests per minute" in refused.value.body["message"]


def test_a_token_without_limits_gets_no_rate_headers_and_counts_nothing(gateway, world, backend):  # noqa: F811, E501
    _, raw = token_create(name="free", actor="test")
    answer = _client(gateway, raw).chat.completions.with_raw_response.create(
        model="default", messages=HI
    )
    assert "x-ratelimit-limit-requests" not in answer.headers
    assert not LimitHit.objects.exists()


def test_a_limit_set_later_applies_at_the_next_call(gateway, world, backend):  # noqa: F811
    token, raw = token_create(name="ci", actor="test")
    client = _client(gateway, raw)
    client.chat.completions.create(model="default", messages=HI)
    token_limits_set(token=token, rpm=1, actor="test")
    client.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="default", messages=HI)
    token_limits_set(token=token, rpm=None, actor="test")
    client.chat.completions.create(model="default", messages=HI)


def test_concurrent_callers_get_exactly_the_limit(backend):
    """Many callers at once on one limit: exactly `rpm` pass, in the database (threads, each
    its own connection) as in Redis (one event loop, many calls in flight)."""
    limit = [counters.Subject("token", "burst", Limits(rpm=25))]
    if backend == "redis":

        async def burst() -> list:
            return await asyncio.gather(*(counters.before(limit) for _ in range(60)))

        verdicts = asyncio.run(burst())
    else:
        verdicts, lock = [], threading.Lock()

        def caller() -> None:
            for _ in range(15):
                verdict = asyncio.run(counters.before(limit))
                with lock:
                    verdicts.append(verdict)

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sum(v.allowed for v in verdicts) == 25
    assert len(verdicts) == 60
    refused = [v for v in verdicts if not v.allowed]
    assert all(0 < v.refused.reset_seconds <= counters.WINDOW_SECONDS for v in refused)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_while_redis_does_not_answer_the_failure_mode_decides(gateway, world, settings, mode):  # noqa: F811, E501
    settings.ROUTING_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.ROUTING_LIMITS_ON_REDIS_FAILURE = mode
    counters._mark_up()
    _, raw = token_create(name="ci", rpm=1, actor="test")
    client = _client(gateway, raw)
    if mode == "open":
        for _ in range(3):  # over the limit, uncounted: let through
            client.chat.completions.create(model="default", messages=HI)
    else:
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="default", messages=HI)
        assert refused.value.body["code"] == "limits_unavailable"
    health = httpx.get(gateway + "/healthz").json()
    assert health["status"] == "degraded"
    assert health["limits"]["backend"] == "redis" and health["limits"]["state"] == "degraded"
    assert "does not answer" in health["limits"]["reason"]
    # No password or address of Redis is repeated on /healthz.
    assert "127.0.0.1" not in health["limits"]["reason"]


def test_counting_resumes_when_redis_answers_again(gateway, world, settings):  # noqa: F811
    settings.ROUTING_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.ROUTING_LIMITS_ON_REDIS_FAILURE = "open"
    counters._mark_up()
    _, raw = token_create(name="ci", rpm=1, actor="test")
    client = _client(gateway, raw)
    client.chat.completions.create(model="default", messages=HI)
    assert httpx.get(gateway + "/healthz").json()["status"] == "degraded"
    # Redis is back (here: the real one), after the pause: /healthz tries it and says so.
    r = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    for key in r.scan_iter("routing-admin:*"):
        r.delete(key)
    settings.ROUTING_REDIS_URL = REDIS_URL
    counters._mark_up()
    assert httpx.get(gateway + "/healthz").json()["limits"] == {"backend": "redis", "state": "ok"}
    client.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="default", messages=HI)


def test_healthz_names_the_database_backend_without_redis(gateway, world, settings):  # noqa: F811
    settings.ROUTING_REDIS_URL = ""
    health = httpx.get(gateway + "/healthz").json()
    assert health["status"] == "ok"
    assert health["limits"] == {"backend": "database", "state": "ok"}


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_cli_refuses_a_bad_rpm(value):
    from django.core.management import CommandError, call_command

    with pytest.raises((CommandError, SystemExit)):
        call_command("routing", "token", "create", "ci", "--rpm", value)
