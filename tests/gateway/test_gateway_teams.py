"""A team's tokens through the real gateway, driven by the official `openai` package: they
list and call only what their team allows (and their own narrower list), a narrowed team
narrows them at the next request, and their calls count under the team on /usage/."""

import httpx
import openai
import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.test import Client

from accounts import services as accounts
from accounts.models import Team
from gateway.models import AccessToken
from gateway.services import TEAM_GONE, WIDER_THAN_TEAM, token_create, token_revoke
from gateway.views.api import MODEL_NOT_ALLOWED
from providers import services
from providers.services import DeploymentSpec as D
from tests.gateway import test_gateway
from tests.gateway.test_gateway import client
from usage import request_log

pytestmark = pytest.mark.django_db(transaction=True)
gateway = test_gateway.gateway  # the fixture: a real ASGI server on 127.0.0.1
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def teams(upstream_factory, make_provider):
    """Providers pa (the default, gpt-4o-mini) and pb; group "fast" on pb/small. Team red may
    call default and fast; blue anything. Tokens: red-app (red's models), red-fast (fast
    only), blue-app, and the global app."""
    a, b = upstream_factory("a"), upstream_factory("b")
    a.reply_text, b.reply_text = "from A", "from B"
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    services.group_save(name="fast", deployments=[D("pb", "small")])
    red = accounts.team_create(name="red", allowed_models=["default", "fast"], actor="test")
    blue = accounts.team_create(name="blue", actor="test")
    raw = {
        "red-app": token_create(name="red-app", team=red, actor="test")[1],
        "red-fast": token_create(name="red-fast", team=red, allowed_models=["fast"], actor="test")[
            1
        ],
        "blue-app": token_create(name="blue-app", team=blue, actor="test")[1],
        "app": token_create(name="app", actor="test")[1],
    }
    return a, b, red, raw


def _ids(gateway, token) -> set[str]:
    return {m.id for m in client(gateway, token).models.list()}


def _text(gateway, token, model) -> str:
    answer = client(gateway, token).chat.completions.create(model=model, messages=HI)
    return answer.choices[0].message.content


def test_models_lists_what_the_team_allows(gateway, teams):
    _, _, _, raw = teams
    assert _ids(gateway, raw["red-app"]) == {"default", "fast"}
    assert _ids(gateway, raw["red-fast"]) == {"fast"}
    # A team with no list, and a global token, see every model.
    everything = {"default", "fast", "pa/gpt-4o-mini", "pb/small"}
    assert _ids(gateway, raw["blue-app"]) == _ids(gateway, raw["app"]) == everything
    detail = client(gateway, raw["red-app"]).models.retrieve("fast")
    assert detail.id == "fast"
    with pytest.raises(openai.NotFoundError):
        client(gateway, raw["red-app"]).models.retrieve("pb/small")


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_outside_the_teams_list_is_403_model_not_allowed(gateway, teams, stream):
    a, b, _, raw = teams
    c = client(gateway, raw["red-app"])
    for model in ("pb/small", "pa/gpt-4o-mini"):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            c.chat.completions.create(model=model, messages=HI, stream=stream)
        assert refused.value.body["code"] == "model_not_allowed"
        assert refused.value.body["message"] == MODEL_NOT_ALLOWED.format(
            token="red-app", model=model
        )
    # Its own narrower list: fast only, not the team's default.
    with pytest.raises(openai.PermissionDeniedError):
        client(gateway, raw["red-fast"]).chat.completions.create(model="default", messages=HI)
    assert a.requests == [] and b.requests == []
    assert _text(gateway, raw["red-app"], "fast") == "from B"
    assert _text(gateway, raw["red-app"], "default") == "from A"
    assert _text(gateway, raw["blue-app"], "pb/small") == "from B"


def test_narrowing_the_team_takes_effect_at_the_next_request(gateway, teams):
    a, _, red, raw = teams
    assert _text(gateway, raw["red-app"], "default") == "from A"
    accounts.team_update(team=red, allowed_models=["fast"], actor="test")
    with pytest.raises(openai.PermissionDeniedError):
        client(gateway, raw["red-app"]).chat.completions.create(model="default", messages=HI)
    assert _ids(gateway, raw["red-app"]) == {"fast"}
    assert len(a.requests) == 1
    # Widening to every model: the team's tokens follow, within their own lists.
    accounts.team_update(team=red, allowed_models=[], actor="test")
    assert "pb/small" in _ids(gateway, raw["red-app"])
    assert _ids(gateway, raw["red-fast"]) == {"fast"}
    assert _text(gateway, raw["red-app"], "pb/small") == "from B"


def test_a_token_wider_than_its_team_is_refused(teams):
    _, _, red, _ = teams
    with pytest.raises(ValidationError) as refused:
        token_create(name="red-wide", team=red, allowed_models=["fast", "pb/small"], actor="t")
    assert refused.value.message_dict["allowed_models"] == [
        WIDER_THAN_TEAM.format(entry="pb/small", team="red", models="default, fast")
    ]
    assert not AccessToken.objects.filter(name="red-wide").exists()


def test_a_narrowed_teams_list_is_what_new_tokens_are_checked_against(teams):
    # The caller's Team object is from before the change: the stored list is what counts.
    _, _, red, _ = teams
    stale = Team.objects.get(name="red")
    accounts.team_update(team=red, allowed_models=["fast"], actor="test")
    with pytest.raises(ValidationError, match="not among team red's models"):
        token_create(name="red-default", team=stale, allowed_models=["default"], actor="t")


def test_a_revoked_team_token_is_refused(gateway, teams):
    _, _, _, raw = teams
    token_revoke(token=AccessToken.objects.get(name="red-app"), actor="test")
    answer = httpx.get(
        gateway + "/v1/models", headers={"Authorization": f"Bearer {raw['red-app']}"}
    )
    assert answer.status_code == 401


def test_a_team_tokens_requests_count_under_its_team_on_usage(gateway, teams):
    _, _, red, raw = teams
    _text(gateway, raw["red-app"], "default")
    list(
        client(gateway, raw["red-fast"]).chat.completions.create(
            model="fast", messages=HI, stream=True
        )
    )
    with pytest.raises(openai.PermissionDeniedError):
        client(gateway, raw["red-app"]).chat.completions.create(model="pb/small", messages=HI)
    _text(gateway, raw["blue-app"], "default")
    _text(gateway, raw["app"], "default")
    request_log.flush()

    viewer = User.objects.create_user("viewer")
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    member = User.objects.create_user("member")
    accounts.team_member_set(team=red, user=member, role="member", actor="test")
    for person, params in ((viewer, {"team": "red"}), (member, {})):
        page = Client()
        page.force_login(person)
        for rng in ("1h", "24h"):
            response = page.get("/usage/", {**params, "range": rng})
            assert response.status_code == 200
            totals = response.context["totals"]
            assert (totals.requests, totals.errors) == (3, 1), (person, rng)
            assert {u.token for u in response.context["usages"]} == {"red-app", "red-fast"}
    everything = Client()
    everything.force_login(viewer)
    by_team = {u.team: u.requests for u in everything.get("/usage/").context["team_usages"]}
    assert by_team == {"red": 3, "blue": 1, "no team": 1}


@pytest.mark.usefixtures("teams")
def test_a_token_of_a_team_removed_meanwhile_is_refused():
    gone = accounts.team_create(name="gone", actor="test")
    accounts.team_remove(team=gone, actor="test")
    with pytest.raises(ValidationError) as refused:
        token_create(name="gone-app", team=gone, actor="test")
    assert refused.value.message_dict == {"team": [TEAM_GONE.format(team="gone")]}
    assert not AccessToken.objects.filter(name="gone-app").exists()
