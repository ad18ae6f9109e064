"""The dashboard as a person uses it, in Chromium: log in, add a provider, test it, switch
and revert the default model.

The page is driven by accessible names only (labels, roles, button names): they are the
contract the templates keep, for screen readers as much as for these tests.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error, Locator, Page, Request, expect

from providers import kinds

from .conftest import confirm_in_page, field, login, sign_in

pytestmark = pytest.mark.browser

FIRST_KEY = "sk-browser-test-key-0123456789"
SECOND_KEY = "sk-browser-second-key-9876543210"
MODEL = "gpt-4o-mini"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "overview.png"
# Set by the page before an htmx request; a full page load would wipe it.
NO_RELOAD_MARK = "window.__routingNoReload"


class Pages:
    """The HTML of every page and htmx partial the browser received, to check for secrets."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.html: list[tuple[str, str]] = []
        self.unread: list[str] = []
        self._pending: set[Request] = set()
        page.on("request", self._started)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._failed)

    def _ours(self, request: Request) -> bool:
        return (
            request.url.startswith(self.origin)
            and "/static/" not in request.url
            and request.resource_type in ("document", "xhr", "fetch")
        )

    def _started(self, request: Request) -> None:
        if self._ours(request):
            self._pending.add(request)

    def _failed(self, request: Request) -> None:
        self._pending.discard(request)  # cancelled: nothing reached the page

    def _finished(self, request: Request) -> None:
        if not self._ours(request):
            return
        try:
            response = request.response()
            # A redirect has no body; the page it leads to is a request of its own.
            if response is not None and not 300 <= response.status < 400:
                self.html.append((request.url, response.text()))
        except Error as exc:
            self.unread.append(f"{request.url}: {exc}")  # raised here, it would be lost
        finally:
            self._pending.discard(request)

    def snapshot(self) -> None:
        """The DOM as it stands, htmx swaps included. Call it after each step, before the
        next navigation: the browser drops a page's bodies when it leaves the page, so this
        also waits until every body so far has been read."""
        self.html.append((self.page.url + " (DOM)", self.page.content()))
        # Playwright delivers the events, and runs the handlers, while the test makes calls.
        deadline = time.monotonic() + 30
        while self._pending and time.monotonic() < deadline:
            self.page.evaluate("0")
        assert not self._pending, f"never finished: {[r.url for r in self._pending]}"
        assert not self.unread, f"bodies not read: {self.unread}"

    def assert_absent(self, *secrets: str) -> None:
        self.snapshot()
        for secret in secrets:
            leaks = [url for url, html in self.html if secret in html]
            assert not leaks, f"{secret!r} appears in {leaks}"


def add_provider(
    page: Page, pages: Pages, *, name: str, kind_label: str, base_url: str, api_key: str
) -> None:
    page.get_by_role("link", name="Add provider").first.click()
    kind = field(page, "Kind")
    kind.select_option(label=kind_label)
    chosen = next(k for k in kinds.KINDS.values() if k.label == kind_label)
    # The kind's fields are swapped in by htmx; typing before the swap lands would be lost.
    expect(field(page, "Base URL")).to_have_attribute(
        "placeholder", chosen.default_base_url or chosen.base_url_example
    )
    field(page, "Name").fill(name)
    field(page, "Base URL").fill(base_url)
    field(page, "API key").fill(api_key)
    pages.snapshot()  # before Save leaves the form and its kind-fields partial behind
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()
    pages.snapshot()


def default_card(page: Page) -> Locator:
    return page.get_by_role("region", name="Default model")


def make_default(page: Page, model: str) -> None:
    field(page, "Model").fill(model)
    page.get_by_role("button", name="Make default").click()
    confirm_in_page(page)


def go_to_overview(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()


def test_login_page_loads_htmx_and_logs_in(page, live_server, editor):
    page.goto(f"{live_server.url}/login/")
    expect(field(page, "Username")).to_be_visible()
    assert page.evaluate("typeof htmx") == "object"
    login(page, live_server, editor.username)
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()


def test_editor_adds_tests_and_switches_default(
    page, live_server, editor, upstream_factory, local_upstreams
):
    first, second = upstream_factory("alpha"), upstream_factory("beta")

    login(page, live_server, editor.username)
    # Recorded from here: no key exists before, and the snapshot covers the page now shown.
    pages = Pages(page, live_server.url)
    expect(page.get_by_text("No providers yet")).to_be_visible()
    pages.snapshot()

    add_provider(
        page,
        pages,
        name="alpha",
        kind_label="OpenAI-compatible endpoint",
        base_url=f"{first.base_url}/v1",
        api_key=FIRST_KEY,
    )

    page.evaluate(f"{NO_RELOAD_MARK} = true")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text(re.compile(r"ok · \d+ ms"))).to_be_visible()
    assert page.evaluate(NO_RELOAD_MARK) is True
    assert first.last.path == "/v1/models"
    assert first.last.headers["authorization"] == f"Bearer {FIRST_KEY}"
    pages.snapshot()

    make_default(page, MODEL)
    expect(default_card(page).get_by_text(f"alpha/{MODEL}", exact=True)).to_be_visible()
    pages.snapshot()
    go_to_overview(page)
    expect(default_card(page).get_by_text(f"alpha/{MODEL}", exact=True)).to_be_visible()
    pages.snapshot()

    add_provider(
        page,
        pages,
        name="beta",
        kind_label="OpenAI-compatible endpoint",
        base_url=f"{second.base_url}/v1",
        api_key=SECOND_KEY,
    )
    make_default(page, "beta-model-a")
    expect(default_card(page).get_by_text("beta/beta-model-a", exact=True)).to_be_visible()
    pages.snapshot()

    go_to_overview(page)
    page.evaluate(f"{NO_RELOAD_MARK} = true")
    page.get_by_role("button", name="Test all").click()
    expect(page.get_by_text("2 of 2 done")).to_be_visible()
    for name in ("alpha", "beta"):
        # Each result lands in its provider's row of the table, as it arrives.
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name))
        expect(row.get_by_text(re.compile(r"ok · \d+ ms"))).to_be_visible()
    assert page.evaluate(NO_RELOAD_MARK) is True
    assert second.last.path == "/v1/models"
    pages.snapshot()

    page.get_by_role("button", name="Revert").click()
    confirm_in_page(page)
    expect(default_card(page).get_by_text(f"alpha/{MODEL}", exact=True)).to_be_visible()
    pages.snapshot()

    if os.environ.get("ROUTING_SCREENSHOT") == "1":
        page.reload()  # without the flash message of the revert
        expect(default_card(page).get_by_text(f"alpha/{MODEL}", exact=True)).to_be_visible()
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOT, full_page=True)

    pages.assert_absent(FIRST_KEY, FIRST_KEY[4:-4], SECOND_KEY, SECOND_KEY[4:-4])


def test_kind_choice_swaps_the_fields(page, live_server, context, editor):
    sign_in(context, live_server, editor)
    page.goto(f"{live_server.url}/providers/add/")
    kind = field(page, "Kind")
    api_version = field(page, "API version")
    base_url = field(page, "Base URL")
    expect(api_version).to_have_count(0)

    kind.select_option(label="Azure OpenAI")
    expect(api_version).to_be_visible()

    ollama = kinds.KINDS["ollama"].default_base_url
    kind.select_option(label="Ollama (local)")
    expect(api_version).to_have_count(0)
    # Pre-filled or shown as the default: either way the person sees the URL in the field.
    shown = page.locator(f"[value='{ollama}'], [placeholder='{ollama}']")
    expect(base_url.and_(shown)).to_be_visible()


def test_viewer_sees_no_add_provider(page, live_server, context, viewer, make_provider):
    make_provider(name="acme")
    sign_in(context, live_server, viewer)
    page.goto(live_server.url)
    # Viewers may run connection tests: the row and its controls are there.
    expect(page.get_by_role("button", name="Test connection")).to_be_visible()
    for name in ("Add provider", "Make default"):
        control = page.get_by_role("link", name=name).or_(page.get_by_role("button", name=name))
        expect(control).to_have_count(0)


def test_add_provider_is_reachable_by_keyboard(page, live_server, context, editor):
    sign_in(context, live_server, editor)
    page.goto(live_server.url)
    add = page.get_by_role("link", name="Add provider").first
    expect(add).to_be_visible()
    for _ in range(20):
        page.keyboard.press("Tab")
        if add.evaluate("element => element === document.activeElement"):
            break
    expect(add).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="New provider")).to_be_visible()
