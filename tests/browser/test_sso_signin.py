"""A person clicks "Sign in with <name>" on the login page, signs in at a real OpenID
provider (oidc-provider under Node, on 127.0.0.1) and lands on the overview with the role
their IdP group maps to."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from accounts import sso
from accounts.roles import user_role

pytestmark = pytest.mark.browser


def test_sign_in_with_the_identity_provider(page, live_server, idp):
    idp.accounts({"alice": ["llm-editors"]})

    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    # The provider's own login form (oidc-provider's development interactions).
    page.locator('input[name="login"]').fill("alice")
    page.locator('input[name="password"]').fill("any")
    page.get_by_role("button", name="Sign-in").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".who")).to_have_text("Alice · editor")
    user = User.objects.get(username=sso.username_for(idp.issuer, "alice"))
    assert user_role(user) == "editor"


def test_no_mapped_group_shows_the_refusal_page(page, live_server, idp):
    idp.accounts({"bob": ["unrelated"]})

    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.locator('input[name="login"]').fill("bob")
    page.locator('input[name="password"]').fill("any")
    page.get_by_role("button", name="Sign-in").click()

    expect(page.get_by_role("heading", name="Sign-in refused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("in no group that Routing Admin maps")
    page.get_by_role("link", name="Back to the login page").click()
    expect(page.get_by_role("link", name="Sign in with Test IdP")).to_be_visible()
