"""Scheduled work runs once however many machines' crons start it: `routing health-check`
and `routing prune-requests` skip their run while another process holds the job's lock
(PostgreSQL: an advisory lock every machine sharing the database sees; SQLite: a file lock),
and run again once it is released, crash included."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from routing_admin.run_once import ALREADY_RUNNING, exclusively
from tests.conftest import shared_database_url
from usage.models import RequestLog

ROOT = Path(__file__).resolve().parents[1]


def routing(*args: str) -> str:
    out = io.StringIO()
    call_command("routing", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _old_record() -> None:
    RequestLog.objects.create(
        at=timezone.now() - timedelta(days=90), requested_model="m", ok=True, latency_ms=1.0
    )


@pytest.mark.django_db(transaction=True)
def test_prune_requests_skips_while_another_run_holds_the_lock_and_runs_after():
    _old_record()
    with exclusively("prune-requests") as held:
        assert held
        assert routing("prune-requests").strip() == ALREADY_RUNNING.format(name="prune-requests")
        assert RequestLog.objects.count() == 1
    assert "Deleted 1 request-log record(s)" in routing("prune-requests")
    assert RequestLog.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_one_jobs_lock_does_not_hold_back_another_job():
    _old_record()
    with exclusively("health-check"):
        assert "Deleted 1 request-log record(s)" in routing("prune-requests")


def _env() -> dict[str, str]:
    from django.conf import settings as dj

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "DATABASE_URL": shared_database_url(),
        "ROUTING_HTTPS_REDIRECT": "0",
    }


# A second process that takes the job's lock through the same code, says so, and keeps it
# until its standard input closes (or it is killed: the lock must die with it).
HOLDER = """
import sys, django
django.setup()
from routing_admin.run_once import exclusively
with exclusively(sys.argv[1]) as held:
    print("held" if held else "busy", flush=True)
    sys.stdin.read()
"""


def _holder(job: str) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, job],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.django_db(transaction=True)
def test_a_run_in_another_process_makes_the_real_command_skip_until_it_ends():
    _old_record()
    holder = _holder("prune-requests")
    try:
        skipped = subprocess.run(
            [sys.executable, "manage.py", "routing", "prune-requests"],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=ROOT,
            timeout=120,
        )
        assert skipped.returncode == 0, skipped.stderr
        assert skipped.stdout.strip() == ALREADY_RUNNING.format(name="prune-requests")
        assert RequestLog.objects.count() == 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert "Deleted 1 request-log record(s)" in routing("prune-requests")


@pytest.mark.django_db(transaction=True)
def test_a_holder_that_dies_frees_the_lock():
    holder = _holder("health-check")
    with exclusively("health-check") as held:
        assert not held
    holder.kill()
    holder.wait(timeout=30)
    with exclusively("health-check") as held:
        assert held
