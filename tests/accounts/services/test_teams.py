"""accounts.services' team functions: what they refuse (every mistake at once), what they
audit, team_remove's rule for tokens, team_member_set's role changes, and the snapshot the
gateway reads following a team's models."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from accounts.models import Team, TeamMembership
from accounts.services import (
    NO_SUCH_USER,
    NOT_A_MEMBER,
    TEAM_HAS_LIVE_TOKENS,
    TEAM_ROLE_UNKNOWN,
    team_create,
    team_member_remove,
    team_member_set,
    team_remove,
    team_target,
    team_update,
)
from gateway.models import AccessToken
from gateway.services import hash_token, token_create, token_revoke
from providers.models import AuditEvent, RoutingGroup
from providers.routing import live
from providers.validators import TEAM_NAME_INVALID

pytestmark = pytest.mark.django_db


def audited(action: str | None = None) -> list[tuple[str, str, dict]]:
    rows = AuditEvent.objects.order_by("id")
    if action:
        rows = rows.filter(action=action)
    return [(e.actor_name, e.target, e.changes) for e in rows]


@pytest.fixture
def groups(db):
    for name in ("fast", "smart"):
        RoutingGroup.objects.create(name=name)


@pytest.fixture
def red(groups) -> Team:
    return team_create(name="red", allowed_models=["fast", "smart"], actor="test")


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice")


def _entry(raw: str) -> live.TokenEntry:
    return live.snapshot().tokens[hash_token(raw)]


# --- team_create -----------------------------------------------------------------------


def test_create_strips_stores_and_audits(groups):
    team = team_create(
        name=" red ", display_name=" Red team ", allowed_models=["fast", " fast", ""], actor="t"
    )
    assert (team.name, team.display_name, team.allowed_models) == ("red", "Red team", ["fast"])
    assert team.title == "Red team" and team.allows("fast") and not team.allows("smart")
    assert audited() == [
        ("t", team_target("red"), {"display_name": "Red team", "allowed_models": ["fast"]})
    ]


def test_create_reports_every_mistake_at_once_and_writes_nothing(groups):
    with pytest.raises(ValidationError) as refused:
        team_create(name="Red Team", allowed_models=["fast", "nope", "x/"], actor="t")
    errors = refused.value.message_dict
    assert errors["name"] == [TEAM_NAME_INVALID]
    assert len(errors["allowed_models"]) == 2 and "'nope'" in errors["allowed_models"][0]
    assert (
        "name" in pytest.raises(ValidationError, team_create, name="", actor="t").value.error_dict
    )
    team_create(name="red", actor="t")
    with pytest.raises(ValidationError, match="already exists"):
        team_create(name="red", actor="t")
    assert list(Team.objects.values_list("name", flat=True)) == ["red"]
    assert len(audited()) == 1


# --- team_update -----------------------------------------------------------------------


def test_update_changes_and_audits_only_what_changed(red):
    team_update(team=red, display_name="Red", allowed_models=["smart", "fast"], actor="t")
    team_update(team=red, display_name="Red", allowed_models=["smart", "fast"], actor="t")
    team_update(team=red, actor="t")
    red.refresh_from_db()
    assert (red.display_name, red.allowed_models) == ("Red", ["smart", "fast"])
    assert audited("team.update") == [
        (
            "t",
            "team:red",
            {
                "display_name": ["", "Red"],
                "allowed_models": [["fast", "smart"], ["smart", "fast"]],
            },
        )
    ]


def test_update_refuses_bad_models_and_changes_nothing(red):
    with pytest.raises(ValidationError) as refused:
        team_update(team=red, display_name="New", allowed_models=["ghost"], actor="t")
    assert list(refused.value.message_dict) == ["allowed_models"]
    red.refresh_from_db()
    assert (red.display_name, red.allowed_models) == ("", ["fast", "smart"])
    assert not audited("team.update")


def test_narrowing_a_team_narrows_its_tokens_in_the_next_snapshot(red):
    _, own = token_create(name="red-app", team=red, actor="t")
    _, narrow = token_create(name="red-smart", team=red, allowed_models=["smart"], actor="t")
    entry = _entry(own)
    assert (entry.team, entry.team_allowed) == ("red", ("fast", "smart"))
    assert entry.allows("fast") and not entry.allows("default")
    team_update(team=red, allowed_models=["fast"], actor="t")
    assert not _entry(own).allows("smart") and _entry(own).allows("fast")
    # Its own list and the team's: nothing is left.
    assert not _entry(narrow).allows("smart") and not _entry(narrow).allows("fast")
    team_update(team=red, allowed_models=[], actor="t")
    assert _entry(own).allows("default") and _entry(narrow).allows("smart")
    assert not _entry(narrow).allows("fast")


# --- team_remove -----------------------------------------------------------------------


def test_remove_refuses_while_the_team_owns_a_live_token(red):
    token_create(name="red-b", team=red, actor="t")
    token_create(name="red-a", team=red, actor="t")
    # Expired is not revoked: such a token is still the team's, and could be renewed.
    expired, _ = token_create(name="red-c", team=red, actor="t")
    AccessToken.objects.filter(pk=expired.pk).update(expires_at="2000-01-01T00:00:00Z")
    with pytest.raises(ValidationError) as refused:
        team_remove(team=red, actor="t")
    assert refused.value.messages == [
        TEAM_HAS_LIVE_TOKENS.format(team="red", names="red-a, red-b, red-c")
    ]
    assert Team.objects.filter(name="red").exists() and not audited("team.remove")


def test_remove_detaches_revoked_tokens_and_drops_memberships(red, alice):
    team_member_set(team=red, user=alice, role="admin", actor="t")
    token, _ = token_create(name="red-app", team=red, actor="t")
    token_revoke(token=token, actor="t")
    team_remove(team=red, actor="t")
    assert not Team.objects.exists() and not TeamMembership.objects.exists()
    assert AccessToken.objects.get(name="red-app").team is None
    assert audited("team.remove") == [("t", "team:red", {"members": ["alice"]})]


# --- team_member_set / team_member_remove ----------------------------------------------


def test_member_set_adds_then_changes_the_role(red, alice):
    membership = team_member_set(team=red, user="alice", role="member", actor="t")
    assert (membership.role, membership.from_sso) == ("member", False)
    team_member_set(team=red, user=alice, role="member", actor="t")  # no change, no row
    team_member_set(team=red, user=alice, role="admin", actor="t")
    team_member_set(team=red, user=alice, role="member", actor="t")
    assert TeamMembership.objects.get().role == "member"
    assert audited("team.member") == [
        ("t", "team:red", {"user": "alice", "role": [None, "member"]}),
        ("t", "team:red", {"user": "alice", "role": ["member", "admin"]}),
        ("t", "team:red", {"user": "alice", "role": ["admin", "member"]}),
    ]


def test_member_set_audits_the_idp_taking_over_a_membership(red, alice):
    team_member_set(team=red, user=alice, role="member", actor="t")
    team_member_set(team=red, user=alice, role="member", actor="sso", from_sso=True)
    assert TeamMembership.objects.get().from_sso is True
    assert audited("team.member")[-1] == (
        "sso",
        "team:red",
        {"user": "alice", "from_sso": [False, True]},
    )


def test_member_set_refuses_an_unknown_role_or_user(red, alice):
    with pytest.raises(ValidationError) as refused:
        team_member_set(team=red, user=alice, role="owner", actor="t")
    assert refused.value.message_dict == {"role": [TEAM_ROLE_UNKNOWN]}
    with pytest.raises(ValidationError) as refused:
        team_member_set(team=red, user="ghost", role="member", actor="t")
    assert refused.value.message_dict == {"user": [NO_SUCH_USER.format(username="ghost")]}
    assert not TeamMembership.objects.exists() and not audited("team.member")


def test_member_remove(red, alice):
    with pytest.raises(ValidationError) as refused:
        team_member_remove(team=red, user=alice, actor="t")
    assert refused.value.messages == [NOT_A_MEMBER.format(username="alice", team="red")]
    with pytest.raises(ValidationError):
        team_member_remove(team=red, user="ghost", actor="t")
    team_member_set(team=red, user=alice, role="admin", actor="t")
    team_member_remove(team=red, user="alice", actor="t")
    assert not TeamMembership.objects.exists()
    assert audited("team.member")[-1] == (
        "t",
        "team:red",
        {"user": "alice", "role": ["admin", None]},
    )
