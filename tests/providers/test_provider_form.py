"""The add/edit provider form: every mistake in one submit, Kind first, and "Test connection"
before saving (the values typed, through the saved test's probe, nothing written)."""

from __future__ import annotations

import re
import socket
from html import escape

import pytest
from django.urls import reverse

from providers import addresses, kinds, validators
from providers.models import (
    CONNECTION_TEST_TIMEOUT,
    MODEL_CALL_TIMEOUT,
    AuditEvent,
    ProbeResult,
    Provider,
)
from providers.services import connection
from providers.services.providers import KEY_NOT_SENT_NEW_HOST, KEY_REQUIRED_FOR_NEW_HOST
from tests.conftest import SECRET
from tests.conftest import error_summary as _summary

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
OTHER_KEY = "sk-typed-" + "Z9y8X7w6V5u4T3s2R1q0"


def test_an_empty_openai_form_flags_the_name_and_the_key_at_once(client, login_as):
    login_as("editor")
    data = {"kind": "openai", "name": "", "api_key": "", "timeout": "10", "max_retries": "0"}
    html = client.post(reverse("provider_add"), data).content.decode()
    summary = _summary(html)
    assert '<a href="#id_name">Name: This field is required.</a>' in summary
    key_error = kinds.API_KEY_REQUIRED.format(label="OpenAI")
    assert f'<a href="#id_api_key">API key: {key_error}</a>' in summary
    assert 'id="id_api_key_error"' in html and 'id="id_name_error"' in html
    assert not Provider.objects.exists()


def test_a_bad_name_and_an_unsafe_base_url_are_reported_in_one_submit(client, login_as):
    login_as("editor")
    data = {
        "kind": "openai_compatible",
        "name": "Bad Name",
        "base_url": "http://169.254.169.254/",
        "timeout": "10",
        "max_retries": "0",
    }
    html = client.post(reverse("provider_add"), data).content.decode()
    summary = _summary(html)
    address_error = escape(addresses.ADDRESS_METADATA % {"address": "169.254.169.254"})
    name_error = escape(validators.PROVIDER_NAME_INVALID, quote=True)
    assert f'<a href="#id_name">Name: {name_error}</a>' in summary
    assert f'<a href="#id_base_url">Base URL: {address_error}</a>' in summary
    assert 'id="id_base_url_error"' in html
    assert not Provider.objects.exists()


def test_the_base_url_check_follows_the_kinds_local_flag(client, login_as):
    login_as("editor")
    data = {"name": "bad name", "base_url": "http://127.0.0.1:9/v1", "max_retries": "0"}
    data["timeout"] = "10"
    remote = client.post(reverse("provider_add"), {**data, "kind": "openai_compatible"})
    loopback = escape(addresses.ADDRESS_LOOPBACK % {"address": "127.0.0.1"}, quote=True)
    assert f"Base URL: {loopback}" in _summary(remote.content.decode())
    local = client.post(reverse("provider_add"), {**data, "kind": "vllm"})
    summary = _summary(local.content.decode())
    assert "Base URL" not in summary and "Name:" in summary


def test_the_form_puts_kind_first_and_carries_the_servers_rules(client, login_as):
    login_as("editor")
    html = client.get(reverse("provider_add")).content.decode()
    assert html.index('id="id_kind"') < html.index('id="id_name"')
    name = re.search(r'<input[^>]*id="id_name"[^>]*>', html)[0]
    assert 'pattern="[a-z0-9][a-z0-9_\\-]*"' in name and "required" in name
    assert 'maxlength="63"' in name
    key = re.search(r'<input[^>]*id="id_api_key"[^>]*>', html)[0]
    assert "required" in key  # OpenAI needs a key
    local = client.get(reverse("provider_add") + "?kind=ollama").content.decode()
    key = re.search(r'<input[^>]*id="id_api_key"[^>]*>', local)[0]
    assert "required" not in key  # Ollama does not


def _typed(upstream, **overrides):
    data = {
        "name": "",  # not needed to test
        "kind": "openai_compatible",
        "base_url": upstream.base_url + "/v1",
        "api_key": OTHER_KEY,
        "timeout": "5",
        "max_retries": "0",
        "_test": "1",
    }
    data.update(overrides)
    return data


def test_test_before_saving_probes_the_typed_values_and_writes_nothing(
    client, login_as, upstream, local_upstreams
):
    login_as("editor")
    upstream.models = ["m1", "m2"]
    response = client.post(reverse("provider_add"), _typed(upstream), **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Connection works" in html and "OK: 2 models found" in html
    assert upstream.last.path == "/v1/models"
    assert upstream.last.headers["authorization"] == f"Bearer {OTHER_KEY}"
    assert OTHER_KEY not in html
    assert not Provider.objects.exists()
    assert not ProbeResult.objects.exists() and not AuditEvent.objects.exists()


def test_test_before_saving_explains_the_failure(client, login_as, local_upstreams):
    login_as("editor")
    with socket.socket() as sock:  # bound and closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = {
        "kind": "vllm",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "timeout": "5",
        "max_retries": "0",
        "_test": "1",
    }
    html = client.post(reverse("provider_add"), data, **HX).content.decode()
    expected = connection.NOTHING_LISTENING.format(where=f"127.0.0.1:{port}", label="vLLM")
    assert "Connection failed" in html and expected in html


def test_test_before_saving_reports_what_to_fix_first(client, login_as):
    login_as("editor")
    data = {"kind": "openai_compatible", "base_url": "", "timeout": "5", "max_retries": "0"}
    html = client.post(reverse("provider_add"), {**data, "_test": "1"}, **HX).content.decode()
    assert "Not tested: fix these first." in html
    assert (
        kinds.BASE_URL_REQUIRED.format(
            label="OpenAI-compatible endpoint",
            example=kinds.KINDS["openai_compatible"].base_url_example,
        )
        in html
    )


def test_test_before_saving_counts_against_the_test_limit(
    client, login_as, upstream, local_upstreams, settings
):
    settings.ROUTING_TESTS_PER_MINUTE = 1
    login_as("editor")
    assert client.post(reverse("provider_add"), _typed(upstream), **HX).status_code == 200
    again = client.post(reverse("provider_add"), _typed(upstream), **HX)
    assert again.status_code == 429 and len(upstream.requests) == 1


def test_editing_uses_the_stored_key_only_for_the_same_host(
    client, login_as, make_provider, upstream, upstream_factory
):
    login_as("editor")
    provider = make_provider(name="p", kind="openai_compatible", base_url=upstream.base_url + "/v1")
    url = reverse("provider_edit", args=[provider.name])
    same = client.post(url, _typed(upstream, name="p", api_key=""), **HX).content.decode()
    assert "Connection works" in same
    assert upstream.last.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in same

    elsewhere = upstream_factory("elsewhere")
    moved = _typed(elsewhere, name="p", api_key="")
    html = client.post(url, moved, **HX).content.decode()
    # openai_compatible needs no key: tested without it, and told why.
    assert escape(KEY_NOT_SENT_NEW_HOST) in html
    assert "authorization" not in elsewhere.last.headers
    assert Provider.objects.get(name="p").base_url == upstream.base_url + "/v1"


def test_editing_a_kind_that_needs_a_key_asks_for_it_for_a_new_host(
    client, login_as, make_provider, upstream, upstream_factory
):
    login_as("editor")
    provider = make_provider(name="p", kind="openai", base_url=upstream.base_url + "/v1")
    elsewhere = upstream_factory("elsewhere")
    data = _typed(elsewhere, name="p", kind="openai", api_key="")
    html = client.post(reverse("provider_edit", args=["p"]), data, **HX).content.decode()
    assert escape(KEY_REQUIRED_FOR_NEW_HOST) in html and not elsewhere.requests
    assert provider.get_api_key() == SECRET


def test_without_javascript_the_test_shows_the_whole_form_again(
    client, login_as, upstream, local_upstreams
):
    login_as("editor")
    html = client.post(reverse("provider_add"), _typed(upstream)).content.decode()
    assert "<html" in html and "Connection works" in html
    assert "type the key again before saving" in html and OTHER_KEY not in html
    assert not Provider.objects.exists()


def test_the_timeout_follows_the_models_limits_and_default(client, login_as):
    login_as("editor")
    html = client.get(reverse("provider_add")).content.decode()
    timeout = re.search(r'<input[^>]*id="id_timeout"[^>]*>', html)[0]
    assert 'max="3600"' in timeout and 'min="0.5"' in timeout
    assert f'value="{MODEL_CALL_TIMEOUT:g}"' in timeout
    # What the page says the test may take is the connection test's own limit.
    assert f"Testing… (up to {CONNECTION_TEST_TIMEOUT:g} s)" in html
    data = {
        "kind": "openai_compatible",
        "name": "slow",
        "base_url": "https://llm.example.com/v1",
        "max_retries": "0",
        "enabled": "on",
    }
    refused = client.post(reverse("provider_add"), {**data, "timeout": "3601"})
    assert 'id="id_timeout_error"' in refused.content.decode()
    response = client.post(reverse("provider_add"), {**data, "timeout": "3600"})
    assert response.status_code == 302
    assert Provider.objects.get(name="slow").timeout == 3600


def test_the_test_buttons_say_how_long_a_connection_test_may_take(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="slow", kind="openai_compatible", base_url="https://llm.example.com/v1")
    make_provider(
        name="quick", kind="openai_compatible", base_url="https://llm.example.com/v1", timeout=4
    )
    # A model call may take the provider's timeout (600 s); its connection test stops at 10 s.
    slow = client.get(reverse("provider_detail", args=["slow"])).content.decode()
    assert f"Testing… (up to {CONNECTION_TEST_TIMEOUT:g} s)" in slow
    quick = client.get(reverse("provider_detail", args=["quick"])).content.decode()
    assert "Testing… (up to 4 s)" in quick
