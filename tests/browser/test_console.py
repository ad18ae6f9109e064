"""No page writes to the console: no Content-Security-Policy violation, no error, no
warning, on every page of a dashboard with data, at 1280 and 390 px, including the htmx
swaps and the in-page confirmations. (test_csp.py checks the policy itself.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from providers.views.errors import CSRF_FAILED

from .conftest import make_user, sign_in
from .seed import LONG_NAME, seed
from .test_layout import PAGES

pytestmark = pytest.mark.browser

# Injected by Playwright before any script of the page, so the CSP does not apply to it.
RECORD = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
});
"""


class Console:
    def __init__(self, page: Page) -> None:
        self.page, self.messages = page, []
        page.add_init_script(RECORD)
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            self.messages.append(f"{message.type}: {message.text} ({message.location})")

    def assert_clean(self, where: str) -> None:
        violations = self.page.evaluate("window.__violations")
        assert violations == [] and self.messages == [], f"{where}: {violations} {self.messages}"


@pytest.mark.parametrize("width", [1280, 390])
def test_no_page_reports_anything_in_the_console(
    page, context, live_server, upstream, local_upstreams, width
):
    seed(upstream)
    sign_in(context, live_server, make_user("ada", "admin"))
    page.set_viewport_size({"width": width, "height": 900})
    console = Console(page)
    for path in [*PAGES, "/usage/?range=1h", "/usage/?range=30d", f"/providers/{LONG_NAME}/edit/"]:
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert page.evaluate("typeof htmx") == "object", path
        console.assert_clean(path)

    page.goto(live_server.url + "/")
    page.get_by_role("button", name="Test all").click()
    expect(page.get_by_text("3 of 3 done")).to_be_visible()
    console.assert_clean("test all")

    page.goto(live_server.url + "/usage/")
    page.get_by_label("Range").select_option("7d")
    page.wait_for_load_state("networkidle")
    console.assert_clean("usage filter swap")


def test_first_run_and_login_pages_report_nothing(page, live_server):
    console = Console(page)
    page.goto(live_server.url + "/")  # no user yet: the first-run page
    expect(page).to_have_url(live_server.url + "/setup/")
    console.assert_clean("/setup/")
    page.goto(live_server.url + "/login/")
    console.assert_clean("/login/")


def test_the_csrf_failure_page_reports_nothing(page, context, live_server, admin_user):
    # Django's own page (its inline <style> carries the policy's nonce): e.g. a login form
    # posted after its cookie is gone.
    console = Console(page)
    page.goto(live_server.url + "/login/")
    context.clear_cookies()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("whatever")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_contain_text("Forbidden")
    expect(page.get_by_role("alert")).to_have_text(CSRF_FAILED)
    # The browser reports the page's own 403; nothing else may appear.
    console.messages = [m for m in console.messages if "status of 403" not in m]
    console.assert_clean("CSRF failure page")
