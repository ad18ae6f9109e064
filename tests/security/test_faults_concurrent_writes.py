"""Many configuration writes at once from separate processes, as admins' scripts make them:
`routing default set` alternating between two providers, racing `routing provider edit` of
those same providers. On PostgreSQL this deadlocked (issue 12) until every write took the
configuration lock first (providers/routing/live.py, lock order); on SQLite every write takes the
database's write lock at BEGIN IMMEDIATE. Both backends run it: every command succeeds."""

import subprocess
import sys

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway.models import AccessToken
from gateway.services import token_create, token_revoke
from providers import services
from providers.models import AuditEvent, DefaultModel, Provider
from providers.services import ConnectionResult
from providers.services.health import probe_record, provider_drain_set
from tests.security.test_faults_concurrency import ROOT, server_env

SWITCHES = 16
EDITS = 6
pytestmark = pytest.mark.django_db(transaction=True)


def _command(i: int) -> list[str]:
    name = ("pa", "pb")[i % 2]
    if i < SWITCHES:
        return ["routing", "default", "set", name, f"m{i}"]
    return ["routing", "provider", "edit", name, "--timeout", str(10 + i)]


def test_concurrent_switches_and_edits_from_processes_all_succeed(make_provider):
    for name in ("pa", "pb"):
        make_provider(name=name, kind="openai_compatible", base_url="http://127.0.0.1:9001/v1")
    versions = dict(Provider.objects.values_list("name", "version"))
    env = server_env()
    runs = [
        subprocess.Popen(
            [sys.executable, "manage.py", *_command(i)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(SWITCHES + EDITS)
    ]
    failures = []
    for i, run in enumerate(runs):
        _, err = run.communicate(timeout=300)
        if run.returncode != 0:
            failures.append((_command(i), err.strip().splitlines()[-1:]))
    assert failures == []

    assert DefaultModel.objects.count() == 1
    switches = list(AuditEvent.objects.filter(action="default.set").order_by("id"))
    assert len(switches) == SWITCHES
    assert {e.changes["default"][1] for e in switches} == {
        f"{('pa', 'pb')[i % 2]}/m{i}" for i in range(SWITCHES)
    }
    # Applied one after the other: each switch saw the one before it as "previous".
    pairs = [e.changes["default"] for e in switches]
    assert pairs[0][0] is None
    assert all(pairs[n][0] == pairs[n - 1][1] for n in range(1, len(pairs)))
    final = DefaultModel.objects.select_related("provider").get()
    assert f"{final.provider.name}/{final.model}" == pairs[-1][1]
    assert final.version == SWITCHES
    edits = AuditEvent.objects.filter(action="provider.update")
    assert edits.count() == EDITS
    for n, name in enumerate(("pa", "pb")):
        provider = Provider.objects.get(name=name)
        mine = [i for i in range(SWITCHES, SWITCHES + EDITS) if i % 2 == n]
        # The last of its edits to commit wins; which one that is, is up to the scheduler.
        assert provider.timeout in {float(10 + i) for i in mine}
        assert provider.version == versions[name] + len(mine)


def _first_lock(run) -> str:
    """The first statement of a write that locks or changes a row."""
    with CaptureQueriesContext(connection) as queries:
        run()
    for query in queries.captured_queries:
        sql = query["sql"].upper()
        if sql.startswith(("INSERT", "UPDATE", "DELETE")) or " FOR UPDATE" in sql:
            return sql
    return ""


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite drops FOR UPDATE from the SQL; its BEGIN IMMEDIATE is the lock there",
)
def test_every_configuration_write_locks_the_configuration_row_first(make_provider):
    pa = make_provider(name="pa", kind="openai_compatible", base_url="http://127.0.0.1:9001/v1")
    group = services.group_save(
        name="fast", deployments=[services.DeploymentSpec(provider="pa", model="m")], actor="t"
    )
    writes = {
        "provider_create": lambda: make_provider(
            name="pc", kind="openai_compatible", base_url="http://127.0.0.1:9002/v1"
        ),
        "provider_update": lambda: services.provider_update(provider=pa, timeout=9, actor="t"),
        "default_model_set": lambda: services.default_model_set(provider=pa, model="m1", actor="t"),
        "default_model_set(group)": lambda: services.default_model_set(group=group, actor="t"),
        "default_model_revert": lambda: services.default_model_revert(actor="t"),
        "group_save": lambda: services.group_save(
            name="slow", deployments=[services.DeploymentSpec(provider="pa", model="m")]
        ),
        "router_settings_update": lambda: services.router_settings_update(num_retries=1),
        "provider_remove": lambda: services.provider_remove(
            provider=Provider.objects.get(name="pc"), actor="t"
        ),
        "rotate_keys": lambda: services.rotate_keys(actor="t"),
        "token_create": lambda: token_create(name="ci", actor="t"),
        "token_revoke": lambda: token_revoke(token=AccessToken.objects.get(name="ci"), actor="t"),
        "provider_drain_set": lambda: provider_drain_set(
            provider=pa, drain_when_unhealthy=True, actor="t"
        ),
        "probe_record": lambda: probe_record(
            provider=pa, result=ConnectionResult(ok=False, message="down"), actor="t"
        ),
    }
    firsts = {name: _first_lock(run) for name, run in writes.items()}
    late = {name: sql for name, sql in firsts.items() if '"PROVIDERS_CONFIGSTATE"' not in sql}
    assert late == {}
