"""Browser tests: Debian's Chromium driven through Playwright's sync API, against live_server.

One browser for the whole session, a fresh context (cookies, storage) and page per test.
Playwright's own browser download cannot work offline, so /usr/bin/chromium is required.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM_MISSING = (
    f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
    "(`apt-get install -y chromium`; bin/test installs it)."
)
VIEWPORT = {"width": 1280, "height": 900}
PASSWORD = "browser-test-password"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
HERE = Path(__file__).resolve().parent
# The machine running the suite may be starved of CPU; these are ceilings, not waits. The
# first page a session loads also pays for Chromium's renderer and Django's cold imports.
TIMEOUT_MS = 30_000
NAVIGATION_TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)
_CALL_FAILED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Once started, Playwright's sync API leaves its event loop marked as running in the main
    # thread for as long as the browser lives (a whole session here). Tests that come after
    # it would then fail in asyncio.run() or async_to_sync(), so the browser tests run last;
    # their relative order, and everyone else's, is unchanged.
    ours = [item for item in items if HERE in Path(item.path).parents]
    for item in ours:
        item.add_marker(pytest.mark.browser)
    if ours:
        ids = {id(item) for item in ours}
        items[:] = [item for item in items if id(item) not in ids] + ours


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(scope="session")
def _sync_orm_beside_playwright(django_db_setup) -> Iterator[None]:
    # Between two sync calls Playwright keeps its asyncio loop marked as running in this
    # thread, so Django's async-safety check would refuse every ORM call the tests and the
    # fixtures make (SynchronousOnlyOperation). Those calls are plain synchronous code that
    # never runs inside the loop, so the check is a false alarm here. The variable lives
    # exactly as long as the browser, which runs after every other test; depending on
    # django_db_setup makes the test database outlive it (its teardown queries too).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="session")
def browser(_sync_orm_beside_playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    yield page
    if request.node.stash.get(_CALL_FAILED, False):
        RESULTS_DIR.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        page.screenshot(path=RESULTS_DIR / f"{name}.png", full_page=True)


# --- users ----------------------------------------------------------------------------------


def make_user(username: str, role: str) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def viewer(live_server) -> User:
    return make_user("vera", "viewer")


@pytest.fixture
def editor(live_server) -> User:
    return make_user("eddie", "editor")


@pytest.fixture
def admin_user(live_server) -> User:
    return make_user("ada", "admin")


# --- logging in -----------------------------------------------------------------------------


def field(page: Page, label: str) -> Locator:
    """The form field with this label. Django's as_field_group() ends a label with its label
    suffix (":"), hand-written labels do not; either way the whole label must match, so
    "Name" does not find "Username"."""
    return page.get_by_label(re.compile(rf"^{re.escape(label)}:?$"))


def login(page: Page, live_server, username: str, password: str = PASSWORD) -> None:
    """Log in through the login page, as a person would."""
    page.goto(f"{live_server.url}/login/")
    field(page, "Username").fill(username)
    field(page, "Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login/"))


def sign_in(context: BrowserContext, live_server, user: User) -> None:
    """Give the browser a session cookie without the round trips of the login form, for tests
    whose subject is not logging in."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    cookie = {"name": name, "value": client.cookies[name].value, "url": live_server.url}
    context.add_cookies([cookie])


def confirm_in_page(page: Page) -> None:
    """Answer the in-page confirmation (a <dialog>, never window.confirm())."""
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
