import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from providers import services
from providers.routing import live
from providers.services import DeploymentSpec as D
from providers.services import calls
from tests.conftest import SECRET, shared_database_url
from usage import request_log
from usage.models import RequestLog

HI = [{"role": "user", "content": "a secret prompt"}]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def servers(upstream_factory, make_provider):
    a, b = upstream_factory("a"), upstream_factory("b")
    a.reply_text = "a private answer"
    make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    return a, b


def _rows():
    request_log.flush()
    return list(RequestLog.objects.order_by("id"))


def test_a_call_is_logged_without_prompt_answer_or_key(servers):
    services.completion(HI, model="pa/gpt-4o-mini")
    [row] = _rows()
    assert (row.provider, row.model, row.requested_model) == ("pa", "gpt-4o-mini", "pa/gpt-4o-mini")
    assert row.ok and row.status == 200 and row.token_name == "in-process"
    assert row.latency_ms > 0 and row.prompt_tokens and row.completion_tokens
    stored = repr(RequestLog.objects.values().get())
    for secret in ("a secret prompt", "a private answer", SECRET):
        assert secret not in stored


def test_a_failure_is_logged_with_its_status(servers):
    a, _ = servers
    a.fail_next(503, times=3)
    with pytest.raises(services.ProviderError):
        services.completion(HI, model="pa/m")
    [row] = _rows()
    assert not row.ok and row.status == 503 and "pa" in row.error


def test_group_call_logs_the_answering_deployment_and_fallback(servers):
    a, _ = servers
    a.fail_next(500, times=20)
    services.group_save(name="fast", deployments=[D("pb", "small")])
    services.group_save(name="quality", deployments=[D("pa", "big")], fallbacks=["fast"])
    services.completion(HI, model="quality")
    [row] = _rows()
    assert (row.requested_model, row.provider, row.model, row.fallbacks) == (
        "quality",
        "pb",
        "small",
        1,
    )


def test_a_stream_is_logged_when_it_ends(servers):
    stream = services.completion(HI, model="pa/m", stream=True)
    assert _rows() == []
    list(stream)
    [row] = _rows()
    assert row.stream and row.ok


def test_a_stream_through_a_group_logs_the_deployment_that_answered(servers):
    a, b = servers
    b.reply_text = "from B"
    a.fail_next(500, times=20)
    services.group_save(name="fast", deployments=[D("pb", "small")])
    services.group_save(name="quality", deployments=[D("pa", "big")], fallbacks=["fast"])
    stream = services.completion(HI, model="quality", stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "from B" and b.last.json()["model"] == "small"
    assert services.answered_by(stream) == "pb/small"
    [row] = _rows()
    assert (row.requested_model, row.provider, row.model, row.fallbacks, row.stream) == (
        "quality",
        "pb",
        "small",
        1,
        True,
    )
    assert row.ok


# Committed: the async call reads the configuration from a connection of its own, which on
# PostgreSQL cannot see the test's open transaction (it passed only after another test).
@pytest.mark.django_db(transaction=True)
def test_an_async_stream_through_a_group_logs_its_deployment(servers):
    import asyncio

    services.group_save(name="fast", deployments=[D("pa", "small")])

    async def read_all():
        stream = await services.acompletion(HI, model="fast", stream=True)
        return [chunk async for chunk in stream]

    live.snapshot()
    assert asyncio.run(read_all())
    [row] = _rows()
    assert (row.provider, row.model, row.fallbacks, row.stream, row.ok) == (
        "pa",
        "small",
        0,
        True,
        True,
    )


def test_a_stream_the_caller_abandons_is_logged_too(servers):
    stream = iter(services.completion(HI, model="pa/m", stream=True))
    next(stream), next(stream)  # the role, then the first words
    stream.close()  # the caller stops reading there
    [row] = _rows()
    assert row.stream and not row.ok and row.status == 499
    # No usage came: the tokens are estimated (the prompt, and what was received), and the
    # record says so.
    assert row.error == calls.STREAM_ABANDONED_ESTIMATED
    assert row.prompt_tokens > 0 and row.completion_tokens > 0


@pytest.mark.django_db(transaction=True)  # as the async stream above
def test_an_async_stream_cancelled_midway_is_logged(servers):
    import asyncio

    async def read_one_then_leave():
        stream = await services.acompletion(HI, model="pa/m", stream=True)
        chunks = aiter(stream)
        await anext(chunks)
        await chunks.aclose()

    live.snapshot()  # loaded here, in the test's transaction, not on the event loop's thread
    asyncio.run(read_one_then_leave())
    [row] = _rows()
    assert row.stream and row.status == 499


@pytest.mark.django_db(transaction=True)
def test_background_writer_writes_without_being_asked(servers, settings):
    settings.ROUTING_REQUEST_LOG_BACKGROUND = True
    services.completion(HI, model="pa/m")
    deadline = time.monotonic() + 10
    while not RequestLog.objects.exists():
        assert time.monotonic() < deadline, "the writer thread never wrote the record"
        time.sleep(0.05)
    assert RequestLog.objects.get().provider == "pa"
    # And it can be stopped: no writer thread is left holding a database connection.
    request_log.stop()
    assert not any(t.name == "request-log-writer" for t in threading.enumerate())


@pytest.mark.django_db(transaction=True)
def test_records_queued_at_a_normal_exit_are_not_lost():
    url = shared_database_url()
    from django.conf import settings as dj

    script = (
        "import django; django.setup()\n"
        "from django.utils import timezone\n"
        "from usage import request_log\n"
        "for i in range(50):\n"
        "    request_log.record(at=timezone.now(), requested_model='m', ok=True, latency_ms=1.0)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": url,
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
    }
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=120)
    assert RequestLog.objects.count() == 50
