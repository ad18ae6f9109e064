"""A team admin on their team's page, with the keyboard only: create a token (its plaintext
and first calls shown once), then revoke it through the in-page dialog."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from accounts.services import team_create, team_member_set
from gateway.models import AccessToken
from gateway.views.tokens import TOKEN_REVOKED
from providers.models import RoutingGroup

from .conftest import PASSWORD, field, login

pytestmark = pytest.mark.browser


def test_a_team_admin_lands_on_the_team_and_runs_its_tokens_by_keyboard(page, live_server):
    RoutingGroup.objects.create(name="fast")
    red = team_create(name="red", display_name="Red team", allowed_models=["fast"], actor="t")
    lead = User.objects.create_user("lead", password=PASSWORD)
    team_member_set(team=red, user=lead, role="admin", actor="test")

    login(page, live_server, "lead")
    expect(page).to_have_url(f"{live_server.url}/teams/red/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Red team")
    expect(page.get_by_text("No tokens yet")).to_be_visible()

    field(page, "Name").focus()
    page.keyboard.type("red-bot")
    page.keyboard.press("Enter")
    plaintext = page.get_by_label("Token", exact=True)
    expect(plaintext).to_be_focused()
    value = plaintext.input_value()
    assert value.startswith("ra-")
    expect(page.locator("#snippet-curl")).to_contain_text(f"Bearer {value}")
    assert AccessToken.objects.get(name="red-bot").team == red

    page.reload()
    expect(page.get_by_label("Token", exact=True)).to_have_count(0)
    revoke = page.get_by_role("button", name="Revoke token red-bot")
    revoke.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Revoke token red-bot?")
    expect(dialog.get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text(TOKEN_REVOKED.format(name="red-bot"))).to_be_visible()
    assert AccessToken.objects.get(name="red-bot").revoked_at is not None
