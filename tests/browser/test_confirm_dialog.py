"""Confirmations are asked in the page (a <dialog>), never with window.confirm(); Cancel and
Escape change nothing, Confirm does it; without JavaScript the forms still work."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from gateway.models import AccessToken
from gateway.services import token_create
from gateway.views.tokens import TOKEN_REVOKED
from providers import services
from providers.models import DefaultModel

from .conftest import make_user, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def setup(live_server, upstream, local_upstreams, context, page):
    provider = services.provider_create(
        name="acme", kind="openai", base_url=upstream.base_url + "/v1", api_key="sk-dlg-0123456789"
    )
    services.default_model_set(provider=provider, model="first", actor="test")
    services.default_model_set(provider=provider, model="second", actor="test")
    token_create(name="app", actor="test")
    sign_in(context, live_server, make_user("eddie", "editor"))
    native = []
    page.on("dialog", lambda dialog: (native.append(dialog.message), dialog.dismiss()))
    return live_server, native


def test_revoke_asks_in_a_dialog_and_cancel_or_escape_keep_the_token(page, setup):
    live_server, native = setup
    page.goto(f"{live_server.url}/tokens/")
    revoke = page.get_by_role("button", name="Revoke token app")
    dialog = page.get_by_role("dialog")
    revoke.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Revoke token app?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    revoke.click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert AccessToken.objects.get(name="app").revoked_at is None

    revoke.click()
    expect(dialog.get_by_role("button", name="Confirm")).to_be_focused()
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(TOKEN_REVOKED.format(name="app"))).to_be_visible()
    assert AccessToken.objects.get(name="app").revoked_at is not None
    assert native == [], "window.confirm() was used"


def test_revert_of_the_default_is_confirmed_in_the_dialog(page, setup):
    live_server, native = setup
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Revert").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(re.compile(r"Return the default model to acme/first\?"))
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Reverted: the default model is acme/first again.")).to_be_visible()
    assert DefaultModel.objects.get().model == "first"
    assert native == []


def test_without_javascript_revoke_still_works(browser, live_server, upstream, local_upstreams):
    token_create(name="app", actor="test")
    context = browser.new_context(java_script_enabled=False)
    try:
        sign_in(context, live_server, make_user("eddie", "editor"))
        page = context.new_page()
        page.goto(f"{live_server.url}/tokens/")
        expect(page.get_by_role("dialog")).to_be_hidden()
        page.get_by_role("button", name="Revoke token app").click()
        expect(page.get_by_text(TOKEN_REVOKED.format(name="app"))).to_be_visible()
        assert AccessToken.objects.get(name="app").revoked_at is not None
    finally:
        context.close()
