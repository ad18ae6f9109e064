"""Every page fits its window at 1280 and 390 px: nothing wider than the viewport, no button
or name wrapped over two lines, tables scroll inside their card, long names and base URLs
are cut with an ellipsis and shown whole on hover and focus, and the navigation folds."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import make_user, sign_in
from .seed import LONG_NAME, seed

pytestmark = pytest.mark.browser

WIDTHS = [1280, 390]
PAGES = ["/", "/groups/", "/groups/fast/", "/groups/router/", "/usage/", "/tokens/", "/audit/"]
PAGES += ["/users/", "/providers/add/", "/config/import/", "/config/env/"]
PAGES += ["/providers/openai-prod/", "/providers/openai-prod/edit/", f"/providers/{LONG_NAME}/"]

# Elements whose text takes more than one line: the distinct tops of their text's boxes.
WRAPPED = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.offsetParent !== null && el.textContent.trim())
  .filter((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0)
      .map((r) => Math.round(r.top)));
    return tops.size > 1;
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.fixture
def seeded(live_server, upstream, local_upstreams, context):
    seed(upstream)
    sign_in(context, live_server, make_user("ada", "admin"))
    return live_server


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_and_wraps_no_button(page, seeded, width):
    page.set_viewport_size({"width": width, "height": 900})
    for path in PAGES:
        response = page.goto(seeded.url + path)
        assert response is not None and response.status == 200, path
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{path} is {scroll_width} px wide at {width} px"
        wrapped = page.evaluate(WRAPPED, "button, .button, td .truncate, td .badge")
        assert wrapped == [], f"{path} at {width} px: {wrapped}"


@pytest.mark.parametrize("width", WIDTHS)
def test_long_name_and_url_are_cut_and_shown_whole_on_focus(page, seeded, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(seeded.url + "/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=LONG_NAME))
    url = row.locator("code.truncate")
    full = url.get_attribute("title")
    assert full and full.endswith("/for/a/while") and url.inner_text() == full
    clipped = "(el) => el.scrollWidth > el.clientWidth"
    assert url.evaluate(clipped), "the base URL is cut with an ellipsis"
    assert url.evaluate("(el) => getComputedStyle(el).textOverflow") == "ellipsis"
    name = row.get_by_role("link", name=LONG_NAME)
    assert name.get_attribute("title") == LONG_NAME
    url.focus()  # keyboard users see the whole URL as well
    assert not url.evaluate(clipped)
    # The table scrolls inside its card, the page does not.
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_navigation_folds_into_a_menu_on_a_small_screen(page, seeded):
    nav = page.get_by_role("navigation", name="Main")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(seeded.url + "/")
    expect(nav.get_by_role("link", name="Usage")).to_be_visible()
    expect(page.locator(".nav-fold > summary")).to_be_hidden()

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(seeded.url + "/")
    menu = page.locator(".nav-fold > summary")
    expect(menu).to_be_visible()
    expect(page.get_by_role("link", name="Usage")).to_be_hidden()
    menu.focus()
    page.keyboard.press("Enter")  # a <details> disclosure: keyboard and no JavaScript
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(page).to_have_url(seeded.url + "/usage/")


def test_keyboard_focus_is_visible_and_file_inputs_are_styled(page, seeded):
    page.goto(seeded.url + "/")
    page.get_by_role("link", name="Skip to content").focus()
    for _ in range(3):
        page.keyboard.press("Tab")  # the header's links, as a keyboard user moves
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and outline[1] != "0px", outline

    page.goto(seeded.url + "/config/import/")
    upload = page.locator('input[type="file"]').first
    button_border = upload.evaluate(
        "(el) => getComputedStyle(el, '::file-selector-button').borderTopColor"
    )
    accent = page.evaluate(
        "() => { const a = document.createElement('a'); document.body.append(a);"
        " const c = getComputedStyle(a).color; a.remove(); return c; }"
    )
    assert button_border == accent, "the file button is drawn like the other buttons"
