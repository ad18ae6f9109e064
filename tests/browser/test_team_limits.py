"""A global admin sets a team's budget on its page, by its labelled fields, and sees the bar
of what the team's tokens spent against it, in words too."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Team
from accounts.services import team_create
from gateway.services import token_create
from limits.rules import Budget
from usage import request_log

from .conftest import RESULTS_DIR, login

SCREENSHOTS = RESULTS_DIR / "screenshots"

pytestmark = pytest.mark.browser


def test_an_admin_sets_a_teams_budget_and_sees_the_bar(page, live_server, admin_user):
    red = team_create(name="red", display_name="Red team", actor="test")
    token_create(name="red-bot", team=red, actor="test")
    item = {
        "at": timezone.now(),
        "token_name": "red-bot",
        "requested_model": "fast",
        "provider": "acme",
        "model": "m",
        "ok": True,
        "status": 200,
        "latency_ms": 9.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": 6.25,
    }
    request_log.write([dict(item), dict(item)])

    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/teams/red/")
    limits = page.locator("section", has=page.get_by_role("heading", name="Limits", exact=True))
    expect(limits.get_by_text("No limits set")).to_be_visible()

    form = limits.locator("form")
    form.get_by_label("Budget (USD)").fill("50")
    form.get_by_label("Budget period").select_option("month")
    form.get_by_label("Requests per minute").fill("600")
    form.get_by_role("button", name="Save limits").click()

    expect(page.get_by_text("Saved the limits of team red")).to_be_visible()
    team = Team.objects.get(name="red")
    assert team.budget == Budget(Decimal("50"), "month") and team.rpm == 600
    limits = page.locator("section", has=page.get_by_role("heading", name="Limits", exact=True))
    bar = limits.get_by_role("meter", name="Budget")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("value", "12.5")
    expect(bar).to_have_attribute("max", "50")
    expect(limits).to_contain_text("$12.50 of $50.00 this month (25%)")
    expect(limits).to_contain_text("resets")
    expect(limits.get_by_role("meter", name="Requests per minute")).to_have_attribute("max", "600")
    # The form shows what is set now.
    expect(form.get_by_label("Budget (USD)")).to_have_value("50")
    # For a person to look at, as test_screenshots.py's.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    limits.screenshot(path=SCREENSHOTS / "team-limits-1280.png")
