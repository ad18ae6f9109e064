"""Migration 0012 raises the timeouts still at the old defaults and keeps the ones admins chose."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from providers.models import MODEL_CALL_TIMEOUT

BEFORE = [("providers", "0011_model_and_token_rollups")]
AFTER = [("providers", "0012_provider_display_name_drop_params_timeouts")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_0011(transactional_db):
    apps = _migrate(BEFORE)
    yield apps
    # Leave the schema as every other test expects it.
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def _provider(apps, name, **fields):
    Provider = apps.get_model("providers", "Provider")
    return Provider.objects.create(name=name, kind="openai", **fields).pk


def test_it_moves_providers_at_the_old_default_to_the_new_one(at_0011):
    old_default = _provider(at_0011, "old-default")  # the 0011 field default: 10 s
    assert at_0011.get_model("providers", "Provider").objects.get(pk=old_default).timeout == 10.0

    apps = _migrate(AFTER)

    assert apps.get_model("providers", "Provider").objects.get(pk=old_default).timeout == (
        MODEL_CALL_TIMEOUT
    )
    assert MODEL_CALL_TIMEOUT == 600.0


def test_it_keeps_a_timeout_an_admin_chose(at_0011):
    chosen = _provider(at_0011, "chosen", timeout=45.0)
    short = _provider(at_0011, "short", timeout=2.5)

    apps = _migrate(AFTER)

    Provider = apps.get_model("providers", "Provider")
    assert Provider.objects.get(pk=chosen).timeout == 45.0
    assert Provider.objects.get(pk=short).timeout == 2.5


def test_it_moves_the_router_from_60_to_600_seconds(at_0011):
    RouterSettings = at_0011.get_model("providers", "RouterSettings")
    RouterSettings.objects.update_or_create(id=1, defaults={"timeout": 60.0})

    apps = _migrate(AFTER)

    assert apps.get_model("providers", "RouterSettings").objects.get(id=1).timeout == 600.0


def test_it_keeps_a_router_timeout_an_admin_chose(at_0011):
    RouterSettings = at_0011.get_model("providers", "RouterSettings")
    RouterSettings.objects.update_or_create(id=1, defaults={"timeout": 120.0})

    apps = _migrate(AFTER)

    assert apps.get_model("providers", "RouterSettings").objects.get(id=1).timeout == 120.0


def test_new_rows_get_the_new_defaults(at_0011):
    apps = _migrate(AFTER)

    pk = _provider(apps, "fresh")
    assert apps.get_model("providers", "Provider").objects.get(pk=pk).timeout == 600.0
    RouterSettings = apps.get_model("providers", "RouterSettings")
    assert RouterSettings(id=1).timeout == 600.0
