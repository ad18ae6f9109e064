"""The team pages (/teams/, /teams/<name>/ and their POSTs): who may do what (TEAMS.md's
matrix), the plaintext of a team's token shown once, service errors beside their field, the
audit rows, and a team page whose number of queries does not grow with its tokens."""

import hashlib
import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Team, TeamMembership
from gateway import services as token_services
from gateway.models import AccessToken
from providers.models import AuditEvent, RoutingGroup
from usage import request_log

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
NOTE = "Copy it now: it is not stored and cannot be shown again"
PASSWORD = "correct-horse-battery-42"
# Who is who: "member" and "lead" (a team admin) are in red, "outsider" is blue's admin; the
# other three have a global role and no team.
PEOPLE = ("member", "lead", "outsider", "viewer", "editor", "admin")


@pytest.fixture
def world(make_provider):
    make_provider(name="acme")
    RoutingGroup.objects.create(name="fast")
    RoutingGroup.objects.create(name="slow")
    users = {}
    for name in PEOPLE:
        users[name] = User.objects.create_user(name, password=PASSWORD)
        if name in ("viewer", "editor", "admin"):
            users[name].groups.add(Group.objects.get_or_create(name=name)[0])
    red = services.team_create(
        name="red", display_name="Red team", allowed_models=["fast", "default"], actor="test"
    )
    blue = services.team_create(name="blue", actor="test")
    services.team_member_set(team=red, user=users["member"], role="member", actor="test")
    services.team_member_set(team=red, user=users["lead"], role="admin", actor="test")
    services.team_member_set(team=blue, user=users["outsider"], role="admin", actor="test")
    token_services.token_create(name="red-bot", team=red, actor="test")
    token_services.token_create(name="blue-bot", team=blue, actor="test")
    token_services.token_create(name="global-bot", actor="test")
    return users


@pytest.fixture
def as_(client, world):
    def login(name: str):
        client.force_login(world[name])
        return client

    return login


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _headings(html: str) -> list[str]:
    return [_text(h).strip() for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html, re.S)]


def _field_errors(html: str, field_id: str) -> str:
    """The error list Django renders in the field group of `field_id`."""
    match = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', html, re.S)
    assert match, f"no errors beside {field_id}"
    return _text(match.group(1))


def _create_token(client, team="red", **fields):
    data = {"name": "ci-bot", "expires_in_days": "", "allowed_models": "", **fields}
    return client.post(reverse("team_token_create", args=[team]), data)


def _urls(team="red", token="red-bot", username="member"):
    """Every team URL with a method; the POSTs carry a form that would succeed."""
    return [
        ("get", reverse("team_list"), {}),
        ("post", reverse("team_list"), {"name": "green"}),
        ("get", reverse("team_detail", args=[team]), {}),
        ("post", reverse("team_detail", args=[team]), {"display_name": "X"}),
        ("post", reverse("team_token_create", args=[team]), {"name": "new-bot"}),
        ("post", reverse("team_token_revoke", args=[team, token]), {}),
        ("post", reverse("team_member_add", args=[team]), {"user": "viewer", "role": "member"}),
        ("post", reverse("team_member_remove", args=[team, username]), {}),
        ("post", reverse("team_remove", args=[team]), {}),
    ]


# --- who may ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "data"), _urls())
def test_it_sends_anonymous_visitors_to_login(client, world, method, url, data):
    response = getattr(client, method)(url, data)
    assert response.status_code == 302 and response.url.startswith("/login/?next=")
    assert Team.objects.count() == 2 and AccessToken.objects.count() == 3


@pytest.mark.parametrize(("method", "url", "data"), _urls()[2:])
def test_another_teams_admin_gets_403_on_everything(as_, method, url, data):
    client = as_("outsider")
    for headers in ({}, HX):
        response = getattr(client, method)(url, data, **headers)
        assert response.status_code == 403, (method, url)
    assert AccessToken.objects.count() == 3
    assert TeamMembership.objects.filter(team__name="red").count() == 2
    assert Team.objects.get(name="red").display_name == "Red team"


def test_a_member_outside_a_team_learns_nothing_about_its_name(as_):
    client = as_("member")
    assert client.get(reverse("team_detail", args=["blue"])).status_code == 403
    assert client.get(reverse("team_detail", args=["no-such"])).status_code == 403
    # Someone who may see every team is told it does not exist.
    assert as_("viewer").get(reverse("team_detail", args=["no-such"])).status_code == 404


# The last column: may the person run red's tokens (create, revoke, read its audit)?
MATRIX = [
    ("member", 200, False),
    ("lead", 200, True),
    ("viewer", 200, False),
    ("editor", 200, True),
    ("admin", 200, True),
]


@pytest.mark.parametrize(("who", "status", "runs_tokens"), MATRIX)
def test_the_team_page_shows_each_role_what_it_may(as_, who, status, runs_tokens):
    response = as_(who).get(reverse("team_detail", args=["red"]))
    assert response.status_code == status
    html = response.content.decode()
    headings = _headings(html)
    assert {"Models", "Members", "Tokens", "Usage"} <= set(headings)
    assert ("Audit" in headings) is runs_tokens
    assert ("Create a token" in headings) is runs_tokens
    assert ('aria-label="Revoke token red-bot"' in html) is runs_tokens
    # Only a global admin edits the team and its members.
    is_admin = who == "admin"
    assert ("Save team" in html) is is_admin
    assert ("Add member" in html) is is_admin
    assert ("Remove team" in html) is is_admin
    # The team's tokens, never another's and never a secret.
    assert 'id="token-red-bot"' in html
    assert "blue-bot" not in html and "global-bot" not in html
    token = AccessToken.objects.get(name="red-bot")
    assert token.token_hash not in html


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_members_and_viewers_may_not_create_or_revoke_a_teams_token(as_, who):
    client = as_(who)
    response = _create_token(client)
    assert response.status_code == 403
    revoke = reverse("team_token_revoke", args=["red", "red-bot"])
    assert client.post(revoke, **HX).status_code == 403
    assert not AccessToken.objects.filter(name="ci-bot").exists()
    assert AccessToken.objects.get(name="red-bot").revoked_at is None


@pytest.mark.parametrize("who", ["member", "lead", "viewer", "editor"])
def test_only_a_global_admin_changes_a_team_or_its_members(as_, who):
    client = as_(who)
    for method, url, data in _urls()[1:]:
        if "/tokens/" in url or (method == "get"):
            continue
        assert client.post(url, data).status_code == 403, (who, url)
    assert Team.objects.filter(name="red", display_name="Red team").exists()
    assert not Team.objects.filter(name="green").exists()
    assert TeamMembership.objects.filter(team__name="red").count() == 2


def test_a_person_with_no_role_and_no_team_gets_403(client, world):
    client.force_login(User.objects.create_user("nobody", password=PASSWORD))
    assert client.get(reverse("team_list")).status_code == 403
    assert client.get(reverse("team_detail", args=["red"])).status_code == 403


def test_post_only_urls_refuse_get(as_):
    client = as_("admin")
    pages = (reverse("team_list"), reverse("team_detail", args=["red"]))
    for method, url, _ in _urls():
        if method == "post" and url not in pages:
            assert client.get(url).status_code == 405, url


# --- the list ----------------------------------------------------------------------------


def test_a_member_lists_only_their_own_teams(as_, world):
    blue = Team.objects.get(name="blue")
    services.team_member_set(team=blue, user=world["member"], role="member", actor="test")
    services.team_create(name="green", actor="test")
    html = as_("member").get(reverse("team_list")).content.decode()
    assert 'id="team-red"' in html and 'id="team-blue"' in html
    assert 'id="team-green"' not in html
    assert "New team" not in html
    row = _text(re.search(r'<tr id="team-red">(.*?)</tr>', html, re.S).group(1))
    assert "Red team" in row and "fast" in row and "member" in row


def test_a_viewer_lists_every_team_with_counts(as_):
    html = as_("viewer").get(reverse("team_list")).content.decode()
    row = _text(re.search(r'<tr id="team-red">(.*?)</tr>', html, re.S).group(1))
    # Two members, one live token.
    assert re.search(r"\b2\b.*\b1\b", row)
    assert 'id="team-blue"' in html and "New team" not in html


def test_an_admin_adds_a_team(as_):
    client = as_("admin")
    html = client.get(reverse("team_list")).content.decode()
    for label in ("Name", "Display name", "Allowed models"):
        assert f">{label}</label>" in html
    assert "Add team" in html
    response = client.post(
        reverse("team_list"),
        {"name": "green", "display_name": "Green", "allowed_models": "fast, acme/gpt-4o-mini"},
    )
    assert response.status_code == 302 and response.url == "/teams/green/"
    team = Team.objects.get(name="green")
    assert team.allowed_models == ["fast", "acme/gpt-4o-mini"]
    event = AuditEvent.objects.get(action="team.create", target="team:green")
    assert event.actor_name == "admin"


def test_a_refused_team_shows_each_error_beside_its_field(as_):
    response = as_("admin").post(
        reverse("team_list"), {"name": "red", "display_name": "", "allowed_models": "nosuch"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "already exists" in _field_errors(html, "id_name")
    assert "nosuch" in _field_errors(html, "id_allowed_models")
    assert Team.objects.count() == 2


def test_no_teams_yet_says_so(client, db):
    admin = User.objects.create_user("admin", password=PASSWORD)
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    client.force_login(admin)
    html = client.get(reverse("team_list")).content.decode()
    assert "No teams yet" in html


# --- a team's tokens ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["lead", "editor"])
def test_a_team_admin_creates_a_token_and_sees_it_once(as_, who):
    client = as_(who)
    response = _create_token(client, allowed_models="fast")
    assert response.status_code == 200
    html = response.content.decode()
    plaintext = re.search(r'value="(ra-[A-Za-z0-9_-]+)"', html).group(1)
    assert NOTE in html
    assert "no-store" in response["Cache-Control"]
    # The same first calls as /tokens/, with this token and a model the team may call.
    assert f"Authorization: Bearer {plaintext}" in html
    assert "&quot;model&quot;: &quot;fast&quot;" in html

    token = AccessToken.objects.get(name="ci-bot")
    assert token.team.name == "red" and token.allowed_models == ["fast"]
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.token_hash not in html
    event = AuditEvent.objects.get(action="token.create", target="token:ci-bot")
    assert event.changes["team"] == "red" and plaintext not in str(event.changes)

    again = client.get(reverse("team_detail", args=["red"])).content.decode()
    assert plaintext not in again and NOTE not in again
    assert 'id="token-ci-bot"' in again


def test_a_token_without_models_of_its_own_first_calls_a_model_of_its_team(as_):
    html = _create_token(as_("lead")).content.decode()
    assert "&quot;model&quot;: &quot;fast&quot;" in html


def test_a_token_wider_than_its_team_is_refused_beside_allowed_models(as_):
    response = _create_token(as_("lead"), allowed_models="slow")
    assert response.status_code == 200
    errors = _field_errors(response.content.decode(), "id_allowed_models")
    assert "not among team red's models" in errors
    assert not AccessToken.objects.filter(name="ci-bot").exists()


def test_a_refused_token_shows_every_error_and_no_token(as_):
    response = _create_token(as_("lead"), name="red-bot", allowed_models="fast slow")
    html = response.content.decode()
    assert "already exists" in _field_errors(html, "id_name")
    assert "'slow'" in _field_errors(html, "id_allowed_models")
    assert 'value="fast slow"' in html
    assert NOTE not in html and 'value="ra-' not in html
    assert AccessToken.objects.filter(team__name="red").count() == 1


def test_the_team_token_form_has_the_token_pages_labels(as_):
    html = as_("lead").get(reverse("team_detail", args=["red"])).content.decode()
    for label in ("Name", "Expires in (days)", "Allowed models"):
        assert f">{label}</label>" in html
    assert "Create token" in html
    assert 'action="/teams/red/tokens/"' in html


def test_a_team_admin_revokes_a_token(as_):
    client = as_("lead")
    response = client.post(reverse("team_token_revoke", args=["red", "red-bot"]))
    assert response.status_code == 302 and response.url == "/teams/red/"
    assert AccessToken.objects.get(name="red-bot").revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", target="token:red-bot").exists()
    again = client.get(reverse("team_detail", args=["red"])).content.decode()
    assert "Revoked token red-bot" in again


def test_revoke_with_htmx_swaps_the_token_table(as_):
    response = as_("lead").post(reverse("team_token_revoke", args=["red", "red-bot"]), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="team-tokens"')
    assert "Revoked token red-bot" in html and "revoked" in html
    assert 'aria-label="Revoke token red-bot"' not in html


def test_a_team_page_cannot_revoke_another_teams_or_a_global_token(as_):
    client = as_("lead")
    for name in ("blue-bot", "global-bot"):
        assert client.post(reverse("team_token_revoke", args=["red", name])).status_code == 404
    assert AccessToken.objects.filter(revoked_at__isnull=False).count() == 0


def test_revoking_twice_says_so(as_):
    client = as_("lead")
    url = reverse("team_token_revoke", args=["red", "red-bot"])
    client.post(url)
    html = client.post(url, **HX).content.decode()
    assert "already revoked" in html


def test_no_tokens_yet_says_so(as_):
    services.team_create(name="green", actor="test")
    html = as_("admin").get(reverse("team_detail", args=["green"])).content.decode()
    assert "No tokens yet" in html and "No members yet" in html
    assert "No requests in the last 24 hours" in html
    assert "Every model" in html


# --- a global admin's: the team, its members, removing it --------------------------------


def test_an_admin_saves_the_team(as_):
    client = as_("admin")
    html = client.get(reverse("team_detail", args=["red"])).content.decode()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "two elements share an id"
    assert '<label for="id_team_allowed_models">Allowed models</label>' in html
    assert 'value="fast, default"' in html and 'value="Red team"' in html
    data = {"display_name": "Reds", "allowed_models": "fast"}
    response = client.post(reverse("team_detail", args=["red"]), data)
    assert response.status_code == 302 and response.url == "/teams/red/"
    team = Team.objects.get(name="red")
    assert team.display_name == "Reds" and team.allowed_models == ["fast"]
    event = AuditEvent.objects.get(action="team.update", target="team:red")
    assert event.changes["allowed_models"] == [["fast", "default"], ["fast"]]


def test_a_bad_model_for_the_team_is_shown_beside_allowed_models(as_):
    data = {"display_name": "Red team", "allowed_models": "fast, acme"}
    response = as_("admin").post(reverse("team_detail", args=["red"]), data)
    assert response.status_code == 200
    assert "acme" in _field_errors(response.content.decode(), "id_team_allowed_models")
    assert Team.objects.get(name="red").allowed_models == ["fast", "default"]


def test_an_admin_adds_a_member_and_changes_a_role(as_, world):
    client = as_("admin")
    url = reverse("team_member_add", args=["red"])
    html = client.get(reverse("team_detail", args=["red"])).content.decode()
    assert ">User</label>" in html and ">Team role</label>" in html
    response = client.post(url, {"user": "viewer", "role": "admin"})
    assert response.status_code == 302
    assert TeamMembership.objects.get(team__name="red", user=world["viewer"]).role == "admin"
    client.post(url, {"user": "member", "role": "admin"})
    assert TeamMembership.objects.get(team__name="red", user=world["member"]).role == "admin"
    changes = [e.changes for e in AuditEvent.objects.filter(action="team.member")]
    assert {"user": "viewer", "role": [None, "admin"]} in changes
    assert {"user": "member", "role": ["member", "admin"]} in changes


def test_adding_an_unknown_user_is_refused_beside_user(as_):
    response = as_("admin").post(
        reverse("team_member_add", args=["red"]), {"user": "ghost", "role": "member"}
    )
    assert response.status_code == 200
    assert "No user named 'ghost'" in _field_errors(response.content.decode(), "id_user")


def test_an_admin_removes_a_member(as_, world):
    client = as_("admin")
    response = client.post(reverse("team_member_remove", args=["red", "member"]))
    assert response.status_code == 302 and response.url == "/teams/red/"
    assert not TeamMembership.objects.filter(user=world["member"]).exists()
    assert AuditEvent.objects.filter(
        action="team.member", target="team:red", changes__role=["member", None]
    ).exists()
    # The removed member has lost the team at once.
    client.force_login(world["member"])
    assert client.get(reverse("team_detail", args=["red"])).status_code == 403


def test_removing_a_team_with_live_tokens_is_refused_on_its_page(as_):
    client = as_("admin")
    response = client.post(reverse("team_remove", args=["red"]))
    assert response.status_code == 200
    html = response.content.decode()
    refusal = re.search(r'id="remove-error" role="alert">(.*?)</ul>', html, re.S).group(1)
    assert "still owns live tokens (red-bot)" in refusal
    assert Team.objects.filter(name="red").exists()


def test_an_admin_removes_a_team(as_):
    client = as_("admin")
    client.post(reverse("team_token_revoke", args=["red", "red-bot"]))
    response = client.post(reverse("team_remove", args=["red"]))
    assert response.status_code == 302 and response.url == "/teams/"
    assert not Team.objects.filter(name="red").exists()
    assert AccessToken.objects.get(name="red-bot").team is None
    assert AuditEvent.objects.filter(action="team.remove", target="team:red").exists()


# --- usage and audit -----------------------------------------------------------------------


def _requests(token_name: str, count: int, *, at=None) -> None:
    at = at or timezone.now()
    request_log.write(
        [
            {
                "at": at,
                "token_name": token_name,
                "requested_model": "fast",
                "provider": "acme",
                "model": "gpt-4o-mini",
                "ok": i > 0,
                "latency_ms": 100.0,
                "prompt_tokens": 10,
                "completion_tokens": 5,
            }
            for i in range(count)
        ]
    )


def test_the_usage_section_sums_the_teams_tokens_of_the_last_24_hours(as_):
    _requests("red-bot", 3)
    _requests("blue-bot", 7)
    _requests("red-bot", 11, at=timezone.now() - timedelta(days=3))
    html = as_("member").get(reverse("team_detail", args=["red"])).content.decode()
    usage = _text(re.search(r'id="usage-heading">.*?</section>', html, re.S).group(0))
    assert "Requests 3" in usage and "Errors 1" in usage and "Tokens 45" in usage
    assert 'href="/usage/?team=red"' in html


def test_the_audit_section_lists_the_team_and_its_tokens_only(as_):
    html = as_("lead").get(reverse("team_detail", args=["red"])).content.decode()
    audit = re.search(r'id="audit-heading">.*?</section>', html, re.S).group(0)
    assert "team:red" in audit and "token:red-bot" in audit
    assert "team.create" in audit and "token.create" in audit
    assert "blue" not in audit and "global-bot" not in audit


def _page_queries(client, django_assert_num_queries, count: int) -> None:
    with django_assert_num_queries(count):
        assert client.get(reverse("team_detail", args=["red"])).status_code == 200


# Three of them read the limits' use: the last minute, the spend, the latest refusals.
@pytest.mark.parametrize(("who", "queries"), [("member", 11), ("lead", 12), ("admin", 12)])
def test_the_team_page_costs_the_same_queries_however_many_tokens(
    as_, world, django_assert_num_queries, who, queries
):
    client = as_(who)
    _page_queries(client, django_assert_num_queries, queries)
    red = Team.objects.get(name="red")
    for i in range(15):
        token, _ = token_services.token_create(name=f"many-{i}", team=red, actor=world["lead"])
        if i % 2:
            token_services.token_revoke(token=token, actor="test")
        user = User.objects.create_user(f"person-{i}", password=PASSWORD)
        services.team_member_set(team=red, user=user, role="member", actor="test")
    _requests("many-1", 2)
    _page_queries(client, django_assert_num_queries, queries)


# --- landing and the menu ------------------------------------------------------------------


def test_after_login_a_member_of_one_team_lands_on_its_page(client, world):
    response = client.post(reverse("login"), {"username": "member", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/teams/red/"
    # However they got there: the overview sends them on (single sign-on and ?next=/ end there).
    assert client.get("/").url == "/teams/red/"


def test_after_login_a_member_of_several_teams_lands_on_the_list(client, world):
    blue = Team.objects.get(name="blue")
    services.team_member_set(team=blue, user=world["member"], role="member", actor="test")
    response = client.post(reverse("login"), {"username": "member", "password": PASSWORD})
    assert response.url == "/teams/"
    assert client.get("/").url == "/teams/"


def test_after_login_a_global_role_still_lands_on_the_overview(client, world):
    services.team_member_set(
        team=Team.objects.get(name="red"), user=world["viewer"], role="member", actor="test"
    )
    response = client.post(reverse("login"), {"username": "viewer", "password": PASSWORD})
    assert response.url == "/"
    assert client.get("/").status_code == 200


def test_the_menu_of_a_team_member_has_their_teams_and_nothing_global(as_):
    html = as_("member").get(reverse("team_detail", args=["red"])).content.decode()
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    assert 'href="/teams/"' in nav and 'href="/teams/red/"' in nav and 'href="/usage/"' in nav
    assert 'aria-current="page">red<' in nav.replace("\n", "")
    for url in ("overview", "token_list", "audit_log", "group_list", "users"):
        assert f'href="{reverse(url)}"' not in nav, url
    assert "team member" in html


def test_the_menu_of_a_global_role_links_teams(as_):
    html = as_("viewer").get(reverse("team_list")).content.decode()
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    assert 'href="/teams/" aria-current="page"' in nav and 'href="/"' in nav


def test_a_team_member_gets_403_on_global_pages(as_):
    client = as_("lead")
    for url in (reverse("token_list"), reverse("audit_log"), reverse("users")):
        assert client.get(url).status_code == 403, url
    assert _create_token_global(client).status_code == 403
    assert not AccessToken.objects.filter(name="sneaky").exists()


def _create_token_global(client):
    data = {"name": "sneaky", "expires_in_days": "", "allowed_models": "", "team": "red"}
    return client.post(reverse("token_list"), data)
