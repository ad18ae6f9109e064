"""Forms in Chromium, at 1280 and 390 px: a refused value is caught before the round trip
where the browser can (HTML `pattern`, `required`), and otherwise the server's answer shows
in place, every problem at once, beside its field and in a summary that takes the focus.

`form.noValidate = true` stands for a value the browser's check lets through (or a browser
without it): the server must still answer, and the answer must be shown, not dropped."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from gateway import services as tokens
from gateway.models import AccessToken
from providers import kinds, services
from providers.models import Provider, RoutingGroup
from providers.services import DeploymentSpec
from providers.validators import MODEL_ID_INVALID

from .conftest import confirm_in_page, field, sign_in

pytestmark = pytest.mark.browser

WIDTHS = [1280, 390]
TYPED_KEY = "sk-typed-in-browser-" + "0123456789abcdef"
NO_RELOAD_MARK = "window.__routingNoReload"


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def width(request, page: Page) -> int:
    page.set_viewport_size({"width": request.param, "height": 900})
    return request.param


def _skip_browser_check(page: Page, form_selector: str) -> None:
    page.locator(form_selector).evaluate("form => { form.noValidate = true; }")


def _focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def _requests_to(page: Page, path: str) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if path in r.url else None)
    return seen


def test_the_default_switcher_shows_a_refused_model_beside_the_field(
    page, live_server, context, editor, make_provider, upstream, width
):
    make_provider(name="alpha", kind="openai_compatible", base_url=upstream.base_url + "/v1")
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/")
    card = page.get_by_role("region", name="Default model")
    model = field(card, "Model")

    # Caught by the browser: nothing is sent.
    posts = _requests_to(page, "/default/")
    model.fill("bad model")
    card.get_by_role("button", name="Make default").click()
    assert model.evaluate("el => !el.validity.valid && el.validity.patternMismatch")
    assert posts == []

    # Let through by the browser: the server's 422 is swapped in, beside the field.
    _skip_browser_check(page, "#default-card form")
    page.evaluate(f"{NO_RELOAD_MARK} = true")
    card.get_by_role("button", name="Make default").click()
    confirm_in_page(page)
    errors = page.locator("#model-errors")
    expect(errors).to_contain_text(MODEL_ID_INVALID[:40])
    model = field(page.get_by_role("region", name="Default model"), "Model")
    expect(model).to_have_attribute("aria-invalid", "true")
    expect(model).to_have_value("bad model")
    expect(model).to_be_focused()
    assert page.evaluate(NO_RELOAD_MARK) is True
    assert posts, "the switch was never sent"
    assert not services.default_model_get()


def test_test_connection_fills_the_model_suggestions_without_a_reload(
    page, live_server, context, editor, make_provider, upstream, width
):
    upstream.models = ["m-one", "m-two", "m-three"]
    make_provider(name="alpha", kind="openai_compatible", base_url=upstream.base_url + "/v1")
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/providers/alpha/")
    options = page.locator("#model-options option")
    expect(options).to_have_count(0)
    page.evaluate(f"{NO_RELOAD_MARK} = true")
    page.get_by_role("button", name="Test connection").click()
    expect(options).to_have_count(3)
    values = options.evaluate_all("os => os.map(o => o.value)")
    assert values == ["m-one", "m-three", "m-two"]
    assert page.evaluate(NO_RELOAD_MARK) is True
    # The Model field is a picker of exactly these: the input lists them.
    expect(field(page.get_by_role("region", name="Default model"), "Model")).to_have_attribute(
        "list", "model-options"
    )


def test_the_model_picker_accepts_a_model_that_is_not_suggested(
    page, live_server, context, editor, make_provider, upstream, width
):
    provider = make_provider(
        name="alpha", kind="openai_compatible", base_url=upstream.base_url + "/v1"
    )
    Provider.objects.filter(pk=provider.pk).update(discovered_models=["m-one", "m-two"])
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/")
    card = page.get_by_role("region", name="Default model")
    expect(card.locator("#model-options option")).to_have_count(2)
    model = field(card, "Model")
    model.focus()
    page.keyboard.type("my-own/model:7b")
    page.keyboard.press("Enter")
    confirm_in_page(page)
    expect(card.get_by_text("alpha/my-own/model:7b", exact=True)).to_be_visible()


def test_an_empty_provider_form_lists_every_problem_at_once(
    page, live_server, context, editor, width
):
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/providers/add/?kind=openai")
    # Kind comes first.
    labels = page.locator("form.card label").all_inner_texts()
    assert labels[0] == "Kind"
    page.get_by_role("button", name="Save").click()
    expect(field(page, "Name")).to_be_focused()  # the browser's own check, first
    assert field(page, "Name").evaluate("el => el.validity.valueMissing")

    _skip_browser_check(page, "form.card")
    page.get_by_role("button", name="Save").click()
    summary = page.get_by_role("alert").filter(has_text="Nothing was saved")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    key_missing = kinds.API_KEY_REQUIRED.format(label="OpenAI")
    expect(summary.get_by_role("link", name="Name: This field is required.")).to_be_visible()
    key_link = summary.get_by_role("link", name=f"API key: {key_missing}")
    expect(key_link).to_be_visible()
    key_link.click()
    expect(field(page, "API key")).to_be_focused()
    expect(page.locator("#id_api_key_error")).to_contain_text(key_missing)
    assert not Provider.objects.exists()


def test_the_provider_form_tests_the_typed_values_before_saving(
    page, live_server, context, editor, upstream, local_upstreams, width
):
    upstream.models = ["m1", "m2"]
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/providers/add/")
    field(page, "Kind").select_option(label="OpenAI-compatible endpoint")
    expect(field(page, "Base URL")).to_have_attribute(
        "placeholder", kinds.KINDS["openai_compatible"].base_url_example
    )
    field(page, "Base URL").fill(upstream.base_url + "/v1")
    field(page, "API key").fill(TYPED_KEY)
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Connection works")).to_be_visible()
    expect(page.get_by_text("OK: 2 models found")).to_be_visible()
    assert upstream.last.headers["authorization"] == f"Bearer {TYPED_KEY}"
    # The form stays as typed (the key too, in this page only), and nothing was saved.
    expect(field(page, "API key")).to_have_value(TYPED_KEY)
    assert TYPED_KEY not in page.locator("#draft-test").inner_html()
    assert not Provider.objects.exists()


def test_the_token_form_shows_a_bad_name_and_unknown_models_together(
    page, live_server, context, editor, width
):
    RoutingGroup.objects.create(name="fast")
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/tokens/")
    field(page, "Name").fill("Bad Name")
    field(page, "Allowed models").fill("fast nosuch")
    page.get_by_role("button", name="Create token").click()
    assert field(page, "Name").evaluate("el => el.validity.patternMismatch")

    _skip_browser_check(page, "form.card")
    page.get_by_role("button", name="Create token").click()
    summary = page.get_by_role("alert").filter(has_text="Nothing was saved")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name=re.compile(r"^Name: "))).to_be_visible()
    unknown = tokens.UNKNOWN_ALLOWED_GROUP.format(entry="nosuch")
    expect(summary.get_by_role("link", name=f"Allowed models: {unknown}")).to_be_visible()
    expect(page.locator("#id_allowed_models_error")).to_contain_text(unknown)
    assert not AccessToken.objects.exists()


def test_the_group_editor_shows_a_missing_fallback_beside_its_field(
    page, live_server, context, editor, make_provider, upstream, width
):
    provider = make_provider(
        name="pa", kind="openai_compatible", base_url=upstream.base_url + "/v1"
    )
    Provider.objects.filter(pk=provider.pk).update(discovered_models=["m1", "m2"])
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/groups/add/")
    field(page, "Name").fill("fast")
    field(page, "Provider").select_option("pa")
    model = field(page, "Model")
    expect(model).to_have_attribute("list", re.compile(r"^models-\d+$"))
    model.fill("bad model")
    field(page, "Fallback groups").fill("nosuch")
    page.get_by_role("button", name="Save", exact=True).last.click()
    assert model.evaluate("el => el.validity.patternMismatch")

    model.fill("m1")
    page.get_by_role("button", name="Save", exact=True).last.click()
    summary = page.get_by_role("alert").filter(has_text="Nothing was saved")
    expect(summary).to_be_focused()
    link = summary.get_by_role("link", name=re.compile(r"^Fallback groups: .*nosuch"))
    expect(link).to_be_visible()
    link.click()
    expect(field(page, "Fallback groups")).to_be_focused()
    assert not RoutingGroup.objects.exists()


def test_test_group_shows_its_failure_in_place(
    page, live_server, context, editor, make_provider, upstream, width
):
    make_provider(name="pa", kind="openai_compatible", base_url=upstream.base_url + "/v1")
    services.group_save(name="fast", deployments=[DeploymentSpec("pa", "m1")])
    upstream.fail_next(500, {"error": {"message": "upstream broke"}}, times=10)
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/groups/")
    page.evaluate(f"{NO_RELOAD_MARK} = true")
    page.get_by_role("button", name="Test group").click()
    outcome = page.locator("#group-test-fast")
    expect(outcome).to_contain_text("500")
    assert page.evaluate(NO_RELOAD_MARK) is True


def test_an_error_answer_that_is_not_a_form_is_announced_not_dropped(
    page, live_server, context, editor, make_provider, upstream, width
):
    make_provider(name="alpha", kind="openai_compatible", base_url=upstream.base_url + "/v1")
    make_provider(name="beta", kind="openai_compatible", base_url=upstream.base_url + "/v1")
    sign_in(context, live_server, editor)
    page.goto(live_server.url + "/")
    Provider.objects.filter(name="beta").delete()  # gone while the page was open
    page.evaluate(f"{NO_RELOAD_MARK} = true")
    field(page.get_by_role("region", name="Default model"), "Provider").select_option("beta")
    notice = page.locator("#messages").get_by_role("alert")
    expect(notice).to_contain_text("HTTP 404")
    expect(notice).to_contain_text("reload the page")
    assert page.evaluate(NO_RELOAD_MARK) is True
