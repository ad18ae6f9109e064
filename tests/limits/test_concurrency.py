"""Concurrent requests: N calls in flight at once, the next one refused, and the slots free
again when calls end, fail, or are abandoned by their caller, and when the worker holding
them dies (a lease nobody renews runs out). In the database and in Redis."""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta

import openai
import pytest
from django.utils import timezone

from gateway.services import token_create
from limits import counters, leases
from limits.models import LimitLease
from limits.rules import Limits
from tests.limits.conftest import HI, calls_received, redis_client
from usage import request_log
from usage.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_call_past_max_parallel_is_refused_until_one_ends(world, backend, client):
    release = world.hold_stream(after=2)  # streams send their first chunks, then wait
    _, raw = token_create(name="ci", max_parallel=2, actor="test")
    c = client(raw)
    streams = [
        c.chat.completions.create(model="default", messages=HI, stream=True) for _ in range(2)
    ]
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="default", messages=HI)
    error = refused.value.body
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "token 'ci' may make 2 concurrent requests, and 2 are in flight" in error["message"]
    assert refused.value.response.headers["retry-after"] == "1"
    assert calls_received(world) == 2
    release.set()
    for stream in streams:
        assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    # A stream's slot is freed before its last event is sent: no wait here.
    for _ in range(2):
        c.chat.completions.create(model="default", messages=HI)
    request_log.flush()
    assert "2 concurrent requests" in RequestLog.objects.get(status=429).error


def test_a_failed_call_frees_its_slot(world, backend, client):
    _, raw = token_create(name="ci", max_parallel=1, actor="test")
    c = client(raw)
    world.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.NotFoundError):  # refused before any provider is asked
        c.chat.completions.create(model="no-such-provider/x", messages=HI)
    c.chat.completions.create(model="default", messages=HI)


def test_a_stream_its_caller_abandons_frees_its_slot(world, backend, client):
    release = world.hold_stream(after=2)
    _, raw = token_create(name="ci", max_parallel=1, actor="test")
    c = client(raw)
    settled = counters.settled_count()
    stream = c.chat.completions.create(model="default", messages=HI, stream=True)
    next(iter(stream))
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="default", messages=HI)
    stream.close()  # the caller goes away while the provider is still answering
    assert counters.wait_settled(settled + 1), "the abandoned stream was never settled"
    c.chat.completions.create(model="default", messages=HI)
    release.set()
    request_log.flush()
    abandoned = RequestLog.objects.get(status=499)
    assert abandoned.token_name == "ci" and "estimated" in abandoned.error


def _expire(backend: str, lease: str) -> None:
    """What time would do to a lease nobody renews: its end passes."""
    if backend == "redis":
        r = redis_client()
        for key in r.scan_iter("routing-admin:*:slots"):
            if r.zscore(key, lease) is not None:
                r.zadd(key, {lease: 0})
    else:
        past = timezone.now() - timedelta(seconds=1)
        LimitLease.objects.filter(lease=lease).update(expires_at=past)


def test_a_dead_workers_slots_free_themselves_when_their_lease_runs_out(backend):
    subject = [counters.Subject("token", "ci", Limits(max_parallel=1))]
    ticket = asyncio.run(counters.before(subject))
    assert ticket.allowed and ticket.lease
    # The worker dies: nothing renews its lease, nothing releases it.
    ticket._finalizer.detach()
    leases.drop(ticket.lease)
    assert not asyncio.run(counters.before(subject)).allowed
    _expire(backend, ticket.lease)
    assert asyncio.run(counters.before(subject)).allowed


def test_a_live_workers_leases_are_renewed(backend):
    subject = [counters.Subject("token", "ci", Limits(max_parallel=1))]
    ticket = asyncio.run(counters.before(subject))
    _expire(backend, ticket.lease)
    leases.keep_round()  # what the keeper thread does every RENEW_SECONDS
    assert not asyncio.run(counters.before(subject)).allowed
    asyncio.run(ticket.settle(None))
    assert asyncio.run(counters.before(subject)).allowed


def test_a_ticket_dropped_unsettled_frees_its_slot(backend):
    """A streamed answer whose body is never read settles nothing: its ticket, collected
    with the response, hands its lease to the keeper."""
    subject = [counters.Subject("token", "ci", Limits(max_parallel=1))]
    ticket = asyncio.run(counters.before(subject))
    assert leases.held() == 1
    del ticket
    gc.collect()
    assert leases.held() == 0  # handed to the keeper, which releases it at its next round
    leases.keep_round()
    assert asyncio.run(counters.before(subject)).allowed
