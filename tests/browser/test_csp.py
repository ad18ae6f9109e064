"""The Content-Security-Policy breaks nothing: every main page, and its htmx swaps, run in
Chromium without a single violation (no inline script or style, no eval)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from gateway.services import token_create
from providers import services

from .conftest import field, make_user, sign_in

pytestmark = pytest.mark.browser

# Runs before any script of the page: Playwright injects it, so the CSP does not apply to it.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""
PAGES = ["/", "/groups/", "/groups/router/", "/usage/", "/tokens/", "/audit/", "/users/"]
PAGES += ["/providers/add/", "/config/import/", "/providers/acme/", "/providers/acme/edit/"]


class Violations:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.console.append(message.text)

    def assert_none(self, where: str) -> None:
        recorded = self.page.evaluate("window.__cspViolations")
        assert recorded == [] and self.console == [], f"{where}: {recorded} {self.console}"


def test_main_pages_and_htmx_swaps_raise_no_csp_violation(
    page, context, live_server, upstream, local_upstreams
):
    admin = make_user("ada", "admin")
    provider = services.provider_create(
        name="acme", kind="openai", base_url=upstream.base_url + "/v1", api_key="sk-csp-0123456789"
    )
    services.default_model_set(provider=provider, model="m", actor="test")
    token_create(name="app", actor="test")
    violations = Violations(page)
    sign_in(context, live_server, admin)

    for path in PAGES:
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert page.evaluate("typeof htmx") == "object", path  # the external script ran
        violations.assert_none(path)

    # htmx swaps: a connection test, "Test all", and the kind-dependent form fields.
    page.goto(f"{live_server.url}/providers/acme/")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text(re.compile(r"ok · \d+ ms"))).to_be_visible()
    violations.assert_none("connection test")

    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Test all").click()
    expect(page.get_by_text("1 of 1 done")).to_be_visible()
    violations.assert_none("test all")

    page.goto(f"{live_server.url}/providers/add/")
    field(page, "Kind").select_option(label="Azure OpenAI")
    expect(field(page, "API version")).to_be_visible()
    violations.assert_none("kind fields")


def test_login_page_raises_no_csp_violation(page, live_server):
    violations = Violations(page)
    page.goto(f"{live_server.url}/login/")
    expect(field(page, "Username")).to_be_visible()
    assert page.evaluate("typeof htmx") == "object"
    violations.assert_none("/login/")
