"""Screenshots for a person to look at: the overview, the provider form, the token panel and
the usage page, at 1280 and 390 px, from a dashboard with data. Saved under
test-results/screenshots/ (git-ignored); each must show its page, whole and readable."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import RESULTS_DIR, field, make_user, sign_in
from .seed import seed

pytestmark = pytest.mark.browser

SCREENSHOTS = RESULTS_DIR / "screenshots"


@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_of_the_main_pages(
    page, context, live_server, upstream, local_upstreams, width
):
    seed(upstream)
    sign_in(context, live_server, make_user("ada", "admin"))
    page.set_viewport_size({"width": width, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str, heading: str) -> None:
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
        path = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=path, full_page=True)
        assert path.stat().st_size > 10_000, f"{path} looks empty"

    page.goto(live_server.url + "/")
    shot("overview", "Overview")
    page.goto(live_server.url + "/providers/add/")
    shot("provider-form", "New provider")
    page.goto(live_server.url + "/tokens/")
    field(page, "Name").fill(f"screenshot-{width}")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#snippet-python")).to_be_visible()
    shot("token-panel", "Access tokens")
    page.goto(live_server.url + "/usage/")
    shot("usage", "Usage")
