"""A stored key or header value never comes back out: not in a page, an htmx partial, a JSON
answer, a log line, an exception, an error report or an audit row, even when the provider
echoes it in its error body (as OpenAI's "Incorrect API key provided: sk-..." does)."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter
from django.views.decorators.debug import sensitive_variables

from accounts import services as account_services
from gateway.services import token_create
from providers import services
from providers.models import AuditEvent
from providers.redact import mask
from providers.views import env_import as env_import_view
from providers.views import upload_preview
from tests.conftest import SECRET

from .test_web_methods import ENDPOINTS, QUERIES

HEADER = "org-" + "Zx8Yw7Vu6Ts5Rq4Po3Nm"  # not key-shaped: only knowing it can redact it
NEW_KEY = "sk-rotated-" + "Q1w2E3r4T5y6U7i8O9p0"
HX = {"HTTP_HX_REQUEST": "true"}


def _echo(upstream, status: int = 401) -> None:
    message = f"Incorrect API key provided: {SECRET}. Header was {HEADER}; Bearer {SECRET}"
    upstream.fail_next(status, {"error": {"message": message, "type": "invalid_request_error"}})


def _assert_clean(text: str, where: str) -> None:
    for secret in (SECRET, HEADER, NEW_KEY, SECRET[8:], HEADER[4:]):
        assert secret not in text, f"{secret[:6]}… found in {where}"


@pytest.fixture
def acme(make_provider, upstream):
    provider = make_provider(
        name="acme", base_url=upstream.base_url + "/v1", headers={"X-Org": HEADER}
    )
    services.default_model_set(provider=provider, model="gpt-4o-mini", actor="test")
    return provider


def test_key_not_in_any_page_or_partial_after_upstream_echoes_it(client, login_as, acme, upstream):
    login_as("admin")
    seen = []
    _echo(upstream)
    seen.append(client.post(reverse("provider_test", args=["acme"]), **HX))
    _echo(upstream)
    seen.append(client.post(reverse("provider_test", args=["acme"]), {"next": "/"}, follow=True))
    _echo(upstream)
    seen.append(client.post(reverse("model_options"), {"provider": "acme"}, **HX))
    for name, (kwargs, who) in ENDPOINTS.items():
        if who not in ("token", "anyone"):
            url = reverse(name, kwargs=kwargs)
            seen.append(client.get(url, QUERIES.get(name, {})))
            seen.append(client.get(url, QUERIES.get(name, {}), **HX))
    assert "HTTP 401" in seen[0].content.decode()  # the error itself is shown
    for response in seen:
        _assert_clean(response.content.decode(), f"{response.request['PATH_INFO']}")


def test_key_not_in_gateway_json_after_upstream_echoes_it(client, acme, upstream):
    _, token = token_create(name="app", actor="test")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    _echo(upstream)
    body = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post(
        reverse("gateway_chat"), json.dumps(body), content_type="application/json", **auth
    )
    assert response.status_code == 502
    _assert_clean(response.content.decode(), "/v1/chat/completions")
    for name in ("gateway_models", "gateway_providers"):
        _assert_clean(client.get(reverse(name), **auth).content.decode(), name)


def test_key_not_in_exception_or_its_traceback_after_upstream_echoes_it(acme, upstream):
    _echo(upstream)
    with pytest.raises(services.ProviderError) as info:
        services.completion([{"role": "user", "content": "hi"}])
    _assert_clean(str(info.value), "str(ProviderError)")
    _assert_clean(repr(info.value), "repr(ProviderError)")
    _assert_clean("".join(traceback.format_exception(info.value)), "the printed traceback")


def test_key_not_in_any_log_line_at_debug_level_after_upstream_echoes_it(
    client, login_as, acme, upstream, caplog, capfd
):
    login_as("viewer")
    caplog.set_level(logging.DEBUG)
    _echo(upstream)
    client.post(reverse("provider_test", args=["acme"]), **HX)
    _echo(upstream, status=500)
    with pytest.raises(services.ProviderError):
        services.completion([{"role": "user", "content": "hi"}])
    handler = logging.StreamHandler(sys.stderr)
    for record in caplog.records:
        _assert_clean(handler.format(record), f"log record of {record.name}")
    out, err = capfd.readouterr()
    _assert_clean(out + err, "stdout/stderr")


def test_key_and_header_value_not_in_audit_rows(client, login_as, acme):
    login_as("editor")
    services.provider_update(
        provider=acme, actor="test", api_key=NEW_KEY, headers={"X-Org": HEADER + "2"}
    )
    services.provider_update(provider=acme, actor="test", headers={})
    rows = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert "acme" in rows
    _assert_clean(rows, "audit rows")
    _assert_clean(client.get(reverse("audit_log")).content.decode(), "the audit page")


def test_typed_key_not_echoed_when_the_edit_form_is_refused(client, login_as, acme):
    login_as("editor")
    data = {
        "name": "acme",
        "kind": "openai",
        "base_url": "http://169.254.169.254/v1",
        "api_key": NEW_KEY,
        "headers": f"X-Org: {HEADER}",
        "timeout": "10",
        "max_retries": "0",
        "version": str(acme.version),
    }
    response = client.post(reverse("provider_edit", args=["acme"]), data)
    assert response.status_code == 200 and b"errorlist" in response.content
    _assert_clean(response.content.decode(), "the refused edit form")


def _crash_report(caplog) -> str:
    """What an error e-mail (AdminEmailHandler) or a technical 500 page would show."""
    record = next(r for r in caplog.records if r.name == "django.request" and r.exc_info)
    reporter = ExceptionReporter(record.request, *record.exc_info)
    return reporter.get_traceback_text() + reporter.get_traceback_html()


@sensitive_variables()
def _crash(*args, **kwargs):
    raise RuntimeError("the database went away")


def test_key_not_in_error_report_when_saving_a_provider_crashes(
    login_as, acme, monkeypatch, caplog
):
    monkeypatch.setattr(services, "provider_create", _crash)
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("eve", is_superuser=True))
    data = {
        "name": "other",
        "kind": "openai",
        "api_key": NEW_KEY,
        "headers": f"X-Org: {HEADER}",
        "timeout": "10",
        "max_retries": "0",
    }
    response = client.post(reverse("provider_add"), data)
    assert response.status_code == 500
    _assert_clean(response.content.decode(), "the 500 page")
    report = _crash_report(caplog)
    assert "the database went away" in report and "api_key" in report
    _assert_clean(report, "the error report")


def test_key_not_in_error_report_when_the_provider_service_crashes_midway(
    login_as, acme, monkeypatch, caplog
):
    # The crash happens deep in provider_create, after the key was encrypted: the service's
    # frames (and transaction.atomic's around it) hold the plaintext key and headers.
    def broken_validation(provider):
        raise RuntimeError("validation backend unavailable")

    monkeypatch.setattr("providers.services.providers._validate", broken_validation)
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("eve", is_superuser=True))
    data = {
        "name": "other",
        "kind": "openai",
        "api_key": NEW_KEY,
        "headers": f"X-Org: {HEADER}",
        "timeout": "10",
        "max_retries": "0",
    }
    assert client.post(reverse("provider_add"), data).status_code == 500
    report = _crash_report(caplog)
    assert "validation backend unavailable" in report and "provider_create" in report
    _assert_clean(report, "the error report")


def test_password_not_in_error_report_when_adding_a_user_crashes(monkeypatch, caplog, db):
    password = "Pa55-" + "correct-horse-battery"
    monkeypatch.setattr(account_services, "user_create", _crash)
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("root", is_superuser=True))
    data = {"form": "add", "username": "newbie", "password": password, "role": "viewer"}
    assert client.post(reverse("users"), data).status_code == 500
    report = _crash_report(caplog)
    assert "newbie" in report  # the report is there, and shows the harmless fields
    assert password not in report


# --- the import pages: the uploaded file is all keys ------------------------------------------

ENV_TEXT = f"OPENAI_API_KEY={NEW_KEY}\nANTHROPIC_API_KEY={SECRET}\n"
CONFIG_TEXT = (
    "model_list:\n"
    "  - model_name: fast\n"
    "    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/OPENAI_API_KEY}\n"
    "  - model_name: smart\n"
    f"    litellm_params: {{model: anthropic/claude-haiku-4-5, api_key: {SECRET}}}\n"
)


def _editor_client() -> Client:
    client = Client(raise_request_exception=False)
    editor = User.objects.create_user("eve")
    editor.groups.add(Group.objects.get_or_create(name="editor")[0])
    client.force_login(editor)
    return client


def _seal_crashes(monkeypatch) -> None:
    # Only the preview's own reference: the services keep encrypting keys with the real module.
    monkeypatch.setattr(upload_preview, "crypto", SimpleNamespace(encrypt=_crash))


def test_env_file_not_in_error_report_when_its_preview_crashes(monkeypatch, caplog, db):
    monkeypatch.setattr(env_import_view.services, "import_env", _crash)
    client = _editor_client()
    assert client.post(reverse("env_import"), {"text": ENV_TEXT}).status_code == 500
    report = _crash_report(caplog)
    assert "the database went away" in report and "env_import" in report
    _assert_clean(report, "the error report")


def test_env_file_not_in_error_report_when_keeping_the_preview_crashes(monkeypatch, caplog, db):
    _seal_crashes(monkeypatch)
    client = _editor_client()
    assert client.post(reverse("env_import"), {"text": ENV_TEXT}).status_code == 500
    report = _crash_report(caplog)
    assert "the database went away" in report and "upload_preview" in report
    _assert_clean(report, "the error report")


def test_env_file_not_in_error_report_when_the_confirmed_import_crashes(monkeypatch, caplog, db):
    client = _editor_client()
    preview_id = client.post(reverse("env_import"), {"text": ENV_TEXT}).context["preview"]
    monkeypatch.setattr(env_import_view.services, "import_env", _crash)
    assert client.post(reverse("env_import"), {"preview": preview_id}).status_code == 500
    report = _crash_report(caplog)
    assert "the database went away" in report and "_apply" in report
    _assert_clean(report, "the error report")


def _config_upload(client: Client):
    data = {
        "config": SimpleUploadedFile("config.yaml", CONFIG_TEXT.encode()),
        "environment": f"OPENAI_API_KEY={NEW_KEY}\n",
    }
    return client.post(reverse("config_import"), data)


def test_config_keys_not_in_error_report_when_its_preview_crashes(monkeypatch, caplog, db):
    monkeypatch.setattr(services, "import_config", _crash)
    assert _config_upload(_editor_client()).status_code == 500
    report = _crash_report(caplog)
    assert "the database went away" in report and "config_import" in report
    _assert_clean(report, "the error report")


def test_config_keys_not_in_error_report_when_sealing_the_preview_crashes(monkeypatch, caplog, db):
    _seal_crashes(monkeypatch)
    assert _config_upload(_editor_client()).status_code == 500
    report = _crash_report(caplog)
    assert "the database went away" in report and "upload_preview" in report
    _assert_clean(report, "the error report")


def test_config_keys_not_in_error_report_when_the_confirmed_import_crashes(monkeypatch, caplog, db):
    client = _editor_client()
    preview_id = _config_upload(client).context["preview"]
    monkeypatch.setattr(services, "import_config", _crash)
    assert client.post(reverse("config_import"), {"preview": preview_id}).status_code == 500
    report = _crash_report(caplog)
    assert "the database went away" in report and "_apply" in report
    _assert_clean(report, "the error report")


# --- masks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("", ""),
        ("hunter2", "…"),
        ("sk-12345678", "…"),  # 11 characters
        ("sk-123456789", "…6789"),  # 12: the last 4, never the prefix as well
        ("sk-1234567890abcdef", "…cdef"),  # 19
        ("sk-1234567890abcdefg", "sk-…defg"),  # 20 on: the familiar form
        (SECRET, "sk-…J9k0"),
    ],
)
def test_mask_of_a_short_secret_shows_little_or_nothing(secret, shown):
    assert mask(secret) == shown


def test_mask_always_hides_at_least_eight_characters():
    for length in range(1, 120):
        secret = "".join(chr(ord("a") + i % 26) for i in range(length))
        visible = len(mask(secret).replace("…", ""))
        assert visible <= 7 and (visible == 0 or length - visible >= 8), length


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [429, 400, 404, 503])
def test_key_not_in_relayed_upstream_errors_or_their_headers(
    client, acme, upstream, caplog, status, stream
):
    # The statuses the gateway relays (429 with its rate-limit headers, other refusals, the
    # provider's own errors), with the key echoed in the body and in a relayed header.
    import base64
    from urllib.parse import quote

    caplog.set_level(logging.DEBUG)
    _, token = token_create(name="app", actor="test")
    encoded = base64.b64encode(f"user:{SECRET}".encode()).decode()
    message = f"Bad key {SECRET.upper()} ({quote(SECRET, safe='')}, Basic {encoded}); {HEADER}"
    upstream.fail_next(
        status,
        {"error": {"message": message, "type": "invalid_request_error"}},
        headers={"Retry-After": "3", "x-ratelimit-remaining-requests": f"0 {SECRET}"},
    )
    body = {"model": "default", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    response = client.post(
        reverse("gateway_chat"),
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == status
    _assert_clean(response.content.decode(), f"the gateway's {status}")
    _assert_clean(json.dumps(dict(response.items())), f"the headers of the gateway's {status}")
    assert encoded not in response.content.decode()
    handler = logging.StreamHandler(sys.stderr)
    for record in caplog.records:
        _assert_clean(handler.format(record), f"log record of {record.name}")
