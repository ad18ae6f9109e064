"""A team's admin signs in through the real OpenID provider (oidc-provider under Node), with
no global role: the IdP group gives the team (ROUTING_OIDC_TEAM_MAP), the sign-in lands on
the team's page, and a token made there belongs to the team and works on /v1."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from accounts import services as account_services
from gateway.models import AccessToken

from .conftest import field

pytestmark = pytest.mark.browser


@pytest.fixture
def red(idp):
    return account_services.team_create(name="red", display_name="Red team", actor="test")


def _sign_in_at_the_idp(page: Page, live_server, login: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    # The provider's own login form (oidc-provider's development interactions).
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any")
    page.get_by_role("button", name="Sign-in").click()


def test_a_team_admin_signs_in_lands_on_the_team_and_creates_its_token(page, live_server, idp, red):
    idp.accounts({"tara": ["red-leads"]})  # red-leads=red:admin, and no global role

    _sign_in_at_the_idp(page, live_server, "tara")

    expect(page).to_have_url(f"{live_server.url}/teams/red/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Red team")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Create token"))
    field(form, "Name").fill("red-ci")
    form.get_by_role("button", name="Create token").click()

    plaintext = page.get_by_label("Token", exact=True).input_value()
    assert plaintext.startswith("ra-")
    token = AccessToken.objects.get(name="red-ci")
    assert token.team == red
    # The plaintext is a working key of the gateway.
    models = httpx.get(
        f"{live_server.url}/v1/models", headers={"Authorization": f"Bearer {plaintext}"}
    )
    assert models.status_code == 200, models.text

    # Shown once: the team's page lists the token, never its secret again.
    page.goto(f"{live_server.url}/teams/red/")
    expect(page.get_by_role("cell", name="red-ci", exact=True)).to_be_visible()
    assert plaintext not in page.content()
    expect(page.get_by_label("Token", exact=True)).to_have_count(0)


def test_a_team_member_lands_on_the_team_and_cannot_create_tokens(page, live_server, idp, red):
    idp.accounts({"milo": ["team-red"]})  # team-red=red:member

    _sign_in_at_the_idp(page, live_server, "milo")

    expect(page).to_have_url(f"{live_server.url}/teams/red/")
    expect(page.get_by_role("heading", name="Tokens")).to_be_visible()
    expect(page.get_by_role("button", name="Create token")).to_have_count(0)
    # Signed in, yet nothing global: the gateway's token list is refused.
    response = page.goto(f"{live_server.url}/tokens/")
    assert response is not None and response.status == 403
