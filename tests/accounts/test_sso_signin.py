"""Single sign-on end to end: a real HTTP client follows every redirect between live_server
and a real OpenID provider (oidc-provider under Node) and fills in its login form."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from accounts import oidc, sso
from accounts.roles import user_role
from providers.models import AuditEvent
from tests.oidc_provider import CLIENT_SECRET, configure, start_provider, submit_login


@pytest.fixture
def web(live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def _start(web: httpx.Client) -> httpx.Response:
    """The login page's "Sign in with ..." link, followed to the provider's login form."""
    login_page = web.get("/login/")
    assert "Sign in with Test IdP" in login_page.text
    return web.get("/oidc/authenticate/", follow_redirects=True)


def sign_in(web: httpx.Client, login: str) -> httpx.Response:
    return submit_login(web, _start(web), login)


def _sso_user(provider, login: str) -> User:
    return User.objects.get(username=sso.username_for(provider.issuer, login))


def test_it_signs_in_with_the_role_of_a_group(idp, web):
    idp.accounts({"alice": ["llm-editors", "unrelated"]})

    page = sign_in(web, "alice")

    assert page.status_code == 200
    assert page.url.path == "/"  # the overview
    user = _sso_user(idp, "alice")
    assert user_role(user) == "editor"
    assert (user.email, user.first_name) == ("alice@example.test", "Alice")
    assert not user.has_usable_password()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["sso.user_create", "sso.role", "sso.sign_in"]
    # The session ends when the ID token does (oidc-provider's lifetime: 3600 s).
    session = Session.objects.get()
    left = (session.expire_date - datetime.now(UTC)).total_seconds()
    assert 3500 < left <= 3600


def test_the_highest_mapped_group_wins(idp, web):
    idp.accounts({"carol": ["staff", "platform-admins"]})
    assert sign_in(web, "carol").status_code == 200
    assert user_role(_sso_user(idp, "carol")) == "admin"


def test_a_role_removed_at_the_idp_is_gone_at_the_next_sign_in(idp, live_server):
    idp.accounts({"alice": ["platform-admins"]})
    with httpx.Client(base_url=live_server.url) as first:
        assert sign_in(first, "alice").status_code == 200
    assert user_role(_sso_user(idp, "alice")) == "admin"

    idp.accounts({"alice": ["staff"]})
    with httpx.Client(base_url=live_server.url) as second:
        assert sign_in(second, "alice").status_code == 200
    assert user_role(_sso_user(idp, "alice")) == "viewer"
    change = AuditEvent.objects.filter(action="sso.role").latest("id")
    assert change.changes == {"role": ["admin", "viewer"]}
    assert change.actor_name == f"idp:{idp.issuer}"


def test_no_mapped_group_gets_a_403_page_and_loses_the_role(idp, live_server):
    idp.accounts({"alice": ["llm-editors"]})
    with httpx.Client(base_url=live_server.url) as first:
        sign_in(first, "alice")
    idp.accounts({"alice": ["unrelated"]})

    with httpx.Client(base_url=live_server.url) as second:
        page = sign_in(second, "alice")
        assert page.status_code == 403
        assert sso_module_text("no group that Routing Admin maps") in page.text
        assert "<h1>Sign-in refused</h1>" in page.text
        # Not signed in: the overview sends to the login page.
        assert second.get("/").headers["location"].startswith("/login/")
    assert user_role(_sso_user(idp, "alice")) is None
    failure = AuditEvent.objects.filter(action="sso.failure").latest("id")
    assert "no group" in failure.changes["reason"][1]


def sso_module_text(fragment: str) -> str:
    assert fragment in sso.NO_MAPPED_GROUP
    return fragment


def test_a_first_sign_in_without_a_mapped_group_is_refused(idp, web):
    idp.accounts({"bob": ["unrelated"]})
    page = sign_in(web, "bob")
    assert page.status_code == 403
    assert user_role(_sso_user(idp, "bob")) is None


def test_a_known_local_email_is_never_taken_over(idp, web):
    # Matching is by (issuer, sub), never by e-mail.
    local = User.objects.create_user("alice", email="alice@example.test", password="x" * 12)
    idp.accounts({"alice": ["platform-admins"]})
    assert sign_in(web, "alice").status_code == 200
    assert _sso_user(idp, "alice").pk != local.pk
    assert user_role(User.objects.get(pk=local.pk)) is None


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("signature", "Signature verification failed"),
        ("foreign_key", "a key the issuer does not list"),
        ("iss", "Invalid issuer"),
        ("aud", "Audience doesn't match"),
        ("exp", "Signature has expired"),
        ("nonce", "nonce mismatch"),
    ],
)
def test_a_tampered_id_token_is_refused(idp, web, mode, detail):
    idp.accounts({"mallory": ["staff"]})
    idp.tamper(mode)

    page = sign_in(web, "mallory")

    assert page.status_code == 403
    assert detail in html.unescape(page.text)
    assert not User.objects.filter(username=sso.username_for(idp.issuer, "mallory")).exists()
    assert "_auth_user_id" not in str([s.get_decoded() for s in Session.objects.all()])
    failure = AuditEvent.objects.get(action="sso.failure")
    assert detail in failure.changes["reason"][1]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_wrong_state_is_refused(idp, web):
    idp.accounts({"alice": ["staff"]})
    redirect = web.get("/oidc/authenticate/")
    assert redirect.status_code == 302
    authorize = redirect.headers["location"]
    query = dict(parse_qsl(urlsplit(authorize).query))
    # The request carries PKCE (S256), a state and a nonce.
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["state"] and query["nonce"]

    form = web.get(_with_query(authorize, state="forged"), follow_redirects=True)
    page = submit_login(web, form, "alice")

    assert page.status_code == 403
    assert oidc.STATE_UNKNOWN in page.text
    assert not User.objects.filter(username=sso.username_for(idp.issuer, "alice")).exists()


def test_a_callback_without_a_started_sign_in_is_refused(idp, web):
    page = web.get("/oidc/callback/", params={"code": "x", "state": "y"})
    assert page.status_code == 403
    assert oidc.STATE_UNKNOWN in page.text


def test_an_unknown_issuer_is_refused(idp, web, settings):
    # The same server, configured under another name (a trailing slash): the issuer that its
    # discovery document names is not the configured one.
    settings.ROUTING_OIDC_ISSUER = idp.issuer + "/"
    page = web.get("/oidc/authenticate/")
    assert page.status_code == 502
    assert "an unknown issuer is refused" in page.text
    assert AuditEvent.objects.get(action="sso.failure")


def test_the_session_ends_earlier_when_configured(idp, web, settings):
    settings.ROUTING_OIDC_MAX_SESSION_SECONDS = "600"
    idp.accounts({"alice": ["staff"]})
    assert sign_in(web, "alice").status_code == 200
    left = (Session.objects.get().expire_date - datetime.now(UTC)).total_seconds()
    assert 500 < left <= 600


def test_the_callback_is_throttled_per_address(idp, web, settings):
    settings.ROUTING_LOGIN_IP_FAILURE_LIMIT = 2
    for _ in range(2):
        assert web.get("/oidc/callback/", params={"code": "x", "state": "y"}).status_code == 403
    blocked = web.get("/oidc/callback/", params={"code": "x", "state": "y"})
    assert blocked.status_code == 429
    assert "Too many failed logins from your network address" in blocked.text


def test_the_client_secret_is_never_shown_or_audited(idp, web, live_server):
    idp.accounts({"alice": ["staff"]})
    assert CLIENT_SECRET not in sign_in(web, "alice").text
    idp.tamper("aud")
    with httpx.Client(base_url=live_server.url) as other:
        assert CLIENT_SECRET not in sign_in(other, "alice").text
    for event in AuditEvent.objects.all():
        assert CLIENT_SECRET not in str(event.changes) + event.target + event.actor_name


def test_keys_rotated_by_the_issuer_are_picked_up(
    live_server, settings, tmp_path, transactional_db
):
    accounts = tmp_path / "accounts.json"
    first = start_provider(live_server, accounts, OIDC_KID="key-2026-11")
    try:
        configure(settings, first)
        first.accounts({"alice": ["staff"]})
        with httpx.Client(base_url=live_server.url) as web:
            assert sign_in(web, "alice").status_code == 200
    finally:
        first.stop()
    # The same issuer (same port) signing with a new key; the discovery document stays cached.
    second = start_provider(
        live_server, accounts, OIDC_KID="key-2026-12", OIDC_PORT=str(first.port)
    )
    try:
        assert second.issuer == first.issuer
        with httpx.Client(base_url=live_server.url) as web:
            assert sign_in(web, "alice").status_code == 200
    finally:
        second.stop()
    assert AuditEvent.objects.filter(action="sso.sign_in").count() == 2


def test_es256_id_tokens_are_accepted(live_server, settings, tmp_path, transactional_db):
    provider = start_provider(live_server, tmp_path / "accounts.json", OIDC_SIGN_ALG="ES256")
    try:
        configure(settings, provider)
        provider.accounts({"erin": ["llm-editors"]})
        with httpx.Client(base_url=live_server.url) as web:
            assert sign_in(web, "erin").status_code == 200
        assert user_role(_sso_user(provider, "erin")) == "editor"
    finally:
        provider.stop()


def test_a_deactivated_account_is_refused(idp, live_server):
    idp.accounts({"alice": ["staff"]})
    with httpx.Client(base_url=live_server.url) as first:
        assert sign_in(first, "alice").status_code == 200
        User.objects.filter(username=sso.username_for(idp.issuer, "alice")).update(is_active=False)
        # The running session ends too.
        assert first.get("/").headers["location"].startswith("/login/")
    with httpx.Client(base_url=live_server.url) as second:
        page = sign_in(second, "alice")
    assert page.status_code == 403
    assert html.escape(oidc.ACCOUNT_INACTIVE) in page.text


def test_sessions_from_sso_end_when_sso_is_turned_off(idp, web, settings):
    idp.accounts({"alice": ["staff"]})
    assert sign_in(web, "alice").status_code == 200
    assert web.get("/").status_code == 200
    settings.ROUTING_OIDC_ISSUER = ""
    assert web.get("/").headers["location"].startswith("/login/")
