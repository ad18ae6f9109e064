"""The usage page per team: who may open it for which team, the team filter over every
aggregate and every range (from the log and from the roll-ups), the "By team" table, and a
query count that a team costs at most one more query of."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory

from accounts import services as accounts
from accounts.models import Team
from accounts.roles import ROLE_REQUIRED, TEAM_REQUIRED
from gateway.services import token_create, token_revoke
from tests.usage.test_usage import HX, URL, _queries, _text, log
from usage.views import usage

pytestmark = pytest.mark.django_db

RANGES = ("1h", "24h", "7d", "30d")


@pytest.fixture
def world(db):
    """Teams red (tokens red-app, and red-old, revoked) and blue (blue-app); a global token
    "app"; a red member, a red team admin, a blue member, a viewer, and nobody's user."""
    red = accounts.team_create(name="red", actor="test")
    blue = accounts.team_create(name="blue", actor="test")
    accounts.team_create(name="empty", actor="test")
    token_create(name="red-app", team=red, actor="test")
    old, _ = token_create(name="red-old", team=red, actor="test")
    token_revoke(token=old, actor="test")
    token_create(name="blue-app", team=blue, actor="test")
    token_create(name="app", actor="test")
    people = {}
    for username, team, role in (
        ("member", red, "member"),
        ("team_admin", red, "admin"),
        ("blue_member", blue, "member"),
    ):
        people[username] = User.objects.create_user(username)
        accounts.team_member_set(team=team, user=people[username], role=role, actor="test")
    people["viewer"] = User.objects.create_user("viewer")
    people["viewer"].groups.add(Group.objects.get_or_create(name="viewer")[0])
    people["nobody"] = User.objects.create_user("nobody")
    # Red: 3 + 1 (an error) on red-app, 2 on the revoked red-old; blue: 5; global: 7. Each
    # row 10 + 5 tokens at $0.001. Ten minutes ago, so every range holds them.
    log(3, token_name="red-app")
    log(1, token_name="red-app", ok=False, status=502, provider="beta", model="m2")
    log(2, token_name="red-old", model="old-model")
    log(5, token_name="blue-app", provider="blue-provider", model="blue-model")
    log(7, token_name="app")
    return people


def _as(world, person: str) -> Client:
    client = Client()
    client.force_login(world[person])
    return client


def _team_rows(html: str) -> dict[str, list[str]]:
    table = re.search(r'<table id="team-usage-table">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", table, re.S)
    return {name: re.findall(r'<td class="num">(.*?)</td>', cells) for name, cells in rows}


def _refusal(user, **params) -> str:
    request = RequestFactory().get(URL, params)
    request.user = user
    with pytest.raises(PermissionDenied) as refused:
        usage(request)
    return str(refused.value)


# --- who may open it for which team ------------------------------------------------------


def test_it_redirects_anonymous_visitors_to_login(world, client):
    for params in ({}, {"team": "red"}):
        response = client.get(URL, params)
        assert response.status_code == 302 and response.url.startswith("/login/?next=/usage/")


@pytest.mark.parametrize("person", ["member", "team_admin"])
def test_a_team_member_may_open_their_team_only(world, person):
    client = _as(world, person)
    assert client.get(URL, {"team": "red"}).status_code == 200
    assert client.get(URL, {"team": "blue"}).status_code == 403
    assert client.get(URL, {"team": "nonexistent"}).status_code == 403
    assert _refusal(world[person], team="blue") == TEAM_REQUIRED.format(team="blue")


def test_another_teams_member_is_refused_this_team(world):
    client = _as(world, "blue_member")
    assert client.get(URL, {"team": "red"}).status_code == 403
    assert client.get(URL, {"team": "red", "token": "red-app"}, **HX).status_code == 403
    assert _refusal(world["blue_member"], team="red") == TEAM_REQUIRED.format(team="red")
    response = client.get(URL)
    assert response.status_code == 200 and response.context["filters"].team == "blue"


def test_a_viewer_may_open_every_team_and_the_whole_gateway(world):
    client = _as(world, "viewer")
    for team in ("", "red", "blue", "empty", "nonexistent"):
        assert client.get(URL, {"team": team}).status_code == 200


def test_someone_with_no_role_and_no_team_is_refused(world):
    assert _as(world, "nobody").get(URL).status_code == 403
    assert _refusal(world["nobody"]) == ROLE_REQUIRED.format(role="none", needed="viewer")


# --- what a team's member sees -----------------------------------------------------------


@pytest.mark.parametrize("rng", RANGES)
def test_without_a_team_a_member_sees_their_first_teams_usage(world, rng):
    response = _as(world, "member").get(URL, {"range": rng})
    html = response.content.decode()
    assert response.context["filters"].team == "red"
    assert response.context["totals"].requests == 6
    # Their team only: no "All teams", no other team, no other team's (or global) token.
    assert response.context["teams"] == ["red"]
    assert response.context["tokens"] == ["red-app", "red-old"]
    assert "beta" in response.context["providers"]
    assert "blue-provider" not in response.context["providers"]
    assert "All teams" not in html
    for hidden in ("blue", "blue-app", "blue-model", ">app<"):
        assert hidden not in html, hidden
    assert _team_rows(html) == {"red": ["6", "1", "90", "0.006000"]}


def test_a_member_of_two_teams_starts_on_the_first_and_may_switch(world):
    blue = Team.objects.get(name="blue")
    accounts.team_member_set(team=blue, user="member", role="member", actor="test")
    client = _as(world, "member")
    response = client.get(URL)
    assert response.context["filters"].team == "blue"  # by name: blue before red
    assert response.context["teams"] == ["blue", "red"]
    assert response.context["totals"].requests == 5
    assert client.get(URL, {"team": "red"}).context["totals"].requests == 6


def test_another_teams_token_named_in_the_query_is_dropped(world):
    response = _as(world, "member").get(URL, {"team": "red", "token": "blue-app"})
    assert response.context["filters"].token == ""
    assert response.context["totals"].requests == 6
    assert "blue-app" not in response.content.decode()


def test_clearing_filters_keeps_a_members_team(world):
    client = _as(world, "member")
    html = client.get(URL).content.decode()
    assert "matching the filters" not in html
    html = client.get(URL, {"provider": "beta"}).content.decode()
    assert "matching the filters" in html and 'href="/usage/?range=24h&amp;team=red"' in html
    html = _as(world, "viewer").get(URL, {"team": "red"}).content.decode()
    assert "matching the filters" in html and 'href="/usage/?range=24h"' in html


# --- the team filter for everyone who sees the gateway ---------------------------------


@pytest.mark.parametrize("rng", RANGES)
def test_the_team_filter_narrows_every_aggregate(world, rng):
    client = _as(world, "viewer")
    response = client.get(URL, {"range": rng, "team": "red"})
    html = response.content.decode()
    totals = response.context["totals"]
    # The revoked token's requests are the team's too.
    assert (totals.requests, totals.errors, totals.tokens) == (6, 1, 90)
    assert totals.cost == pytest.approx(0.006)
    assert {c.series.provider for c in response.context["series_charts"]} == {"acme", "beta"}
    assert {u.token for u in response.context["usages"]} == {"red-app", "red-old"}
    assert {row.model for row in response.context["latencies"]} == {"gpt-4o-mini", "old-model"}
    recent = re.findall(r"<td>(red-app|red-old|blue-app|app)</td>", html)
    assert sorted(set(recent)) == ["red-app", "red-old"] and len(recent) == 6
    assert response.context["tokens"] == ["red-app", "red-old"]
    assert '<option value="red" selected>' in html and "All teams" in html
    assert response.context["teams"] == ["blue", "empty", "red"]
    # A token of the team narrows further; with a provider too.
    narrowed = client.get(URL, {"range": rng, "team": "red", "token": "red-old"})
    assert narrowed.context["totals"].requests == 2
    mixed = client.get(URL, {"range": rng, "team": "red", "provider": "beta"})
    assert mixed.context["totals"].requests == 1
    assert mixed.context["totals"].errors == 1


@pytest.mark.parametrize("team", ["empty", "nonexistent"])
def test_a_team_with_no_tokens_has_no_usage(world, team):
    response = _as(world, "viewer").get(URL, {"team": team, "range": "7d"})
    html = response.content.decode()
    assert response.context["totals"].requests == 0 and "No requests in this range" in html
    assert f'<option value="{team}" selected>' in html


@pytest.mark.parametrize("rng", RANGES)
def test_by_team_counts_each_teams_tokens_and_no_team(world, rng):
    html = _as(world, "viewer").get(URL, {"range": rng}).content.decode()
    # Requests, errors, tokens, cost; the busiest first.
    assert _team_rows(html) == {
        "no team": ["7", "0", "105", "0.007000"],
        "red": ["6", "1", "90", "0.006000"],
        "blue": ["5", "0", "75", "0.005000"],
    }
    desc = re.search(r'<desc id="team-usage-desc">(.*?)</desc>', html, re.S).group(1)
    assert "red: 6 requests, 1 errors · 90 tokens · $0.0060." in _text(desc)
    assert list(_team_rows(html)) == ["no team", "red", "blue"]


def test_by_team_follows_the_other_filters(world):
    html = _as(world, "viewer").get(URL, {"provider": "beta", "range": "7d"}).content.decode()
    assert _team_rows(html) == {"red": ["1", "1", "15", "0.001000"]}


def test_a_removed_teams_revoked_tokens_count_as_no_team(world):
    blue = Team.objects.get(name="blue")
    token_revoke(token=blue.tokens.get(), actor="test")
    accounts.team_remove(team=blue, actor="test")
    html = _as(world, "viewer").get(URL).content.decode()
    assert _team_rows(html)["no team"][0] == "12"
    assert "blue" not in _team_rows(html)


def test_no_teams_no_by_team_section(db, client, login_as):
    login_as("viewer")
    log(2)
    html = client.get(URL).content.decode()
    assert "<svg" in html and "By team" not in html and 'id="filter-team"' in html


def test_htmx_answers_within_the_team(world):
    response = _as(world, "member").get(URL, {"range": "1h"}, **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="usage-results"')
    assert 'id="filter-team"' in html and "blue" not in html
    assert response.context["totals"].requests == 6


# --- queries -----------------------------------------------------------------------------


@pytest.mark.parametrize("rng", RANGES)
def test_a_team_costs_at_most_one_more_query(world, rng):
    viewer = _as(world, "viewer")
    everything = _queries(viewer, range=rng)
    red = _queries(viewer, range=rng, team="red")
    assert red <= everything + 1
    log(40, token_name="red-app", ago=[timedelta(minutes=1 + i) for i in range(40)])
    log(40, token_name="blue-app", ago=[timedelta(minutes=1 + i) for i in range(40)])
    assert _queries(viewer, range=rng) == everything
    assert _queries(viewer, range=rng, team="red") == red
    # A member pays for their memberships once: at most one more than a viewer.
    assert _queries(_as(world, "member"), range=rng) <= red + 1
