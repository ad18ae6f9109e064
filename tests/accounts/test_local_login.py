"""ROUTING_LOCAL_LOGIN=off|admins|on: local passwords as the break-glass path beside SSO."""

from __future__ import annotations

import io
import sys

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.management import call_command

from accounts import services, sso
from accounts.forms import LOCAL_LOGIN_OFF

PASSWORD = "break-glass-Pw-7731"


def _user(username: str, role: str | None = None, **kwargs) -> User:
    user = User.objects.create_user(username, password=PASSWORD, **kwargs)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def _log_in(client, username: str):
    return client.post("/login/", {"username": username, "password": PASSWORD})


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def sso_configured(settings):
    settings.ROUTING_OIDC_ISSUER = "https://sso.example.com/realms/main"
    settings.ROUTING_OIDC_CLIENT_ID = "routing-admin"
    settings.ROUTING_OIDC_CLIENT_SECRET = "s3cret-value"
    settings.ROUTING_OIDC_ROLE_MAP = "staff=viewer"
    settings.ROUTING_OIDC_NAME = "Keycloak"


@pytest.mark.django_db
def test_on_lets_everyone_use_a_password(client, settings):
    settings.ROUTING_LOCAL_LOGIN = "on"
    _user("vera", "viewer")
    assert _log_in(client, "vera").status_code == 302
    assert _logged_in(client)


@pytest.mark.django_db
def test_admins_lets_only_admins_and_superusers_use_a_password(client, settings, sso_configured):
    settings.ROUTING_LOCAL_LOGIN = "admins"
    _user("vera", "viewer")
    _user("ada", "admin")
    _user("root", is_superuser=True)

    page = _log_in(client, "vera")
    assert page.status_code == 200 and not _logged_in(client)
    assert "Only admins may log in with a password" in page.content.decode()
    assert "Sign in with Keycloak" in page.content.decode()

    for name in ("ada", "root"):
        client.logout()
        assert _log_in(client, name).status_code == 302
        assert _logged_in(client)


@pytest.mark.django_db
def test_admins_ends_an_existing_password_session_of_a_viewer(client, settings, sso_configured):
    _user("vera", "viewer")
    assert _log_in(client, "vera").status_code == 302
    settings.ROUTING_LOCAL_LOGIN = "admins"
    assert client.get("/").headers["location"].startswith("/login/")


@pytest.mark.django_db
def test_off_refuses_every_password_and_offers_only_sso(client, settings, sso_configured):
    settings.ROUTING_LOCAL_LOGIN = "off"
    _user("root", is_superuser=True)

    page = client.get("/login/").content.decode()
    assert "Sign in with Keycloak" in page
    assert 'name="password"' not in page

    refused = _log_in(client, "root")
    assert refused.status_code == 200 and not _logged_in(client)
    assert LOCAL_LOGIN_OFF in refused.content.decode()


@pytest.mark.django_db
def test_the_command_line_can_always_make_a_break_glass_admin(client, settings, sso_configured):
    settings.ROUTING_LOCAL_LOGIN = "admins"
    old_stdin, sys.stdin = sys.stdin, io.StringIO(PASSWORD + "\n")
    try:
        call_command(
            "routing",
            "user",
            "add",
            "glass",
            "--role",
            "admin",
            "--password-stdin",
            stdout=io.StringIO(),
        )
    finally:
        sys.stdin = old_stdin
    assert _log_in(client, "glass").status_code == 302 and _logged_in(client)


@pytest.mark.django_db
def test_createsuperuser_resets_access_when_passwords_are_for_admins(
    client, settings, sso_configured, monkeypatch
):
    settings.ROUTING_LOCAL_LOGIN = "admins"
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command(
        "createsuperuser",
        "--noinput",
        "--username",
        "rescue",
        "--email",
        "r@example.test",
        stdout=io.StringIO(),
    )
    assert _log_in(client, "rescue").status_code == 302 and _logged_in(client)


@pytest.mark.django_db
def test_no_local_account_can_take_a_single_sign_on_username():
    # SSO accounts are "sso:<digest of issuer and sub>"; the ":" is refused locally.
    with pytest.raises(ValidationError) as refused:
        services.user_create(
            username=sso.username_for("https://idp", "alice"),
            password=PASSWORD,
            role="admin",
            actor="test",
        )
    assert "username" in refused.value.message_dict
