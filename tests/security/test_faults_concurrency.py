"""Many admins switching the default at the same moment, on PostgreSQL: exactly one default
afterwards, every switch in the audit log, no error page, no deadlock."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings as dj
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client

from providers import services
from providers.models import AuditEvent, DefaultModel
from tests.conftest import shared_database_url

ROOT = Path(__file__).resolve().parents[2]
THREADS = 8
pytestmark = [
    pytest.mark.skipif(
        dj.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (row locks across connections); runs in bin/test's "
        "PostgreSQL pass",
    ),
    pytest.mark.django_db(transaction=True),
]


def _all_at_once(work, count: int = THREADS) -> list:
    """Run work(i) in `count` threads released together; return results or exceptions."""
    barrier = threading.Barrier(count, timeout=60)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test asserts there are none
            results[i] = exc
        finally:
            connection.close()  # each thread's own connection, or the test database stays busy

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a switch never finished (deadlock?)"
    return results


def _switches() -> int:
    return AuditEvent.objects.filter(action="default.set").count()


def test_simultaneous_first_default_switches_leave_exactly_one_default(make_provider):
    # No default row yet: every switch wants to create it, and a missing row cannot be locked.
    providers = [
        make_provider(name=f"p{i}", base_url=f"http://127.0.0.1:{9000 + i}/v1")
        for i in range(THREADS)
    ]
    results = _all_at_once(
        lambda i: services.default_model_set(provider=providers[i], model=f"m{i}", actor=f"a{i}")
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert DefaultModel.objects.count() == 1
    assert _switches() == THREADS
    final = DefaultModel.objects.get()
    assert final.version == THREADS
    # The last switch in the audit log is the one that stuck.
    last = AuditEvent.objects.filter(action="default.set").order_by("-id").first()
    assert last.changes["default"][1] == f"{final.provider.name}/{final.model}"


def test_simultaneous_switches_to_one_provider_are_each_applied_in_turn(make_provider):
    provider = make_provider(name="shared", base_url="http://127.0.0.1:9000/v1")
    services.default_model_set(provider=provider, model="start", actor="setup")
    results = _all_at_once(
        lambda i: services.default_model_set(provider=provider, model=f"m{i}", actor=f"a{i}")
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert DefaultModel.objects.count() == 1
    assert _switches() == THREADS + 1
    # Each switch saw the one before it as "previous": the chain has no gap and no repeat.
    events = AuditEvent.objects.filter(action="default.set").order_by("id")
    pairs = [e.changes["default"] for e in events]
    assert all(pairs[n][0] == pairs[n - 1][1] for n in range(1, len(pairs)))


def test_simultaneous_make_default_clicks_show_no_error_page(make_provider):
    providers = [
        make_provider(name=f"p{i}", base_url=f"http://127.0.0.1:{9000 + i}/v1")
        for i in range(THREADS)
    ]
    editor = Group.objects.get_or_create(name="editor")[0]
    clients = []
    for i in range(THREADS):
        user = User.objects.create_user(f"editor{i}", password="pw")
        user.groups.add(editor)
        client = Client()
        client.force_login(user)
        clients.append(client)
    results = _all_at_once(
        lambda i: (
            clients[i]
            .post("/default/", {"provider": providers[i].name, "model": f"m{i}"})
            .status_code
        )
    )
    assert results == [302] * THREADS
    assert DefaultModel.objects.count() == 1
    assert _switches() == THREADS
    assert set(
        AuditEvent.objects.filter(action="default.set").values_list("actor_name", flat=True)
    ) == {f"editor{i}" for i in range(THREADS)}


def test_default_switches_racing_provider_edits_never_deadlock(make_provider):
    providers = [
        make_provider(name=f"p{i}", base_url=f"http://127.0.0.1:{9000 + i}/v1") for i in range(2)
    ]

    def work(i: int):
        provider = providers[i % 2]
        if i % 2:
            return services.provider_update(provider=provider, actor=f"a{i}", timeout=5 + i)
        return services.default_model_set(provider=provider, model=f"m{i}", actor=f"a{i}")

    results = _all_at_once(work)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert DefaultModel.objects.count() == 1
    assert _switches() == THREADS // 2


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a second process on this test database: a loopback-only
    deployment, so the production checks accept the test keys."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": shared_database_url(),
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "ROUTING_HTTPS_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        **extra,
    }


def test_default_switches_from_several_processes_are_all_audited(make_provider):
    for i in range(4):
        make_provider(name=f"p{i}", base_url=f"http://127.0.0.1:{9000 + i}/v1")
    env = server_env()
    command = [sys.executable, "manage.py", "routing", "default", "set"]
    runs = [
        subprocess.Popen(
            [*command, f"p{i}", f"m{i}"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        for i in range(4)
    ]
    for run in runs:
        _, err = run.communicate(timeout=180)
        assert run.returncode == 0, err
    assert DefaultModel.objects.count() == 1
    assert _switches() == 4
