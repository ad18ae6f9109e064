"""A team's limits on its page: set by a global admin (errors beside their field, audited),
its use against them (all its tokens together) as bars, what they refused; the compact bars
of /teams/; the queries both pages cost."""

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Team
from gateway import services as token_services
from gateway.models import AccessToken
from limits.rules import BUDGET_BAD, MAX_PARALLEL_BAD, Budget
from providers.models import AuditEvent, RoutingGroup
from usage import request_log

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-42"
NO_LIMITS = {"rpm": "", "tpm": "", "max_parallel": "", "budget_usd": "", "budget_period": "month"}
LABELS = {
    "rpm": "Requests per minute",
    "tpm": "Tokens per minute",
    "max_parallel": "Concurrent requests",
    "budget_usd": "Budget (USD)",
    "budget_period": "Budget period",
}


@pytest.fixture
def world(make_provider):
    make_provider(name="acme")
    RoutingGroup.objects.create(name="fast")
    users = {}
    for name in ("member", "lead", "viewer", "editor", "admin"):
        users[name] = User.objects.create_user(name, password=PASSWORD)
        if name in ("viewer", "editor", "admin"):
            users[name].groups.add(Group.objects.get_or_create(name=name)[0])
    red = services.team_create(name="red", display_name="Red team", actor="test")
    blue = services.team_create(name="blue", actor="test")
    services.team_member_set(team=red, user=users["member"], role="member", actor="test")
    services.team_member_set(team=red, user=users["lead"], role="admin", actor="test")
    token_services.token_create(name="red-bot", team=red, actor="test")
    token_services.token_create(name="red-ci", team=red, actor="test")
    token_services.token_create(name="blue-bot", team=blue, actor="test")
    return users


@pytest.fixture
def as_(client, world):
    def login(name: str):
        client.force_login(world[name])
        return client

    return login


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _limits(html: str) -> str:
    match = re.search(r'aria-labelledby="limits-heading">(.*?)</section>', html, re.S)
    assert match, "no Limits section"
    return match.group(1)


def _field_errors(html: str, field_id: str) -> str:
    match = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', html, re.S)
    assert match, f"no errors beside {field_id}"
    return _text(match.group(1))


def _log(token: str, count: int = 1, *, at=None, **fields) -> None:
    base = {
        "at": at or timezone.now(),
        "token_name": token,
        "requested_model": "fast",
        "provider": "acme",
        "model": "gpt-4o-mini",
        "ok": True,
        "status": 200,
        "latency_ms": 100.0,
        "prompt_tokens": 100,
        "completion_tokens": 20,
    }
    request_log.write([{**base, **fields} for _ in range(count)])


def _refuse(token: str, reason: str, *, at=None) -> None:
    refused = {"provider": "", "model": "", "ok": False, "status": 429, "latency_ms": 0.0}
    _log(token, at=at, error=reason, prompt_tokens=None, completion_tokens=None, **refused)


def test_a_team_without_limits_says_so(as_):
    html = _limits(as_("member").get(reverse("team_detail", args=["red"])).content.decode())
    assert "No limits set" in _text(html)
    assert "Nothing refused in the last 24 hours" in _text(html)


def test_an_admin_sets_the_teams_limits_with_labelled_fields(as_):
    client = as_("admin")
    page = reverse("team_detail", args=["red"])
    html = client.get(page).content.decode()
    form = _limits(html)
    for name, label in LABELS.items():
        assert f'<label for="id_team_{name}">{label}</label>' in form, label
    assert f'action="{reverse("team_limits", args=["red"])}"' in form
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "two elements share an id"
    data = {**NO_LIMITS, "rpm": "600", "tpm": "100000", "budget_usd": "50"}
    response = client.post(reverse("team_limits", args=["red"]), data)
    assert response.status_code == 302 and response.url == page
    team = Team.objects.get(name="red")
    assert (team.rpm, team.tpm, team.max_parallel) == (600, 100000, None)
    assert team.budget == Budget(Decimal("50"), "month")
    event = AuditEvent.objects.get(action="team.update", target="team:red")
    assert event.changes == {
        "rpm": [None, 600],
        "tpm": [None, 100000],
        "budget": [None, "50/month"],
    }
    again = client.get(page).content.decode()
    assert "Saved the limits of team red: 600 requests per minute" in again
    assert 'name="rpm" value="600"' in again and 'name="budget_usd" value="50"' in again


def test_bad_team_limits_are_shown_beside_their_fields(as_):
    data = {**NO_LIMITS, "max_parallel": "0", "budget_usd": "1e12"}
    response = as_("admin").post(reverse("team_limits", args=["red"]), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert MAX_PARALLEL_BAD in _field_errors(html, "id_team_max_parallel")
    assert BUDGET_BAD in _field_errors(html, "id_team_budget_usd")
    assert 'href="#id_team_budget_usd"' in html
    assert Team.objects.get(name="red").limits.max_parallel is None


@pytest.mark.parametrize("who", ["member", "lead", "viewer", "editor"])
def test_only_a_global_admin_sets_a_teams_limits(as_, who):
    client = as_(who)
    html = client.get(reverse("team_detail", args=["red"])).content.decode()
    assert "Change the team's limits" not in html
    response = client.post(reverse("team_limits", args=["red"]), {**NO_LIMITS, "rpm": "1"})
    assert response.status_code == 403
    assert Team.objects.get(name="red").rpm is None


def test_the_teams_use_is_its_tokens_together(as_):
    services.team_update(
        team=Team.objects.get(name="red"),
        rpm=10,
        tpm=1000,
        max_parallel=4,
        budget=Budget(Decimal("20"), "total"),
        actor="test",
    )
    _log("red-bot", 2, cost=1.0)
    _log("red-ci", 1, cost=2.0)
    _log("red-ci", 1, at=timezone.now() - timedelta(days=40), cost=4.0)  # total: counted
    _log("blue-bot", 5, cost=100.0)  # another team's
    _refuse("red-ci", "Rate limit reached: team 'red' may make 10 requests per minute.")
    _refuse("blue-bot", "blue's")
    text = _text(_limits(as_("member").get(reverse("team_detail", args=["red"])).content.decode()))
    assert "3 of 10 requests in the last minute (30%)" in text
    assert "360 of 1,000 tokens in the last minute (36%)" in text
    assert "$8.00 of $20.00 in total (40%)" in text and "never resets" in text
    assert "At most 4 at once" in text
    assert "1 refused in the last 24 hours" in text
    assert "red-ci" in text and "team 'red' may make 10" in text and "blue's" not in text


def test_a_teams_tokens_rows_show_their_own_limits(as_):
    token = AccessToken.objects.get(name="red-bot")
    token_services.token_limits_set(token=token, rpm=5, actor="test")
    _log("red-bot", 1)
    html = as_("member").get(reverse("team_detail", args=["red"])).content.decode()
    row = re.search(r'<tr id="token-red-bot">(.*?)</tr>', html, re.S).group(1)
    assert "1/5 requests a minute" in _text(row)
    assert 'href="/teams/red/tokens/red-bot/"' in row


def test_the_team_list_shows_each_teams_use_compactly(as_):
    services.team_update(team=Team.objects.get(name="red"), rpm=10, actor="test")
    _log("red-bot", 4)
    html = as_("viewer").get(reverse("team_list")).content.decode()
    assert '<th scope="col">Limits <span class="muted">(use)</span></th>' in html
    red = _text(re.search(r'<tr id="team-red">(.*?)</tr>', html, re.S).group(1))
    blue = _text(re.search(r'<tr id="team-blue">(.*?)</tr>', html, re.S).group(1))
    assert "4/10 requests a minute" in red
    assert "no limits" in blue


def _add_tokens(world, count: int) -> None:
    red = Team.objects.get(name="red")
    for i in range(count):
        budget = Budget(Decimal("3"), ["day", "week", "month", "total"][i % 4])
        token_services.token_create(name=f"many-{i}", team=red, rpm=9, budget=budget, actor="t")
        _log(f"many-{i}", 1, cost=0.5)
        team = services.team_create(name=f"team-{i}", actor="t")
        services.team_update(team=team, tpm=50, actor="t")
    for i in range(0, count, 2):
        _refuse(f"many-{i}", "over")


def test_the_team_list_costs_the_same_queries_however_many_teams(
    as_, world, django_assert_num_queries
):
    client = as_("viewer")
    with django_assert_num_queries(8) as before:
        client.get(reverse("team_list"))
    _add_tokens(world, 14)
    with django_assert_num_queries(len(before.captured_queries)):
        assert client.get(reverse("team_list")).status_code == 200


@pytest.mark.parametrize("who", ["member", "admin"])
def test_the_team_page_costs_the_same_queries_with_limits_and_refusals(
    as_, world, django_assert_num_queries, who
):
    client = as_(who)
    url = reverse("team_detail", args=["red"])
    _refuse("red-bot", "over")
    client.get(url)  # the first request may pay for something once
    with django_assert_num_queries(12 if who == "admin" else 11) as before:
        client.get(url)
    _add_tokens(world, 24)  # more refusals than the list shows: the count is read too
    with django_assert_num_queries(len(before.captured_queries) + 1):
        html = client.get(url).content.decode()
    assert "13 refused in the last 24 hours, the latest 10 here" in _text(html)
