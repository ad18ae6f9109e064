"""A stored key or header value never comes back out: not in a page, an htmx partial, a JSON
answer, a log line, an exception, an error report or an audit row, even when the provider
echoes it in its error body (as OpenAI's "Incorrect API key provided: sk-..." does)."""

from __future__ import annotations

import json
import logging
import sys
import traceback

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter
from django.views.decorators.debug import sensitive_variables

from providers import services
from providers.models import AuditEvent
from providers.services.tokens import token_create
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
    monkeypatch.setattr(services, "user_create", _crash)
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("root", is_superuser=True))
    data = {"form": "add", "username": "newbie", "password": password, "role": "viewer"}
    assert client.post(reverse("users"), data).status_code == 500
    report = _crash_report(caplog)
    assert "newbie" in report  # the report is there, and shows the harmless fields
    assert password not in report
