"""Single sign-on and teams (ROUTING_OIDC_TEAM_MAP), end to end against the real OpenID
provider: the IdP's groups give team memberships, re-applied exactly at every sign-in, and
memberships added by hand are left alone. The map used is tests/oidc_provider.TEAM_MAP."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from accounts import services, sso
from accounts.models import Team, TeamMembership
from accounts.roles import team_roles, user_role
from providers.models import AuditEvent

from .test_sso_signin import sign_in


@pytest.fixture
def teams(idp) -> dict[str, Team]:
    return {
        name: services.team_create(name=name, actor="test") for name in ("red", "blue", "green")
    }


def _signed_in(live_server, login: str) -> httpx.Response:
    with httpx.Client(base_url=live_server.url) as web:
        return sign_in(web, login)


def _in(idp, live_server, login: str) -> User:
    """Sign in, which must succeed (a session of this account); where the person lands
    afterwards is the team pages' business (tests/browser/test_team_sso_browser.py)."""
    before = set(Session.objects.values_list("pk", flat=True))
    page = _signed_in(live_server, login)
    assert "Sign-in refused" not in page.text, page.text
    user = _user(idp, login)
    new = Session.objects.exclude(pk__in=before)
    assert [s.get_decoded().get("_auth_user_id") for s in new] == [str(user.pk)]
    return user


def _user(idp, login: str) -> User:
    return User.objects.get(username=sso.username_for(idp.issuer, login))


def _memberships(user: User) -> dict[str, tuple[str, bool]]:
    rows = TeamMembership.objects.filter(user=user).values_list("team__name", "role", "from_sso")
    return {team: (role, from_sso) for team, role, from_sso in rows}


def test_a_group_gives_a_team_and_no_global_role(idp, teams, live_server):
    idp.accounts({"tara": ["team-red", "unrelated"]})

    user = _in(idp, live_server, "tara")

    assert user_role(user) is None
    assert _memberships(user) == {"red": ("member", True)}
    member = AuditEvent.objects.get(action="team.member")
    assert (member.target, member.actor_name) == ("team:red", f"idp:{idp.issuer}")
    assert member.changes == {
        "user": user.username,
        "role": [None, "member"],
        "from_sso": [None, True],
    }
    signed_in = AuditEvent.objects.get(action="sso.sign_in")
    assert signed_in.changes["role"] == [None, None]
    assert signed_in.changes["teams"] == [None, {"red": "member"}]


def test_a_team_role_changes_and_a_team_goes_at_the_next_sign_in(idp, teams, live_server):
    idp.accounts({"tara": ["team-red", "team-blue"]})
    user = _in(idp, live_server, "tara")
    assert _memberships(user) == {"red": ("member", True), "blue": ("member", True)}

    # Made a lead of red, taken out of blue's group at the IdP.
    idp.accounts({"tara": ["team-red", "red-leads"]})
    _in(idp, live_server, "tara")

    assert _memberships(user) == {"red": ("admin", True)}
    changes = [
        (e.target, e.changes.get("role"))
        for e in AuditEvent.objects.filter(action="team.member").order_by("id")
    ]
    assert changes[2:] == [("team:red", ["member", "admin"]), ("team:blue", ["member", None])]
    assert all(
        e.actor_name == f"idp:{idp.issuer}" for e in AuditEvent.objects.filter(action="team.member")
    )


def test_a_membership_added_by_hand_is_left_alone(idp, teams, live_server):
    idp.accounts({"tara": ["team-red"]})
    user = _in(idp, live_server, "tara")
    services.team_member_set(team=teams["green"], user=user, role="admin", actor="ada")

    idp.accounts({"tara": ["team-blue"]})
    _in(idp, live_server, "tara")

    # red (the IdP's) went with its group; green (an admin's) stays as it was.
    assert _memberships(user) == {"blue": ("member", True), "green": ("admin", False)}
    assert not AuditEvent.objects.filter(target="team:green", actor_name__startswith="idp:")


def test_a_mapped_group_takes_over_a_membership_added_by_hand(idp, teams, live_server):
    idp.accounts({"tara": ["staff"]})
    user = _in(idp, live_server, "tara")
    services.team_member_set(team=teams["red"], user=user, role="member", actor="ada")

    idp.accounts({"tara": ["staff", "red-leads"]})
    _in(idp, live_server, "tara")
    assert _memberships(user) == {"red": ("admin", True)}
    taken = AuditEvent.objects.filter(action="team.member").latest("id")
    assert taken.changes["role"] == ["member", "admin"]
    assert taken.changes["from_sso"] == [False, True]

    # Now the IdP's: out of the group, out of the team.
    idp.accounts({"tara": ["staff"]})
    _in(idp, live_server, "tara")
    assert _memberships(user) == {}
    assert user_role(User.objects.get(pk=user.pk)) == "viewer"


def test_no_role_and_no_team_is_refused(idp, teams, live_server):
    idp.accounts({"tara": ["team-red"]})
    user = _in(idp, live_server, "tara")
    services.team_member_set(team=teams["green"], user=user, role="member", actor="ada")

    idp.accounts({"tara": ["unrelated"]})
    page = _signed_in(live_server, "tara")

    assert page.status_code == 403
    assert "<h1>Sign-in refused</h1>" in page.text
    assert "no group that Routing Admin maps to a role or a team" in sso.NO_MAPPED_GROUP
    assert "maps to a role or a team" in page.text
    # The IdP's team is gone; a membership by hand does not let the account in, and stays.
    assert _memberships(user) == {"green": ("member", False)}
    assert team_roles(User.objects.get(pk=user.pk)) == {"green": "member"}
    assert AuditEvent.objects.filter(action="sso.failure").count() == 1
    assert AuditEvent.objects.filter(action="sso.sign_in").count() == 1


def test_an_unknown_team_is_skipped_and_audited(idp, teams, live_server):
    idp.accounts({"tara": ["team-ghost", "team-blue"]})

    user = _in(idp, live_server, "tara")

    assert _memberships(user) == {"blue": ("member", True)}
    assert not Team.objects.filter(name="ghost").exists()
    skipped = AuditEvent.objects.get(action="sso.team_unknown")
    assert (skipped.target, skipped.actor_name) == ("team:ghost", f"idp:{idp.issuer}")
    assert skipped.changes == {"user": user.username, "team_role": "admin"}


def test_only_an_unknown_team_is_refused(idp, teams, live_server):
    idp.accounts({"tara": ["team-ghost"]})
    page = _signed_in(live_server, "tara")
    assert page.status_code == 403
    assert _memberships(_user(idp, "tara")) == {}
    assert AuditEvent.objects.filter(action="sso.team_unknown").count() == 1


def test_a_role_and_teams_together(idp, teams, live_server):
    idp.accounts({"tara": ["llm-editors", "team-red"]})
    user = _in(idp, live_server, "tara")
    assert user_role(user) == "editor"
    assert _memberships(user) == {"red": ("member", True)}
