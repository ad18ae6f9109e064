"""The provider page in Chromium at 1280 px: "Test connection" updates what the page says
about the provider's models in place, without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from providers.models import Provider

from .conftest import sign_in

pytestmark = pytest.mark.browser

NO_RELOAD_MARK = "window.__routingNoReload"


def test_test_connection_refreshes_the_models_found_in_place(
    page: Page, live_server, context, editor, make_provider, upstream
):
    upstream.models = ["m-one", "m-two"]
    make_provider(name="alpha", kind="openai_compatible", base_url=upstream.base_url + "/v1")
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/providers/alpha/")
    heading = page.get_by_role("heading", name="Models found at the last test")
    expect(heading).to_have_count(0)  # never tested: nothing found yet
    page.evaluate(f"{NO_RELOAD_MARK} = true")

    page.get_by_role("button", name="Test connection").click()
    section = page.get_by_role("region", name="Models found at the last test (2)")
    expect(section).to_contain_text("m-one, m-two")
    assert upstream.last.method == "GET" and upstream.last.path == "/v1/models"

    # The upstream now lists another model: the next test shows it, still without a reload.
    upstream.models = ["m-one", "m-two", "m-three"]
    page.get_by_role("button", name="Test connection").click()
    section = page.get_by_role("region", name="Models found at the last test (3)")
    expect(section).to_contain_text("m-one, m-three, m-two")
    assert page.evaluate(NO_RELOAD_MARK) is True
    assert Provider.objects.get(name="alpha").discovered_models == ["m-one", "m-three", "m-two"]
