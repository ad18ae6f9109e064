"""The role-and-team matrix: every URL, GET and POST, for anonymous, a team's member, its
team admin, another team's admin, and the three global roles. Nobody reaches another team's
tokens, members or usage, and a person with only a team membership reaches nothing global.

The global roles' own rules over every URL are test_web_methods.py's; this file adds the
people whose only access is a team, and the team pages for everyone.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import get_resolver, reverse

from accounts import services as account_services
from gateway.services import token_create
from providers import services
from tests.security.test_web_methods import ENDPOINTS, POST_DATA, QUERIES, _names, _state

PEOPLE = ("anonymous", "member", "team_admin", "other_admin", "viewer", "editor", "admin")
TEAM_ONLY = ("member", "team_admin", "other_admin")
# The team pages, all of team "red": who may GET, who may POST (with TEAM_POST_DATA).
SIGNED_IN = frozenset(PEOPLE) - {"anonymous"}
RED_SEES = frozenset({"member", "team_admin", "viewer", "editor", "admin"})
RED_TOKENS = frozenset({"team_admin", "editor", "admin"})
ADMIN = frozenset({"admin"})
TEAM_PAGES: dict[str, tuple[dict, frozenset, frozenset]] = {
    "team_list": ({}, SIGNED_IN, ADMIN),
    "team_detail": ({"name": "red"}, RED_SEES, ADMIN),
    "team_token_create": ({"name": "red"}, frozenset(), RED_TOKENS),
    "team_token_detail": ({"name": "red", "token": "red-app"}, RED_SEES, RED_TOKENS),
    "team_token_revoke": ({"name": "red", "token": "red-app"}, frozenset(), RED_TOKENS),
    "team_limits": ({"name": "red"}, frozenset(), ADMIN),
    "team_member_add": ({"name": "red"}, frozenset(), ADMIN),
    "team_member_remove": ({"name": "red", "username": "member"}, frozenset(), ADMIN),
    # A team that owns no live token: red's could not be removed (by anyone).
    "team_remove": ({"name": "old"}, frozenset(), ADMIN),
}
TEAM_POST_DATA = {
    "team_list": {"name": "green"},
    "team_detail": {"display_name": "Red team", "allowed_models": ""},
    "team_token_create": {"name": "red-new"},
    "team_token_detail": {"rpm": "60", "budget_usd": "5", "budget_period": "day"},
    "team_token_revoke": {},
    "team_limits": {"rpm": "600", "budget_usd": "50", "budget_period": "month"},
    "team_member_add": {"user": "carol", "role": "member"},
    "team_member_remove": {},
    "team_remove": {},
}
# Pages a person with only a team membership may open (their own team's usage).
TEAM_ONLY_MAY_GET = {"usage", "team_list", "team_detail"}
# The overview sends them on to their own team instead: every way of signing in (a password,
# single sign-on, ?next=/) ends there, and TEAMS.md has them land on their team's page.
OWN_TEAM = {"member": "red", "team_admin": "red", "other_admin": "blue"}


@pytest.fixture
def world(make_provider, db):
    acme = make_provider(name="acme", base_url="https://api.example.com/v1")
    make_provider(name="spare", base_url="https://api.example.org/v1")
    services.default_model_set(provider=acme, model="gpt-4o-mini", actor="test")
    from providers.services.groups import DeploymentSpec

    services.group_save(name="fast", deployments=[DeploymentSpec("acme", "gpt-4o-mini")])
    token_create(name="app", actor="test")
    red = account_services.team_create(name="red", actor="test")
    blue = account_services.team_create(name="blue", actor="test")
    account_services.team_create(name="old", actor="test")
    token_create(name="red-app", team=red, actor="test")
    token_create(name="blue-app", team=blue, actor="test")
    people: dict[str, User] = {}
    for role in ("viewer", "editor", "admin"):
        people[role] = User.objects.create_user(role, password="pw-" + role)
        people[role].groups.add(Group.objects.get_or_create(name=role)[0])
    for person, team, role in (
        ("member", red, "member"),
        ("team_admin", red, "admin"),
        ("other_admin", blue, "admin"),
    ):
        people[person] = User.objects.create_user(person, password="pw-" + person)
        account_services.team_member_set(team=team, user=people[person], role=role, actor="t")
    User.objects.create_user("carol", password="pw-carol")
    return people


def _client(people: dict, person: str) -> Client:
    client = Client()
    if person != "anonymous":
        client.force_login(people[person])
    return client


def _refused(response, person: str) -> bool:
    if response.status_code == 405:  # a POST-only view refuses a GET from anyone
        return True
    if person == "anonymous":
        return response.status_code == 302 and "/login/" in response["Location"]
    return response.status_code == 403


def test_every_url_is_in_one_matrix():
    # A new URL fails here until someone decides who may use it.
    assert _names(get_resolver()) == set(ENDPOINTS) | set(TEAM_PAGES)


@pytest.mark.parametrize("person", TEAM_ONLY)
def test_a_team_membership_alone_reaches_nothing_global(world, person):
    client = _client(world, person)
    before = _state()
    for name, (kwargs, who) in ENDPOINTS.items():
        if who in ("token", "anyone") or name in TEAM_ONLY_MAY_GET:
            continue
        url = reverse(name, kwargs=kwargs)
        got = client.get(url, QUERIES.get(name, {}))
        if name == "overview":
            own = reverse("team_detail", kwargs={"name": OWN_TEAM[person]})
            assert (got.status_code, got.get("Location")) == (302, own), f"GET overview as {person}"
        else:
            # 405: a POST-only view refuses a GET from anyone (as _refused says).
            assert got.status_code in (403, 405), f"GET {name} as {person}: {got.status_code}"
        posted = client.post(url, POST_DATA.get(name, {}))
        assert posted.status_code in (403, 405), f"POST {name} as {person}"
        assert _state() == before, f"POST {name} as {person} changed the database"


@pytest.mark.parametrize("person", PEOPLE)
def test_team_pages_get(world, person):
    client = _client(world, person)
    before = _state()
    for name, (kwargs, may_get, _) in TEAM_PAGES.items():
        response = client.get(reverse(name, kwargs=kwargs))
        if person in may_get:
            assert response.status_code == 200, f"GET {name} as {person}"
        else:
            assert _refused(response, person), f"GET {name} as {person}: {response.status_code}"
        assert _state() == before, f"GET {name} as {person} changed the database"


@pytest.mark.parametrize("name", TEAM_PAGES)
@pytest.mark.parametrize("person", PEOPLE)
def test_team_pages_post(world, person, name):
    # One world per POST: an allowed one changes it (and must, or the refusals prove nothing).
    kwargs, _, may_post = TEAM_PAGES[name]
    client = _client(world, person)  # signing in moves last_login: before the snapshot
    before = _state()
    response = client.post(reverse(name, kwargs=kwargs), TEAM_POST_DATA[name])
    if person in may_post:
        assert response.status_code < 400, f"POST {name} as {person}: {response.status_code}"
        assert _state() != before, f"POST {name} as {person} changed nothing"
    else:
        assert _refused(response, person), f"POST {name} as {person}: {response.status_code}"
        assert _state() == before, f"POST {name} as {person} changed the database"


def test_the_team_list_shows_a_member_only_their_teams(world):
    page = _client(world, "other_admin").get(reverse("team_list")).content.decode()
    assert "blue" in page and "red" not in page
    everyone = _client(world, "viewer").get(reverse("team_list")).content.decode()
    assert "blue" in everyone and "red" in everyone


@pytest.mark.parametrize("person", ["member", "team_admin", "other_admin"])
def test_usage_of_another_team_is_refused(world, person):
    client = _client(world, person)
    own = "blue" if person == "other_admin" else "red"
    other = "red" if own == "blue" else "blue"
    assert client.get(reverse("usage"), {"team": own}).status_code == 200
    assert client.get(reverse("usage"), {"team": other}).status_code == 403
    # Without a team: their own team's usage, never the whole gateway's.
    page = client.get(reverse("usage")).content.decode()
    assert f"{other}-app" not in page


def test_another_teams_admin_never_sees_this_teams_token(world):
    client = _client(world, "other_admin")
    for url in (reverse("team_detail", kwargs={"name": "red"}), reverse("team_list")):
        assert "red-app" not in client.get(url).content.decode()
