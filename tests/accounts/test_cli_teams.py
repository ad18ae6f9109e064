"""`routing team add|list|remove`, `routing team member add|remove|list`, `routing token
create --team` and token list's TEAM column: what they print, what they refuse, and the
audit rows they leave; through call_command, and once through the real `manage.py`."""

import getpass
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from accounts.models import Team, TeamMembership
from accounts.services import NO_SUCH_USER, NOT_A_MEMBER, TEAM_HAS_LIVE_TOKENS
from gateway.models import AccessToken
from gateway.services import WIDER_THAN_TEAM, hash_token
from providers.management.commands.routing import NO_SUCH_TEAM
from providers.models import AuditEvent, RoutingGroup
from tests.conftest import shared_database_url

ROOT = Path(__file__).resolve().parents[2]
ACTOR = f"cli:{getpass.getuser()}"


def routing(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("routing", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        routing(*args)
    return str(info.value)


def audited(action: str) -> list[tuple[str, str, dict]]:
    rows = AuditEvent.objects.filter(action=action).order_by("id")
    return [(e.actor_name, e.target, e.changes) for e in rows]


@pytest.fixture
def groups(db):
    RoutingGroup.objects.create(name="fast")
    RoutingGroup.objects.create(name="smart")


@pytest.fixture
def people(db):
    return {name: User.objects.create_user(name) for name in ("alice", "bob")}


# --- team add | list | remove --------------------------------------------------------


def test_team_add_and_list(groups):
    assert routing("team", "list")[0].strip() == (
        "No teams yet. Add one with `routing team add NAME`."
    )
    out, _ = routing(
        "team", "add", "red", "--display-name", "Red\tteam", "--allow", "fast", "--allow", "default"
    )
    assert out.strip() == "Added team red."
    routing("team", "add", "blue")
    red = Team.objects.get(name="red")
    assert (red.display_name, red.allowed_models) == ("Red\tteam", ["fast", "default"])
    lines = routing("team", "list")[0].splitlines()
    assert lines[0].split() == ["NAME", "DISPLAY", "NAME", "MEMBERS", "LIVE", "TOKENS", "LIMITS",
                                "MODELS"]  # fmt: skip
    # By name; a tab in the display name cannot break the columns.
    assert lines[1].split() == ["blue", "-", "0", "0", "-", "all"]
    assert lines[2].split() == ["red", "Red", "team", "0", "0", "-", "fast,", "default"]
    assert audited("team.create") == [
        (ACTOR, "team:red", {"display_name": "Red\tteam", "allowed_models": ["fast", "default"]}),
        (ACTOR, "team:blue", {"display_name": "", "allowed_models": []}),
    ]


def test_team_add_refuses_bad_names_repeats_and_models(groups):
    assert refused("team", "add", "Bad Name").startswith("name: ")
    routing("team", "add", "red")
    assert "already exists" in refused("team", "add", "red")
    message = refused("team", "add", "green", "--allow", "nope")
    assert message.startswith("allowed-models: Allowed model 'nope' is neither a routing group")
    assert list(Team.objects.values_list("name", flat=True)) == ["red"]
    assert len(audited("team.create")) == 1


def test_team_list_counts_members_and_live_tokens(people):
    routing("team", "add", "red")
    routing("team", "member", "add", "red", "alice")
    routing("team", "member", "add", "red", "bob", "--role", "admin")
    routing("token", "create", "red-app", "--team", "red")
    routing("token", "create", "red-old", "--team", "red")
    routing("token", "revoke", "red-old")
    (red,) = routing("team", "list")[0].splitlines()[1:]
    assert red.split() == ["red", "-", "2", "1", "-", "all"]


def test_team_remove(people):
    routing("team", "add", "red")
    routing("team", "member", "add", "red", "alice")
    assert routing("team", "remove", "red")[0].strip() == "Removed team red."
    assert not Team.objects.exists() and not TeamMembership.objects.exists()
    assert audited("team.remove") == [(ACTOR, "team:red", {"members": ["alice"]})]
    assert refused("team", "remove", "red") == NO_SUCH_TEAM.format(name="red")


def test_team_remove_refuses_while_it_owns_a_live_token(db):
    routing("team", "add", "red")
    routing("token", "create", "red-app", "--team", "red")
    routing("token", "create", "red-old", "--team", "red")
    routing("token", "revoke", "red-old")
    assert refused("team", "remove", "red") == TEAM_HAS_LIVE_TOKENS.format(
        team="red", names="red-app"
    )
    assert Team.objects.filter(name="red").exists() and not audited("team.remove")
    routing("token", "revoke", "red-app")
    routing("team", "remove", "red")
    # The revoked tokens stay, as nobody's: their usage keeps its token names.
    assert sorted(AccessToken.objects.values_list("name", "team")) == [
        ("red-app", None),
        ("red-old", None),
    ]


# --- team member add | remove | list -------------------------------------------------


def test_member_add_change_list_and_remove(people):
    routing("team", "add", "red")
    assert routing("team", "member", "list", "red")[0].strip() == (
        "Team red has no members. Add one with `routing team member add red USER --role member`."
    )
    assert routing("team", "member", "add", "red", "alice")[0].strip() == (
        "alice is now team red's member."
    )
    out, _ = routing("team", "member", "add", "red", "bob", "--role", "admin")
    assert out.strip() == "bob is now team red's admin."
    out, _ = routing("team", "member", "add", "red", "alice", "--role", "admin")
    assert out.strip() == "alice is now team red's admin."
    # The same role again changes nothing and audits nothing.
    routing("team", "member", "add", "red", "bob", "--role", "admin")
    lines = routing("team", "member", "list", "red")[0].splitlines()
    assert [line.split() for line in lines] == [
        ["USER", "ROLE", "FROM", "SSO"],
        ["alice", "admin", "no"],
        ["bob", "admin", "no"],
    ]
    out, _ = routing("team", "member", "remove", "red", "alice")
    assert out.strip() == "Removed alice from team red."
    assert list(TeamMembership.objects.values_list("user__username", "role")) == [("bob", "admin")]
    assert audited("team.member") == [
        (ACTOR, "team:red", {"user": "alice", "role": [None, "member"]}),
        (ACTOR, "team:red", {"user": "bob", "role": [None, "admin"]}),
        (ACTOR, "team:red", {"user": "alice", "role": ["member", "admin"]}),
        (ACTOR, "team:red", {"user": "alice", "role": ["admin", None]}),
    ]


def test_member_commands_name_the_unknown_team_user_or_membership(people):
    routing("team", "add", "red")
    for args in (("add", "ghost-team", "alice"), ("remove", "ghost-team", "alice")):
        assert refused("team", "member", *args) == NO_SUCH_TEAM.format(name="ghost-team")
    assert refused("team", "member", "list", "ghost-team") == NO_SUCH_TEAM.format(name="ghost-team")
    assert refused("team", "member", "add", "red", "ghost") == "user: " + NO_SUCH_USER.format(
        username="ghost"
    )
    assert refused("team", "member", "remove", "red", "ghost") == "user: " + (
        NO_SUCH_USER.format(username="ghost")
    )
    assert refused("team", "member", "remove", "red", "bob") == NOT_A_MEMBER.format(
        username="bob", team="red"
    )
    assert "invalid choice: 'owner'" in refused(
        "team", "member", "add", "red", "bob", "--role", "owner"
    )
    assert not TeamMembership.objects.exists() and not audited("team.member")


# --- token create --team, token list -------------------------------------------------


def test_token_create_for_a_team_and_the_team_column(groups):
    routing("team", "add", "red", "--allow", "fast", "--allow", "smart")
    out, err = routing("token", "create", "red-app", "--team", "red", "--allow", "fast")
    raw = out.strip()
    assert raw.startswith("ra-") and "not shown again" in err
    token = AccessToken.objects.get(name="red-app")
    assert token.team.name == "red" and token.token_hash == hash_token(raw)
    routing("token", "create", "red-all", "--team", "red")
    routing("token", "create", "ops")
    lines = routing("token", "list")[0].splitlines()
    assert lines[0].split()[:2] == ["NAME", "TEAM"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["ops"].split()[1] == "-" and rows["ops"].rstrip().endswith("all")
    assert rows["red-app"].split()[1] == "red" and rows["red-app"].rstrip().endswith("fast")
    assert rows["red-all"].split()[1] == "red" and rows["red-all"].rstrip().endswith("the team's")
    assert raw not in "\n".join(lines)
    changes = {target: c for _, target, c in audited("token.create")}
    assert changes["token:red-app"]["team"] == "red" and changes["token:ops"]["team"] is None
    assert raw not in repr(list(AuditEvent.objects.values()))


def test_token_create_refuses_an_unknown_team_and_a_wider_list(groups):
    routing("team", "add", "red", "--allow", "fast")
    message = refused("token", "create", "x", "--team", "ghost")
    assert message == NO_SUCH_TEAM.format(name="ghost")
    message = refused("token", "create", "x", "--team", "red", "--allow", "smart")
    assert message == "allowed-models: " + WIDER_THAN_TEAM.format(
        entry="smart", team="red", models="fast"
    )
    assert not AccessToken.objects.exists() and not audited("token.create")


# --- the real command line -----------------------------------------------------------


def _manage(*args: str) -> subprocess.CompletedProcess:
    from django.conf import settings as dj

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_HTTPS_REDIRECT": "0",
        "DATABASE_URL": shared_database_url(),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "routing", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_real_command_line_adds_and_refuses_to_remove_a_team_with_one_line():
    User.objects.create_user("alice")
    added = _manage("team", "add", "red")
    assert (added.returncode, added.stdout.strip()) == (0, "Added team red."), added.stderr
    routing("token", "create", "red-app", "--team", "red")
    routing("team", "member", "add", "red", "alice", "--role", "admin")
    removal = _manage("team", "remove", "red")
    assert removal.returncode == 1
    lines = removal.stderr.strip().splitlines()
    assert len(lines) == 1 and TEAM_HAS_LIVE_TOKENS.format(team="red", names="red-app") in lines[0]
    assert Team.objects.filter(name="red").exists()
    assert [a for a, _, _ in audited("team.create")] == [ACTOR]
