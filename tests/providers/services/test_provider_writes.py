import os
import subprocess

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from providers import services
from providers.models import AuditEvent, ConfigState, DefaultModel, Provider
from tests.conftest import SECRET


def _row_count() -> tuple[int, int]:
    return Provider.objects.count(), AuditEvent.objects.count()


def test_create_encrypts_key_and_shows_only_a_hint(make_provider):
    provider = make_provider()
    assert provider.api_key_ciphertext and SECRET not in provider.api_key_ciphertext
    assert provider.api_key_hint == "sk-…J9k0"
    assert Provider.objects.get(name="acme").get_api_key() == SECRET


@pytest.mark.django_db(transaction=True)
def test_plaintext_key_never_reaches_the_database(make_provider):
    make_provider(headers={"X-Team-Token": "hdr-secret-value-42"})
    if connection.vendor == "sqlite":
        # Committed pages live in the main file or its write-ahead log: read both. In a child
        # process: closing a descriptor of the database file here would drop every POSIX
        # lock SQLite holds on it in this process, and corrupt later tests' view of the WAL.
        path = connection.settings_dict["NAME"]
        files = [f for f in (path, path + "-wal") if os.path.exists(f)]
        blobs = subprocess.run(["cat", *files], capture_output=True, check=True).stdout
        assert b"acme" in blobs  # the test reads the real file
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM providers_provider")
            blobs = repr(cursor.fetchall()).encode()
    assert SECRET.encode() not in blobs
    assert b"hdr-secret-value-42" not in blobs


def test_audit_records_secret_as_set_never_its_value(make_provider):
    make_provider()
    event = AuditEvent.objects.get(action="provider.create")
    assert event.changes["api_key"] == "set"
    assert SECRET not in repr(event.changes)
    assert event.actor_name == "test"


def test_every_write_bumps_the_config_version(make_provider):
    start = ConfigState.objects.get().version
    provider = make_provider()
    services.provider_update(provider=provider, timeout=30, actor="test")
    services.default_model_set(provider=provider, model="gpt-4o-mini", actor="test")
    assert ConfigState.objects.get().version == start + 3


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"name": "Bad Name!"}, "name"),
        ({"kind": "nonsense"}, "kind"),
        ({"base_url": "http://169.254.169.254/latest"}, "base_url"),
        ({"kind": "azure", "base_url": "https://res.openai.azure.com"}, "api_version"),
        ({"kind": "openai_compatible"}, "base_url"),
        ({"api_key": ""}, "api_key"),
    ],
)
def test_rejected_input_stores_nothing(make_provider, kwargs, field):
    before = _row_count()
    with pytest.raises(ValidationError) as info:
        make_provider(**kwargs)
    assert field in info.value.message_dict
    assert _row_count() == before


def test_duplicate_name_is_rejected(make_provider):
    make_provider()
    with pytest.raises(ValidationError) as info:
        make_provider()
    assert "name" in info.value.message_dict


def test_local_kind_needs_no_key_and_uses_default_url(make_provider):
    provider = make_provider(name="ollama", kind="ollama", api_key="")
    assert provider.effective_base_url == "http://localhost:11434"
    assert provider.key_state == "none"


def test_changing_host_requires_the_key_again(make_provider, upstream):
    provider = make_provider(base_url=upstream.base_url + "/v1")
    with pytest.raises(ValidationError) as info:
        services.provider_update(provider=provider, base_url="https://evil.example.com/v1")
    assert "enter the API key again" in " ".join(info.value.message_dict["api_key"])
    provider.refresh_from_db()
    assert provider.base_url == upstream.base_url + "/v1"
    assert provider.get_api_key() == SECRET


def test_changing_host_with_new_key_is_allowed(make_provider, upstream):
    provider = make_provider(base_url=upstream.base_url + "/v1")
    updated = services.provider_update(
        provider=provider, base_url="https://api.example.com/v1", api_key="sk-other-key-0000000000"
    )
    assert updated.get_api_key() == "sk-other-key-0000000000"
    event = AuditEvent.objects.filter(action="provider.update").get()
    assert event.changes["api_key"] == "changed"
    assert "sk-other" not in repr(event.changes)


def test_empty_key_keeps_nothing_when_removed_explicitly(make_provider):
    provider = make_provider(kind="openai_compatible", base_url="https://llm.example.com/v1")
    updated = services.provider_update(provider=provider, api_key="")
    assert updated.key_state == "none" and updated.api_key_hint == ""


def test_stale_edit_is_refused(make_provider):
    provider = make_provider()
    services.provider_update(provider=provider, timeout=20, expected_version=1)
    with pytest.raises(ValidationError, match="changed provider 'acme' while you were editing"):
        services.provider_update(provider=provider, timeout=30, expected_version=1)
    assert Provider.objects.get().timeout == 20


def test_removing_the_default_provider_is_refused(make_provider):
    provider = make_provider()
    services.default_model_set(provider=provider, model="gpt-4o-mini")
    with pytest.raises(ValidationError, match="Switch the default"):
        services.provider_remove(provider=provider)
    assert Provider.objects.filter(name="acme").exists()


def test_default_switch_increments_version_and_revert_returns(make_provider):
    a, b = make_provider(name="a"), make_provider(name="b")
    first = services.default_model_set(provider=a, model="gpt-4o-mini", actor="alice")
    second = services.default_model_set(provider=b, model="gpt-4o", actor="bob")
    assert (first.version, second.version) == (1, 2)
    reverted = services.default_model_revert(actor="alice")
    assert (reverted.provider.name, reverted.model, reverted.version) == ("a", "gpt-4o-mini", 3)
    assert DefaultModel.objects.count() == 1
    assert AuditEvent.objects.filter(action="default.set").count() == 3


@pytest.mark.parametrize("model", ["", "-leading-dash", "a..b", "has space", "x" * 201])
def test_invalid_model_id_is_rejected_and_default_unchanged(make_provider, model):
    provider = make_provider()
    services.default_model_set(provider=provider, model="gpt-4o-mini")
    with pytest.raises(ValidationError):
        services.default_model_set(provider=provider, model=model)
    assert DefaultModel.objects.get().model == "gpt-4o-mini"


def test_azure_ai_claude_needs_anthropic_endpoint(make_provider):
    provider = make_provider(kind="azure_ai", base_url="https://res.services.ai.azure.com/models")
    with pytest.raises(ValidationError, match="must end with /anthropic"):
        services.default_model_set(provider=provider, model="claude-sonnet-4-5")
    ok = make_provider(
        name="foundry-claude",
        kind="azure_ai",
        base_url="https://res.services.ai.azure.com/anthropic",
    )
    assert services.default_model_set(provider=ok, model="claude-sonnet-4-5").model


def test_database_allows_only_one_default_row(make_provider):
    from django.db import IntegrityError, transaction

    provider = make_provider()
    services.default_model_set(provider=provider, model="gpt-4o-mini")
    with pytest.raises(IntegrityError), transaction.atomic():
        DefaultModel.objects.create(id=2, provider=provider, model="other")
