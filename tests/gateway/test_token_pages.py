"""The access token page: listing, creating (plaintext shown once), revoking, and who may."""

import hashlib
import re
from datetime import timedelta
from html import escape

import pytest
from django.urls import reverse
from django.utils import timezone

from gateway import services as token_services
from gateway.models import AccessToken
from providers.models import AuditEvent, RoutingGroup
from providers.validators import MODEL_ID_INVALID

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
NOTE = "Copy it now: it is not stored and cannot be shown again"


@pytest.fixture(autouse=True)
def _known_models(make_provider):
    # What these tokens are limited to exists: a group "fast", a provider "acme".
    RoutingGroup.objects.create(name="fast")
    make_provider(name="acme")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="token-{name}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {name}"
    return _text(match.group(1))


def _create(client, **fields):
    data = {"name": "ci-bot", "expires_in_days": "", "allowed_models": "", **fields}
    return client.post(reverse("token_list"), data)


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get(reverse("token_list"))
    assert response.status_code == 302 and response.url.startswith("/login/?next=/tokens/")


def test_editor_creates_a_token_and_sees_it_once(client, login_as):
    login_as("editor")
    response = _create(client, allowed_models="fast, acme/gpt-4o-mini default")
    assert response.status_code == 200
    html = response.content.decode()
    plaintext = re.search(r'value="(ra-[A-Za-z0-9_-]+)"', html).group(1)
    assert NOTE in html
    assert "no-store" in response["Cache-Control"]

    token = AccessToken.objects.get(name="ci-bot")
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.allowed_models == ["fast", "acme/gpt-4o-mini", "default"]
    assert token.expires_at is None
    assert AuditEvent.objects.filter(action="token.create", target="token:ci-bot").exists()

    again = client.get(reverse("token_list")).content.decode()
    assert plaintext not in again and NOTE not in again
    assert token.token_hash not in again and token.token_hash not in html
    row = _row(again, "ci-bot")
    assert f"{plaintext[:8]}…" in row and "editor" in row and "active" in row
    assert "fast" in row and "acme/gpt-4o-mini" in row


def test_expiry_in_days_sets_expires_at(client, login_as):
    login_as("admin")
    before = timezone.now()
    assert _create(client, expires_in_days="30").status_code == 200
    expires = AccessToken.objects.get(name="ci-bot").expires_at
    assert before + timedelta(days=30) <= expires <= timezone.now() + timedelta(days=30)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "Bad Name"}, "name", "may only contain lower-case letters"),
        ({"name": ""}, "name", "This field is required."),
        ({"expires_in_days": "0"}, "expires_in_days", "greater than or equal to 1"),
        ({"expires_in_days": "soon"}, "expires_in_days", "Enter a whole number."),
        ({"allowed_models": "fast bad!id"}, "allowed_models", escape("Allowed model 'bad!id'")),
        ({"allowed_models": "fast bad!id"}, "allowed_models", MODEL_ID_INVALID[:30]),
    ],
)
def test_errors_are_shown_next_to_the_field_and_input_is_kept(
    client, login_as, fields, field, message
):
    login_as("editor")
    response = _create(client, **fields)
    html = response.content.decode()
    assert response.status_code == 200
    assert not AccessToken.objects.exists()
    assert NOTE not in html
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    assert errors and message in _text(errors.group(1))
    assert 'aria-invalid="true"' in re.search(rf'<input[^>]*name="{field}"[^>]*>', html).group(0)
    value = fields.get(field)
    if value:
        assert f'value="{value}"' in html


def test_a_duplicate_name_is_refused_next_to_the_name(client, login_as):
    user = login_as("editor")
    token_services.token_create(name="ci-bot", actor=user)
    html = _create(client, allowed_models="fast").content.decode()
    assert "already exists" in _text(re.search(r'id="id_name_error">(.*?)</ul>', html, re.S)[1])
    assert 'value="fast"' in html
    assert AccessToken.objects.count() == 1


def test_editor_revokes_a_token(client, login_as):
    user = login_as("editor")
    token_services.token_create(name="ci-bot", actor=user)
    url = reverse("token_revoke", args=["ci-bot"])
    response = client.post(url)
    assert response.status_code == 302 and response.url == reverse("token_list")
    assert AccessToken.objects.get(name="ci-bot").revoked_at is not None
    html = client.get(reverse("token_list")).content.decode()
    assert "Revoked token ci-bot" in html
    assert "revoked" in _row(html, "ci-bot")
    assert f'action="{url}"' not in html
    assert AuditEvent.objects.filter(action="token.revoke", target="token:ci-bot").exists()


def test_revoke_with_htmx_swaps_the_table(client, login_as):
    user = login_as("admin")
    token_services.token_create(name="ci-bot", actor=user)
    response = client.post(reverse("token_revoke", args=["ci-bot"]), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith('<section id="token-table"')
    assert "Revoked token ci-bot" in html and "revoked" in _row(html, "ci-bot")
    # Again: already revoked, said so.
    html = client.post(reverse("token_revoke", args=["ci-bot"]), **HX).content.decode()
    assert "already revoked" in html


def test_revoke_is_post_only(client, login_as):
    user = login_as("editor")
    token_services.token_create(name="ci-bot", actor=user)
    assert client.get(reverse("token_revoke", args=["ci-bot"])).status_code == 405
    assert client.post(reverse("token_revoke", args=["nope"])).status_code == 404
    assert AccessToken.objects.get(name="ci-bot").revoked_at is None


@pytest.mark.parametrize("headers", [{}, HX])
def test_viewers_may_not_create_or_revoke(client, login_as, headers):
    token_services.token_create(name="ci-bot", actor="test")
    login_as("viewer")
    assert client.post(reverse("token_list"), {"name": "sneaky"}, **headers).status_code == 403
    url = reverse("token_revoke", args=["ci-bot"])
    assert client.post(url, **headers).status_code == 403
    assert client.get(url, **headers).status_code == 403
    assert list(AccessToken.objects.values_list("name", flat=True)) == ["ci-bot"]
    assert AccessToken.objects.get(name="ci-bot").revoked_at is None


def test_viewers_see_the_list_without_the_controls(client, login_as):
    token_services.token_create(name="ci-bot", actor="test")
    login_as("viewer")
    html = client.get(reverse("token_list")).content.decode()
    assert "ci-bot" in html and "active" in _row(html, "ci-bot")
    assert "Create token" not in html and "Revoke" not in html


def test_states_active_expired_and_revoked_are_shown(client, login_as):
    token_services.token_create(name="live-one", actor="test")
    expired, _ = token_services.token_create(
        name="old-one", expires_at=timezone.now() + timedelta(days=1), actor="test"
    )
    AccessToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = token_services.token_create(name="gone-one", actor="test")
    token_services.token_revoke(token=revoked, actor="test")
    login_as("editor")
    html = client.get(reverse("token_list")).content.decode()
    assert "active" in _row(html, "live-one")
    assert "expired" in _row(html, "old-one")
    assert "revoked" in _row(html, "gone-one")
    # Only the active token offers "Revoke".
    assert html.count('class="danger"') == 1
    assert "Revoke token live-one" in html


def test_a_bad_name_and_bad_allowed_models_are_shown_together(client, login_as):
    login_as("editor")
    response = _create(client, name="Bad Name", allowed_models="fast nosuchgroup ghost/m")
    html = response.content.decode()
    summary = html.split('id="error-summary"')[1].split("</div>")[0]
    assert '<a href="#id_name">' in summary and '<a href="#id_allowed_models">' in summary
    name_errors = _text(re.search(r'id="id_name_error">(.*?)</ul>', html, re.S)[1])
    assert "lower-case" in name_errors.lower()
    allowed = _text(re.search(r'id="id_allowed_models_error">(.*?)</ul>', html, re.S)[1])
    assert escape(token_services.UNKNOWN_ALLOWED_GROUP.format(entry="nosuchgroup")) in allowed
    unknown = token_services.UNKNOWN_ALLOWED_PROVIDER.format(entry="ghost/m", provider="ghost")
    assert escape(unknown) in allowed
    assert not AccessToken.objects.exists()


def test_the_token_form_carries_the_servers_rules(client, login_as):
    login_as("editor")
    html = client.get(reverse("token_list")).content.decode()
    name = re.search(r'<input[^>]*id="id_name"[^>]*>', html)[0]
    assert "required" in name and 'pattern="[a-z0-9][a-z0-9_\\-]*"' in name
    allowed = re.search(r'<input[^>]*id="id_allowed_models"[^>]*>', html)[0]
    assert "pattern=" in allowed and "required" not in allowed


# --- teams -----------------------------------------------------------------------------


@pytest.fixture
def red(db):
    from accounts.services import team_create

    return team_create(name="red", display_name="Red team", allowed_models=["fast"], actor="t")


def test_the_table_shows_each_tokens_team(client, login_as, red):
    token_services.token_create(name="red-bot", team=red, actor="test")
    token_services.token_create(name="mine", actor="test")
    login_as("viewer")
    html = client.get(reverse("token_list")).content.decode()
    assert '<th scope="col">Team</th>' in html
    assert "Red team" in _row(html, "red-bot") and 'href="/teams/red/"' in html
    assert _row(html, "mine").split()[1] == "-"


def test_an_editor_gives_a_new_token_to_a_team(client, login_as, red):
    login_as("editor")
    html = client.get(reverse("token_list")).content.decode()
    assert '<label for="id_team">Team</label>' in html
    assert '<option value="red">' in html and "No team (a global token)" in html
    response = _create(client, name="red-bot", team="red", allowed_models="fast")
    assert response.status_code == 200 and NOTE in response.content.decode()
    assert AccessToken.objects.get(name="red-bot").team == red
    event = AuditEvent.objects.get(action="token.create", target="token:red-bot")
    assert event.changes["team"] == "red"
    # Without a team chosen, the token is global.
    assert _create(client).status_code == 200
    assert AccessToken.objects.get(name="ci-bot").team is None


def test_a_token_wider_than_its_team_is_refused_next_to_allowed_models(client, login_as, red):
    login_as("editor")
    response = _create(client, team="red", allowed_models="acme/gpt-4o-mini")
    html = response.content.decode()
    assert NOTE not in html
    assert "is not among team red" in html
    assert re.search(r'id="id_allowed_models_error"', html)
    assert not AccessToken.objects.exists()


def test_an_unknown_team_is_refused_next_to_team(client, login_as, red):
    login_as("editor")
    html = _create(client, team="blue").content.decode()
    assert 'id="id_team_error"' in html and not AccessToken.objects.exists()


@pytest.mark.parametrize("role", ["member", "admin"])
def test_a_team_only_member_gets_403_on_the_tokens_page(client, red, role):
    from django.contrib.auth.models import User

    from accounts.services import team_member_set

    user = User.objects.create_user("pat", password="pw")
    team_member_set(team=red, user=user, role=role, actor="test")
    client.force_login(user)
    assert client.get(reverse("token_list")).status_code == 403
    assert _create(client, team="red").status_code == 403
    token, _ = token_services.token_create(name="red-bot", team=red, actor="test")
    assert client.post(reverse("token_revoke", args=["red-bot"])).status_code == 403
    assert not AccessToken.objects.filter(name="ci-bot").exists()
    token.refresh_from_db()
    assert token.revoked_at is None
