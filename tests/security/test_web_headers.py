"""Response headers in production: HTTPS only, no framing, a CSP that htmx can live with.

The test settings serve plain HTTP (like `bin/run`); these tests switch the production values
back on, and make a new Client so that the middleware reads them.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from gateway.services import token_create

PAGES = [
    "overview",
    "group_list",
    "router_settings",
    "usage",
    "token_list",
    "audit_log",
    "users",
    "provider_add",
    "config_import",
]


@pytest.fixture
def production(settings, db):
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    return Client()


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


class _InlineCode(HTMLParser):
    """Everything on a page that a CSP without 'unsafe-inline'/'unsafe-eval' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.htmx_config: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "meta" and attributes.get("name") == "htmx-config":
            self.htmx_config = json.loads(attributes["content"])
        for name, value in attrs:
            if name.startswith("on") or name.startswith(("hx-on", "data-hx-on")):
                self.found.append(f"{tag} {name}=")
            if name == "style":
                self.found.append(f"{tag} style=")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}=javascript:")
            if name in ("hx-vals", "hx-headers") and (value or "").lstrip().startswith("js:"):
                self.found.append(f"{tag} {name}=js:")


def test_page_cannot_be_framed_by_another_site(production):
    response = production.get("/login/", secure=True)
    assert response["X-Frame-Options"] == "DENY"
    assert _policy(response)["frame-ancestors"] == ["'none'"]


def test_csp_refuses_inline_script_eval_and_foreign_origins(production):
    policy = _policy(production.get("/login/", secure=True))
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)


def test_plain_http_request_is_redirected_to_https(production):
    response = production.get("/login/?next=/usage/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/login/?next=/usage/"


def test_only_the_health_check_answers_over_plain_http(production):
    assert production.get("/healthz").status_code in (200, 503)
    assert production.get("/v1/models").status_code == 301  # the gateway is HTTPS-only


def test_https_response_pins_https_with_hsts(production):
    response = production.get("/login/", secure=True)
    assert "max-age=31536000" in response["Strict-Transport-Security"]
    assert "includeSubDomains" in response["Strict-Transport-Security"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_session_and_csrf_cookies_never_travel_over_plain_http(production, db):
    from django.contrib.auth.models import User

    User.objects.create_user("ada", password="a-long-password-1")
    form = production.get("/login/", secure=True)
    assert form.cookies["csrftoken"]["secure"] and form.cookies["csrftoken"]["httponly"]
    response = production.post(
        "/login/", {"username": "ada", "password": "a-long-password-1"}, secure=True
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"] and response.cookies["sessionid"]["httponly"]


def test_pages_carry_no_inline_script_style_handler_or_eval(client, login_as, make_provider):
    """The CSP forbids them: a page that needed one would break in the browser."""
    login_as("admin")
    provider = make_provider(name="acme", base_url="https://api.example.com/v1")
    token, _ = token_create(name="app", actor="test")
    urls = [reverse(name) for name in PAGES]
    urls += [
        reverse("provider_detail", args=[provider.name]),
        reverse("provider_edit", args=["acme"]),
    ]
    anonymous = Client()
    for url in [*urls, reverse("login")]:
        response = (anonymous if url == reverse("login") else client).get(url)
        assert response.status_code == 200, url
        parser = _InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == [], url
        # htmx's own eval (hx-on, js: values) and its injected indicator <style> are off.
        assert parser.htmx_config is not None, url
        assert parser.htmx_config["allowEval"] is False, url
        assert parser.htmx_config["includeIndicatorStyles"] is False, url
