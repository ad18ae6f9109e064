"""The single sign-on settings: a bad value stops the app at start with a message naming the
variable (routing.E020-E028), in a subprocess like a real start; and the discovery rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from accounts import sso
from accounts.checks import check_sso_settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "ROUTING_OIDC_ISSUER": "https://sso.example.com/realms/main",
    "ROUTING_OIDC_CLIENT_ID": "routing-admin",
    "ROUTING_OIDC_CLIENT_SECRET": "the-client-secret-4Kq",
    "ROUTING_OIDC_ROLE_MAP": "platform-admins=admin,llm-editors=editor,staff=viewer",
    "ROUTING_OIDC_TEAM_MAP": "",
}


def _sso_errors(settings, **values: str) -> list[str]:
    for name, value in (GOOD | values).items():
        setattr(settings, name, value)
    return [m.msg for m in check_sso_settings(None)]


def test_good_settings_pass(settings):
    assert _sso_errors(settings) == []
    cfg = sso.config()
    assert cfg.role_map == {"platform-admins": "admin", "llm-editors": "editor", "staff": "viewer"}
    assert cfg.scopes == "openid email profile" and cfg.groups_claim == "groups"
    assert "the-client-secret" not in repr(cfg)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ROUTING_OIDC_ISSUER": "http://sso.example.com"}, sso.ISSUER_BAD),
        ({"ROUTING_OIDC_ISSUER": "ftp://sso.example.com"}, sso.ISSUER_BAD),
        ({"ROUTING_OIDC_ISSUER": "https://sso.example.com/?x=1"}, sso.ISSUER_BAD),
        ({"ROUTING_OIDC_CLIENT_ID": ""}, sso.CLIENT_ID_MISSING),
        ({"ROUTING_OIDC_CLIENT_SECRET": ""}, sso.CLIENT_SECRET_MISSING),
        ({"ROUTING_OIDC_SCOPES": "email profile"}, sso.SCOPES_BAD),
        ({"ROUTING_OIDC_GROUPS_CLAIM": "my groups"}, sso.GROUPS_CLAIM_BAD),
        ({"ROUTING_OIDC_ROLE_MAP": ""}, sso.ROLE_MAP_MISSING),
        (
            {"ROUTING_OIDC_ROLE_MAP": "staff=viewer,ops=root"},
            sso.ROLE_MAP_BAD.format(entry="ops=root"),
        ),
        (
            {"ROUTING_OIDC_TEAM_MAP": "team-red=red:owner"},
            sso.TEAM_MAP_BAD.format(entry="team-red=red:owner"),
        ),
        (
            {"ROUTING_OIDC_TEAM_MAP": "team-red=red"},
            sso.TEAM_MAP_BAD.format(entry="team-red=red"),
        ),
        (
            {"ROUTING_OIDC_TEAM_MAP": "team-red=Red Team:member"},
            sso.TEAM_MAP_BAD.format(entry="team-red=Red Team:member"),
        ),
        (
            {"ROUTING_OIDC_TEAM_MAP": "red:admin"},
            sso.TEAM_MAP_BAD.format(entry="red:admin"),
        ),
        ({"ROUTING_OIDC_MAX_SESSION_SECONDS": "ten"}, sso.MAX_SESSION_BAD),
        ({"ROUTING_OIDC_MAX_SESSION_SECONDS": "5"}, sso.MAX_SESSION_BAD),
        ({"ROUTING_LOCAL_LOGIN": "maybe"}, sso.LOCAL_LOGIN_BAD),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(settings, values, message):
    errors = _sso_errors(settings, **values)
    assert errors == [message]
    assert list(values)[0] in message
    assert "the-client-secret" not in message


def test_http_issuer_allowed_on_loopback_and_listed_private_hosts(settings):
    assert _sso_errors(settings, ROUTING_OIDC_ISSUER="http://127.0.0.1:8080") == []
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["sso.internal"]
    assert _sso_errors(settings, ROUTING_OIDC_ISSUER="http://sso.internal/realms/x") == []


def test_settings_without_an_issuer_are_reported(settings):
    errors = _sso_errors(settings, ROUTING_OIDC_ISSUER="")
    assert sso.SSO_WITHOUT_ISSUER.format(name="ROUTING_OIDC_CLIENT_ID") in errors


def test_passwords_off_without_sso_would_lock_everyone_out(settings):
    for name in GOOD:
        setattr(settings, name, "")
    settings.ROUTING_LOCAL_LOGIN = "off"
    assert [(m.id, m.msg) for m in check_sso_settings(None)] == [
        ("routing.E028", sso.LOCAL_LOGIN_OFF_WITHOUT_SSO)
    ]


def test_the_server_refuses_to_start_on_a_bad_role_map(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROUTING_")},
        **GOOD,
        "ROUTING_OIDC_ROLE_MAP": "staff=superhero",
        "SECRET_KEY": "x" * 60,
        "ROUTING_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ROUTING_HTTPS_REDIRECT": "0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "routing.E020" in done.stderr and "ROUTING_OIDC_ROLE_MAP" in done.stderr
    assert "the-client-secret" not in done.stderr + done.stdout


def test_a_discovery_document_naming_another_issuer_is_refused(idp, settings):
    with pytest.raises(sso.DiscoveryError) as refused:
        sso.discovery(idp.issuer + "/")
    assert "an unknown issuer is refused" in str(refused.value)


def test_discovery_is_cached(idp):
    first = sso.discovery(idp.issuer)
    assert first["issuer"] == idp.issuer
    assert "S256" in first["code_challenge_methods_supported"]
    assert sso.discovery(idp.issuer) is first


def test_an_unreachable_issuer_is_a_clear_error():
    with pytest.raises(sso.DiscoveryError) as refused:
        sso.discovery("http://127.0.0.1:9")
    assert "could not be read from http://127.0.0.1:9/.well-known/openid-configuration" in str(
        refused.value
    )


def test_a_group_name_may_contain_an_equals_sign():
    # The role is after the last "=" (a "," always separates entries).
    assert sso.parse_role_map("cn=admins=admin, /staff = viewer") == {
        "cn=admins": "admin",
        "/staff": "viewer",
    }


def test_the_team_map_is_group_team_and_team_role():
    # A group may give several teams; a team may come from several groups.
    assert sso.parse_team_map(
        "cn=red=red:member, red-leads = red : admin,red-leads=blue:member"
    ) == (
        ("cn=red", "red", "member"),
        ("red-leads", "red", "admin"),
        ("red-leads", "blue", "member"),
    )


def test_a_team_map_alone_is_enough(settings):
    assert (
        _sso_errors(settings, ROUTING_OIDC_ROLE_MAP="", ROUTING_OIDC_TEAM_MAP="t=red:member") == []
    )
    assert sso.config().role_map == {}


def test_the_team_map_without_an_issuer_is_reported(settings):
    errors = _sso_errors(settings, ROUTING_OIDC_ISSUER="", ROUTING_OIDC_TEAM_MAP="t=red:member")
    assert sso.SSO_WITHOUT_ISSUER.format(name="ROUTING_OIDC_TEAM_MAP") in errors


def test_the_higher_team_role_wins():
    cfg = sso.SsoConfig(
        issuer="https://sso.example.com",
        client_id="c",
        client_secret="s",
        scopes="openid",
        groups_claim="groups",
        role_map={},
        team_map=sso.parse_team_map("leads=red:admin,staff=red:member,staff=blue:member"),
        name="SSO",
        max_session_seconds=None,
    )
    claims = {"groups": ["staff", "leads", "unrelated"]}
    assert sso.mapped_teams(cfg, claims) == {"red": "admin", "blue": "member"}
    assert sso.mapped_teams(cfg, {"groups": "staff"}) == {"red": "member", "blue": "member"}
    assert sso.mapped_teams(cfg, {"groups": {"src1": "overage"}}) == {}
