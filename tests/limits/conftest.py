"""Fixtures of the limits tests: the gateway (uvicorn, in a thread), a provider on the
recording upstream as the default, and the backend limits are counted in: each test that
takes `backend` runs with the database (SQLite or PostgreSQL, as the run is), then Redis."""

from __future__ import annotations

import os

import openai
import pytest
import redis

from limits import counters, leases
from providers import services
from tests.gateway.test_gateway import gateway  # noqa: F401 - the uvicorn fixture

REDIS_URL = os.environ.get("ROUTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
HI = [{"role": "user", "content": "hi"}]


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, socket_timeout=2)


def forget_redis_counts() -> None:
    r = redis_client()
    for key in r.scan_iter("routing-admin:*"):
        r.delete(key)


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    if request.param == "redis":
        redis_client().ping()  # bin/test starts Redis where it is missing: a failure is real
        forget_redis_counts()
        settings.ROUTING_REDIS_URL = REDIS_URL
    else:
        settings.ROUTING_REDIS_URL = ""
    counters._mark_up()
    with leases._lock:  # leases an earlier test left held are not this test's
        leases._held.clear()
    return request.param


@pytest.fixture
def world(upstream, make_provider):
    """The default model: gpt-4o-mini (priced in LiteLLM's map) on the recording upstream."""
    provider = make_provider(name="pa", base_url=upstream.base_url + "/v1")
    services.default_model_set(provider=provider, model="gpt-4o-mini")
    return upstream


@pytest.fixture
def client(gateway):  # noqa: F811
    def make(raw: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=gateway + "/v1", api_key=raw, max_retries=0, timeout=30)

    return make


def calls_received(upstream) -> int:
    return len([r for r in upstream.requests if r.path.endswith("/chat/completions")])
