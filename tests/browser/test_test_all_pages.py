""" "Test all" from page 2 of the overview, in Chromium: every enabled provider is tested, not
only the page shown; the page's rows take their results, the others' arrive in the progress
region, and a hanging provider holds up only its own row."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from providers.services import connection

from .conftest import sign_in

pytestmark = pytest.mark.browser

ANSWERING = 53  # more than a page (50) of providers that answer
HANG_TIMEOUT = 1.0  # seconds: the hanging provider's own timeout, all it may hold up
OK = re.compile(r"ok · \d+ ms")
NO_RELOAD_MARK = "window.__routingNoReload"


def _row(page: Page, name: str):
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))


def _model_lists(upstream) -> int:
    return sum(1 for r in list(upstream.requests) if r.path == "/v1/models")


def test_test_all_from_page_two_reaches_every_provider(
    page, live_server, context, admin_user, upstream_factory, make_provider
):
    # Several providers share one upstream: what matters is how many model lists each gets.
    shared = [upstream_factory(f"shared{n}") for n in range(3)]
    expected = dict.fromkeys(shared, 0)
    for i in range(ANSWERING):
        upstream = shared[i % len(shared)]
        make_provider(name=f"p{i:02d}", base_url=f"{upstream.base_url}/v1")
        expected[upstream] += 1
    hanging = upstream_factory("hanging")
    # Held far longer than the provider waits; stopping the upstream releases it.
    hanging.hang(30)
    make_provider(name="zz-hang", base_url=f"{hanging.base_url}/v1", timeout=HANG_TIMEOUT)
    expected[hanging] = 1
    total = ANSWERING + 1
    on_page = [f"p{i:02d}" for i in range(50, ANSWERING)] + ["zz-hang"]
    elsewhere = [f"p{i:02d}" for i in range(50)]

    sign_in(context, live_server, admin_user)
    page.goto(f"{live_server.url}/?page=2")
    expect(page.get_by_text(re.compile(r"^Page 2 of 2$"))).to_be_visible()
    expect(page.get_by_role("row")).to_have_count(1 + len(on_page))  # with the header row

    page.evaluate(f"{NO_RELOAD_MARK} = true")
    page.get_by_role("button", name="Test all").click()
    expect(page.get_by_text(re.compile(rf"\b{total} of {total} done, 1 failed\b"))).to_be_visible()
    expect(page.get_by_text("not tested (server busy)")).to_be_hidden()
    expect(page.get_by_text("testing…", exact=True)).to_have_count(0)
    assert page.evaluate(NO_RELOAD_MARK) is True

    # This page's rows show their own results, the hanging one its timeout.
    for name in on_page[:-1]:
        expect(_row(page, name).get_by_text(OK)).to_be_visible()
    timed_out = connection.TIMED_OUT.format(timeout=HANG_TIMEOUT)
    expect(_row(page, "zz-hang").get_by_text("error", exact=True)).to_be_visible()
    expect(_row(page, "zz-hang").get_by_text(timed_out)).to_be_visible()

    # The other pages' providers have no row here: their results are listed under the bar.
    page.get_by_text(f"{len(elsewhere)} on other pages of the table").click()
    # The <details> of the other pages (the header's folding menu is a group too).
    others = page.get_by_role("group").filter(has_text="on other pages of the table")
    items = others.get_by_role("listitem")
    expect(items.get_by_role("link")).to_have_text(elsewhere)
    expect(items.filter(has_text=OK)).to_have_count(len(elsewhere))

    assert {up.name: _model_lists(up) for up in expected} == {
        up.name: count for up, count in expected.items()
    }
