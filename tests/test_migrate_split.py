"""A database from before issue 14's split (providers 0012, every model in providers/)
migrates in place to the new layout (gateway/, usage/, accounts/): every row stays, every
stored key still decrypts, the content types (and a group's permissions on them) follow the
models, and the models agree with the migrations. Also: the roll-up backfills of 0009 and
0011 (a frozen copy, not the live service) count an old request log as the service does.

Runs on SQLite and, in bin/test's second pass, on PostgreSQL.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import ThrottleHit
from gateway.models import AccessToken
from gateway.services import hash_token
from providers import crypto
from providers.models import Provider
from usage.models import (
    LatencyRollup,
    ModelLatencyRollup,
    ModelRollup,
    RequestLog,
    TokenRollup,
    UsageRollup,
)
from usage.services import rollup_rebuild

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_SPLIT = [
    ("providers", "0012_provider_display_name_drop_params_timeouts"),
    ("gateway", None),
    ("usage", None),
    ("accounts", None),
]
BEFORE_ROLLUPS = [("providers", "0008_login_throttle"), *BEFORE_SPLIT[1:]]
KEY, HEADER = "sk-live-migrate-Zq8VtR2mXk4", "hv-secret-7Qe2"
TOKEN = "ra-migrate-token-9f3c"
ROLLUPS = (UsageRollup, ModelRollup, TokenRollup, LatencyRollup, ModelLatencyRollup)


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def _leaves() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def old_apps():
    """The historical models at `targets`; the database goes back to today's layout after."""
    leaves = _leaves()

    def at(targets):
        executor = _migrate(targets)
        ours = {app for app, _ in targets}
        nodes = [t for t in targets if t[1]] + [n for n in leaves if n[0] not in ours]
        return executor.loader.project_state(nodes).apps

    yield at
    _migrate(leaves)
    ContentType.objects.clear_cache()


def _rows(model, *fields):
    return sorted(model.objects.order_by().values_list(*fields))


def _seed_request_log(apps) -> None:
    RequestLogThen = apps.get_model("providers", "RequestLog")
    start = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    RequestLogThen.objects.bulk_create(
        RequestLogThen(
            at=start + timedelta(minutes=37 * i),
            token_name=["app", "in-process", "batch"][i % 3],
            requested_model="default",
            provider=["acme", "beta"][i % 2],
            model=["gpt-4o-mini", "claude-haiku"][i % 2],
            ok=i % 5 != 0,
            status=200 if i % 5 else 502,
            latency_ms=3.0 + i * 11.5,
            prompt_tokens=10 + i,
            completion_tokens=None if i % 4 == 0 else 2 * i,
            cost=None if i % 3 == 0 else 0.001 * i,
        )
        for i in range(60)
    )


def test_a_database_from_before_the_split_migrates_in_place(old_apps):
    apps = old_apps(BEFORE_SPLIT)
    tables_before = set(connection.introspection.table_names())
    UserThen = apps.get_model("auth", "User")
    GroupThen = apps.get_model("auth", "Group")
    ContentTypeThen = apps.get_model("contenttypes", "ContentType")
    PermissionThen = apps.get_model("auth", "Permission")
    # Before the split, the token's content type is providers.accesstoken.
    token_type = ContentTypeThen.objects.get(app_label="providers", model="accesstoken")
    view_token = PermissionThen.objects.get(content_type=token_type, codename="view_accesstoken")
    editors = GroupThen.objects.get_or_create(name="editor")[0]
    editors.permissions.add(view_token)
    ana = UserThen.objects.create(username="ana", password="!")
    ana.groups.add(editors)

    ProviderThen = apps.get_model("providers", "Provider")
    ProviderThen.objects.create(
        name="acme",
        kind="openai",
        api_key_ciphertext=crypto.encrypt(KEY),
        api_key_hint="sk-…mXk4",
        header_names=["X-Team"],
        headers_ciphertext=crypto.encrypt(json.dumps({"X-Team": HEADER})),
    )
    ProviderThen.objects.create(name="local", kind="ollama")
    apps.get_model("providers", "AccessToken").objects.create(
        name="app",
        token_hash=hash_token(TOKEN),
        prefix=TOKEN[:8],
        allowed_models=["acme/gpt-4o-mini"],
        created_by=ana,
    )
    apps.get_model("providers", "ThrottleHit").objects.create(
        scope="login", key="ana", at=datetime(2026, 11, 20, tzinfo=UTC)
    )
    _seed_request_log(apps)
    # The roll-ups as they stood (the 0011 backfill's own figures are checked below).
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO providers_modelrollup (period, start, provider, model, requests,"
            " errors, prompt_tokens, completion_tokens, cost)"
            " VALUES ('h', %s, 'acme', 'gpt-4o-mini', 7, 1, 70, 14, 0.5)",
            [datetime(2026, 11, 20, 9, tzinfo=UTC)],
        )
    ids = {
        "provider": sorted(ProviderThen.objects.values_list("id", flat=True)),
        "token_type": token_type.id,
        "requests": _rows(apps.get_model("providers", "RequestLog"), "id", "at", "latency_ms"),
    }

    _migrate(_leaves())

    # Nothing was created or dropped but the tables of features added since (teams): the
    # tables are the same ones, holding the same rows.
    added_since = {"accounts_team", "accounts_teammembership"}
    assert set(connection.introspection.table_names()) == tables_before | added_since
    assert sorted(Provider.objects.values_list("id", flat=True)) == ids["provider"]
    acme = Provider.objects.get(name="acme")
    assert acme.get_api_key() == KEY and acme.get_headers() == {"X-Team": HEADER}
    assert Provider.objects.get(name="local").get_api_key() == ""
    token = AccessToken.objects.get(token_hash=hash_token(TOKEN))
    assert token.name == "app" and token.allowed_models == ["acme/gpt-4o-mini"]
    assert token.created_by.username == "ana"
    assert ThrottleHit.objects.get().key == "ana"
    assert _rows(RequestLog, "id", "at", "latency_ms") == ids["requests"]
    assert ModelRollup.objects.get(provider="acme", period="h").requests == 7
    # The content type moved with its model, under the same id: the group keeps its right.
    moved = ContentType.objects.get(app_label="gateway", model="accesstoken")
    assert moved.id == ids["token_type"]
    assert not ContentType.objects.filter(app_label="providers", model="accesstoken").exists()
    assert Permission.objects.get(codename="view_accesstoken").content_type == moved
    assert User.objects.get(username="ana").has_perm("gateway.view_accesstoken")
    assert list(User.objects.get(username="ana").groups.all()) == [Group.objects.get(name="editor")]
    for model in ("requestlog", "usagerollup", "latencyrollup", "modellatencyrollup"):
        assert ContentType.objects.get(model=model).app_label == "usage"
    assert ContentType.objects.get(model="throttlehit").app_label == "accounts"
    # And the models say what the migrations say.
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_rollup_backfills_count_an_old_request_log_as_the_service_does(old_apps):
    _seed_request_log(old_apps(BEFORE_ROLLUPS))

    # 0009 and 0011 count the records in with their frozen copy of the rebuild.
    _migrate(_leaves())
    counted = {m.__name__: _rows(m, *_fields(m)) for m in ROLLUPS}
    assert all(counted.values())

    assert rollup_rebuild() == 60
    assert {m.__name__: _rows(m, *_fields(m)) for m in ROLLUPS} == counted


def _fields(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if f.name != "id"]
