"""Model calls go to real HTTP servers on 127.0.0.1; the tests check what LiteLLM sent."""

import sqlite3
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from providers import services
from providers.models import Provider
from providers.routing import live
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]


def _text(response) -> str:
    return response.choices[0].message.content


@pytest.fixture
def two_servers(upstream_factory, make_provider):
    a, b = upstream_factory("a"), upstream_factory("b")
    a.reply_text, b.reply_text = "from A", "from B"
    pa = make_provider(name="prov-a", base_url=a.base_url + "/v1", api_key=SECRET)
    pb = make_provider(name="prov-b", base_url=b.base_url + "/v1", api_key="sk-b-key-0123456789zz")
    return a, b, pa, pb


def test_default_call_sends_decrypted_key_and_model(two_servers):
    a, _, pa, _ = two_servers
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    assert _text(services.completion(HI)) == "from A"
    sent = a.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.json()["model"] == "gpt-4o-mini"
    assert sent.json()["messages"] == HI


def test_switch_is_live_for_the_next_call_in_the_same_process(two_servers):
    a, b, pa, pb = two_servers
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    assert _text(services.completion(HI)) == "from A"
    services.default_model_set(provider=pb, model="gpt-4o")
    assert _text(services.completion(HI)) == "from B"
    assert b.last.headers["authorization"] == "Bearer sk-b-key-0123456789zz"
    assert b.last.json()["model"] == "gpt-4o"
    assert len(a.requests) == 1


def test_key_change_is_live_for_the_next_call(two_servers):
    a, _, pa, _ = two_servers
    services.default_model_set(provider=pa, model="m")
    services.completion(HI)
    services.provider_update(provider=pa, api_key="sk-rotated-000000000000")
    services.completion(HI)
    assert a.last.headers["authorization"] == "Bearer sk-rotated-000000000000"


def test_explicit_provider_model_splits_at_first_slash(two_servers):
    _, b, _, _ = two_servers
    assert _text(services.completion(HI, model="prov-b/meta-llama/Llama-3.1-8B")) == "from B"
    assert b.last.json()["model"] == "meta-llama/Llama-3.1-8B"


def test_environment_keys_and_urls_are_never_used(two_servers, monkeypatch, upstream_factory):
    decoy = upstream_factory("decoy")
    a, _, pa, _ = two_servers
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-should-not-be-used")
    monkeypatch.setenv("OPENAI_BASE_URL", decoy.base_url + "/v1")
    monkeypatch.setenv("OPENAI_API_BASE", decoy.base_url + "/v1")
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    services.completion(HI)
    assert a.last.headers["authorization"] == f"Bearer {SECRET}"
    assert decoy.requests == []


def test_keyless_provider_does_not_borrow_the_environment_key(upstream, make_provider, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-should-not-be-used")
    make_provider(
        name="compat", kind="openai_compatible", base_url=upstream.base_url + "/v1", api_key=""
    )
    services.completion(HI, model="compat/my-model")
    assert "sk-from-env" not in upstream.last.headers.get("authorization", "")


def test_upstream_error_names_provider_and_status_without_the_key(two_servers):
    a, _, pa, _ = two_servers
    a.fail_next(
        401, {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "auth"}}
    )
    with pytest.raises(services.ProviderError) as info:
        services.completion(HI, model="prov-a/gpt-4o-mini")
    message = str(info.value)
    assert "prov-a" in message and "401" in message
    assert SECRET not in message
    assert info.value.status_code == 401
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_no_default_is_a_clear_error(db):
    with pytest.raises(services.UnknownModel, match="No default model is set"):
        services.completion(HI)


def test_unknown_and_disabled_providers_are_refused(two_servers):
    _, _, _, pb = two_servers
    with pytest.raises(services.UnknownModel, match="No enabled provider is named 'nope'"):
        services.completion(HI, model="nope/gpt-4o")
    services.provider_update(provider=pb, enabled=False)
    with pytest.raises(services.UnknownModel, match="prov-b"):
        services.completion(HI, model="prov-b/gpt-4o")


def test_acompletion_uses_the_default(two_servers):
    _, b, _, pb = two_servers
    services.default_model_set(provider=pb, model="gpt-4o")
    response = async_to_sync(services.acompletion)(HI)
    assert _text(response) == "from B"
    assert b.last.headers["authorization"] == "Bearer sk-b-key-0123456789zz"


def _switch_from_another_connection(provider: Provider) -> None:
    """Commit a switch through a connection that is not this process's Django connection,
    as another worker would; nothing marks this process's cache dirty."""
    sql = (
        "UPDATE providers_defaultmodel SET provider_id = {p}, model = 'gpt-4o', "
        "version = version + 1 WHERE id = 1",
        "UPDATE providers_configstate SET version = version + 1 WHERE id = 1",
    )
    if connection.vendor == "sqlite":
        other = sqlite3.connect(connection.settings_dict["NAME"])
        for statement in sql:
            other.execute(statement.format(p=provider.pk))
        other.commit()
        other.close()
    else:
        import psycopg

        s = connection.settings_dict
        with psycopg.connect(
            dbname=s["NAME"],
            user=s["USER"],
            host=s["HOST"],
            port=s["PORT"] or None,
            password=s["PASSWORD"] or None,
            autocommit=True,
        ) as other:
            for statement in sql:
                other.execute(statement.format(p=provider.pk))
            other.execute("SELECT pg_notify('routing_config', '')")


def test_acompletion_routes_with_the_snapshot_it_is_given(two_servers):
    # What the gateway does: route by the configuration the request was authenticated by,
    # even when a switch lands in between.
    a, b, pa, pb = two_servers
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    authenticated_by = live.snapshot()
    services.default_model_set(provider=pb, model="gpt-4o")
    response = async_to_sync(services.acompletion)(HI, snapshot=authenticated_by)
    assert _text(response) == "from A" and not b.requests
    assert "snapshot" not in a.last.json()


@pytest.mark.django_db(transaction=True)
def test_switch_by_another_process_reaches_this_one_without_restart(two_servers, settings):
    a, b, pa, pb = two_servers
    # Far beyond the test's length: only the change signal can make the switch visible.
    settings.ROUTING_CONFIG_RECHECK_SECONDS = 3600
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    assert _text(services.completion(HI)) == "from A"
    _switch_from_another_connection(pb)
    # SQLite's data_version sees the commit at once; PostgreSQL's NOTIFY arrives on the
    # listener thread within milliseconds: poll with a deadline, not a sleep.
    deadline = time.monotonic() + 5
    while _text(services.completion(HI)) != "from B":
        assert time.monotonic() < deadline, "the switch never reached this process"
    assert b.last.json()["model"] == "gpt-4o"
