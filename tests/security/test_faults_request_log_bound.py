"""The request-log queue is bounded (issue 12): through a long database outage under load,
a process keeps at most ROUTING_REQUEST_LOG_MAX_PENDING records in memory, counts the ones
it cannot keep, reports them on /healthz (`request_log.dropped`), and writes what it kept
once the database is back. The writer's rounds are run by the test, one at a time, so
nothing waits on a clock."""

import logging
import tracemalloc

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from providers import services
from usage import request_log
from usage.models import RequestLog

HI = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.django_db(transaction=True)


def _refuse_queries(execute, sql, params, many, context):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


def _healthz(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.json()["request_log"]


def _call() -> None:
    services.completion(HI, model="pa/gpt-4o-mini")


def test_an_outage_under_load_keeps_the_bound_counts_the_rest_and_recovers(
    client, settings, make_provider, upstream, caplog
):
    settings.ROUTING_REQUEST_LOG_MAX_PENDING = 5
    make_provider(name="pa", base_url=upstream.base_url + "/v1")
    before = request_log.status()
    for _ in range(3):
        _call()
    caplog.set_level(logging.WARNING, logger="usage.request_log")

    with connection.execute_wrapper(_refuse_queries):
        request_log.write_round()  # the writer's try fails: the batch stays queued
        assert request_log.status()["pending"] == 3
        for _ in range(7):  # calls keep being served while the log cannot be written
            _call()
        request_log.write_round()
        request_log.write_round()
        during = request_log.status()
    assert during["pending"] == 5
    assert during["dropped"] - before["dropped"] == 5
    assert during["failed_writes"] - before["failed_writes"] == 3
    assert len(upstream.requests) == 10
    full = [r for r in caplog.records if "request-log queue is full" in r.getMessage()]
    assert len(full) == 1  # once per outage, not once per record

    request_log.write_round()  # the database is back
    status, reported = _healthz(client)
    assert status == 200
    assert reported["pending"] == 0
    assert reported["dropped"] - before["dropped"] == 5
    # Kept and written: the five that found room, none twice despite three failed rounds.
    assert RequestLog.objects.filter(ok=True, provider="pa").count() == 5


def test_healthz_reports_dropped_records_while_the_database_is_away(client, settings):
    settings.ROUTING_REQUEST_LOG_MAX_PENDING = 2
    before = request_log.status()["dropped"]
    for _ in range(5):
        request_log.record(**_record())
    with connection.execute_wrapper(_refuse_queries):
        status, reported = _healthz(client)
    assert status == 503
    assert (reported["pending"], reported["dropped"] - before) == (2, 3)


def _record() -> dict:
    return {
        "at": timezone.now(),
        "requested_model": "default",
        "provider": "pa",
        "model": "gpt-4o-mini",
        "fallbacks": [],
        "ok": True,
        "status": 200,
        "error": "",
        "latency_ms": 12.5,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "litellm_model": "openai/gpt-4o-mini",
        "stream": False,
    }


def test_memory_stays_flat_once_the_queue_is_full(settings):
    settings.ROUTING_REQUEST_LOG_MAX_PENDING = 1000
    before = request_log.status()["dropped"]
    for _ in range(1000):
        request_log.record(**_record())
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        for _ in range(20_000):
            request_log.record(**_record())
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
    finally:
        tracemalloc.stop()
    assert request_log.status()["pending"] == 1000
    assert request_log.status()["dropped"] - before == 20_000
    # 20,000 records kept would be megabytes; a dropped one leaves nothing behind.
    assert grown < 64 * 1024, grown
