"""`routing health-check` and `routing provider test --all`, against test servers on
127.0.0.1 that answer, fail and hang."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from providers.models import AuditEvent, ProbeResult, Provider
from providers.services.connection import TIMED_OUT
from tests.conftest import SECRET, shared_database_url

ROOT = Path(__file__).resolve().parents[2]


def routing(*args: str) -> str:
    out = io.StringIO()
    call_command("routing", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def three(upstream_factory, make_provider):
    """Providers that answer, fail (HTTP 500, with the key in the body) and hang."""
    good, bad, hanging = upstream_factory("good"), upstream_factory("bad"), upstream_factory("h")
    bad.fail_next(500, {"error": {"message": f"boom {SECRET}"}}, times=20)
    hanging.hang(5)
    make_provider(name="good", base_url=good.base_url + "/v1")
    make_provider(name="bad", base_url=bad.base_url + "/v1")
    make_provider(name="hangs", base_url=hanging.base_url + "/v1", timeout=0.5)
    make_provider(name="off", base_url=bad.base_url + "/v1", enabled=False)
    return good, bad, hanging


def test_health_check_exits_0_when_every_provider_answers(make_provider, upstream):
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    make_provider(name="b", base_url=upstream.base_url + "/v1")
    out = routing("health-check")
    lines = out.strip().splitlines()
    assert lines[-1] == "All 2 enabled providers answered."
    assert sorted(line.split(":")[0] for line in lines[:-1]) == ["a", "b"]
    assert all(": ok, " in line and " ms" in line for line in lines[:-1])
    assert ProbeResult.objects.filter(source="health-check").count() == 2


def test_health_check_reports_each_provider_and_exits_1_on_any_failure(three):
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with pytest.raises(CommandError) as raised:
        call_command("routing", "health-check", stdout=out, stderr=err)
    assert time.monotonic() - started < 3
    assert raised.value.returncode == 1
    assert str(raised.value) == "2 of 3 failed: bad, hangs."
    lines = out.getvalue().strip().splitlines()
    by_name = {line.split(":")[0]: line for line in lines}
    assert set(by_name) == {"good", "bad", "hangs"}  # the disabled one is not tested
    assert by_name["good"].startswith("good: ok, ")
    assert by_name["bad"].startswith("bad: FAILED, HTTP 500") and "(1 in a row)" in by_name["bad"]
    assert TIMED_OUT.format(timeout=0.5) in by_name["hangs"]
    # The hanging provider never held up the others: its line comes last.
    assert lines[-1].startswith("hangs:")
    assert SECRET not in out.getvalue() + err.getvalue() + str(raised.value)
    assert Provider.objects.get(name="bad").last_test_ok is False


def test_health_check_marks_unhealthy_after_n_failures_audited_as_health_check(
    make_provider, upstream, settings
):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 2
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    upstream.fail_next(502, times=2)
    with pytest.raises(CommandError):
        routing("health-check")
    assert Provider.objects.get().unhealthy_since is None
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("routing", "health-check", stdout=out)
    assert "(2 in a row, unhealthy) [now unhealthy]" in out.getvalue()
    event = AuditEvent.objects.get(action="provider.unhealthy")
    assert event.actor_name == "health-check" and event.target == "a"

    assert "[now healthy]" in routing("health-check")
    assert AuditEvent.objects.get(action="provider.healthy").actor_name == "health-check"
    assert Provider.objects.get().unhealthy_since is None
    assert list(ProbeResult.objects.order_by("at", "id").values_list("ok", flat=True)) == [
        False,
        False,
        True,
    ]


def test_health_check_with_no_enabled_provider_exits_0(db):
    assert routing("health-check").strip() == "No enabled providers to test."


def test_provider_test_all_prints_progress_and_exits_1_on_failure(three):
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("routing", "provider", "test", "--all", "--concurrency", "2", stdout=out)
    assert raised.value.returncode == 1
    lines = out.getvalue().strip().splitlines()
    assert [line[:5] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    assert lines[-1].startswith("[3/3] hangs: FAILED")
    assert ProbeResult.objects.filter(source__startswith="cli:").count() == 3


def test_provider_test_all_exits_0_when_all_answer(make_provider, upstream):
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    out = routing("provider", "test", "--all")
    assert out.splitlines()[0].startswith("[1/1] a: ok, ")
    assert out.splitlines()[-1] == "All 1 enabled providers answered."


@pytest.mark.parametrize("args", [[], ["a", "--all"]])
def test_provider_test_needs_a_name_or_all_but_not_both(make_provider, args):
    make_provider(name="a")
    with pytest.raises(CommandError, match="--all"):
        routing("provider", "test", *args)


def test_concurrency_must_be_positive(make_provider):
    make_provider(name="a")
    with pytest.raises(CommandError, match="--concurrency"):
        routing("health-check", "--concurrency", "0")


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_0_then_1(make_provider, upstream):
    from django.conf import settings as dj

    make_provider(name="a", base_url=upstream.base_url + "/v1")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "DATABASE_URL": shared_database_url(),
        # Test keys pass the production checks only on a loopback deployment, like bin/run.
        "ROUTING_HTTPS_REDIRECT": "0",
    }

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "routing", "health-check"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )

    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0].startswith("a: ok, ")
    upstream.fail_next(500, {"error": {"message": f"no {SECRET}"}})
    failed = run()
    assert failed.returncode == 1
    assert failed.stdout.startswith("a: FAILED, HTTP 500")
    assert failed.stderr.strip().splitlines() == ["CommandError: 1 of 1 failed: a."]
    assert SECRET not in failed.stdout + failed.stderr
