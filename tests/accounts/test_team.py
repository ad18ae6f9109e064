"""Logging in, the first-run page, the users page and `routing user add`."""

import io
import sys

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from accounts.forms import PASSWORDS_DIFFER
from accounts.roles import role_from
from accounts.services import (
    LAST_ADMIN,
    SetupClosed,
    first_admin_create,
    user_create,
    user_set_role,
)
from accounts.views import first_run_redirect
from providers.models import AuditEvent

PASSWORD = "correct-horse-battery-42"
WEAK = "Zq9#x"  # too short; "#" never occurs in a CSRF token

pytestmark = pytest.mark.django_db


def make_user(username: str, role: str | None = "admin", **extra) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, **extra)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def login_as(client, role: str) -> User:
    user = make_user(f"{role}-user", role)
    client.force_login(user)
    return user


def role_groups(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def cli(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("routing", *args, stdout=out, stderr=io.StringIO())
    finally:
        sys.stdin = old_stdin
    return out.getvalue()


def assert_no_password_audited(password: str = PASSWORD) -> None:
    for event in AuditEvent.objects.all():
        assert password not in str(event.changes)
        assert "password" not in event.changes


# --- login ----------------------------------------------------------------------------------


def test_login_page_has_labelled_form(client):
    make_user("alice")
    page = client.get("/login/").content.decode()
    assert '<label for="id_username">Username</label>' in page
    assert '<label for="id_password">Password</label>' in page
    assert ">Log in</button>" in page


def test_login_page_shows_setup_link_only_when_no_users(client):
    page = client.get("/login/").content.decode()
    assert 'href="/setup/"' in page and "Create the first admin" in page

    make_user("alice")
    page = client.get("/login/").content.decode()
    assert "/setup/" not in page and "Create the first admin" not in page


def test_login_with_wrong_password_shows_error(client):
    make_user("alice")
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_logs_in_and_goes_to_overview(client):
    user = make_user("alice")
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/"
    assert int(client.session["_auth_user_id"]) == user.pk


def test_first_run_redirect_only_for_anonymous_visitors_before_any_user_exists():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    response = first_run_redirect(request)
    assert response is not None and response.url == "/setup/"

    request.user = make_user("alice")
    assert first_run_redirect(request) is None
    request.user = AnonymousUser()
    assert first_run_redirect(request) is None


def test_overview_sends_anonymous_visitor_to_setup_before_any_user_exists(client):
    assert client.get("/").url == "/setup/"
    make_user("alice")
    assert client.get("/").url.startswith("/login/")


# --- first run ------------------------------------------------------------------------------


def setup_data(username: str = "alice", password: str = PASSWORD, confirm: str | None = None):
    return {"username": username, "password": password, "password2": confirm or password}


def test_setup_shows_labelled_form_while_no_users(client):
    page = client.get("/setup/").content.decode()
    for label in ("Username", "Password", "Password confirmation"):
        assert f">{label}</label>" in page


def test_setup_creates_an_admin_and_logs_in(client):
    response = client.post("/setup/", setup_data(), follow=True)
    user = User.objects.get()
    assert response.redirect_chain == [("/", 302)]
    assert role_groups(user) == ["admin"]
    assert user.is_staff and not user.is_superuser
    assert int(client.session["_auth_user_id"]) == user.pk
    assert "You are the first admin" in response.content.decode()
    event = AuditEvent.objects.get()
    assert (event.action, event.target, event.actor_name) == ("user.create", "alice", "setup")
    assert_no_password_audited()


def test_setup_is_404_once_a_user_exists(client):
    make_user("alice")
    assert client.get("/setup/").status_code == 404
    response = client.post("/setup/", setup_data("mallory"))
    assert response.status_code == 404
    assert "Log in" in response.content.decode()
    assert not User.objects.filter(username="mallory").exists()


def test_setup_race_second_post_gets_404_and_one_user_exists(client, django_user_model):
    from django.test import Client

    other = Client()
    assert client.get("/setup/").status_code == 200
    assert other.get("/setup/").status_code == 200
    assert client.post("/setup/", setup_data("alice")).status_code == 302
    assert other.post("/setup/", setup_data("bob")).status_code == 404
    assert list(django_user_model.objects.values_list("username", flat=True)) == ["alice"]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_setup_works_from_this_machine(address):
    from django.test import Client

    local = Client(REMOTE_ADDR=address)
    assert local.get("/setup/").status_code == 200
    assert local.post("/setup/", setup_data("alice")).status_code == 302
    assert role_groups(User.objects.get(username="alice")) == ["admin"]


@pytest.mark.parametrize(
    ("address", "forwarded"),
    [
        ("203.0.113.9", {}),
        ("10.0.0.7", {}),
        # Claiming to be local is not being local.
        ("203.0.113.9", {"HTTP_X_FORWARDED_FOR": "127.0.0.1"}),
        # A proxy on this machine: the peer is loopback, the visitor is not.
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}),
        ("127.0.0.1", {"HTTP_FORWARDED": "for=203.0.113.9"}),
    ],
)
def test_setup_from_the_network_cannot_create_the_first_admin(settings, address, forwarded):
    from django.test import Client

    settings.ROUTING_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]  # not believed here
    visitor = Client(REMOTE_ADDR=address, **forwarded)
    page = visitor.get("/setup/")
    assert page.status_code == 403
    html = page.content.decode()
    assert "python manage.py createsuperuser" in html
    assert "routing user add NAME --role admin --password-stdin" in html
    assert 'name="password"' not in html
    assert visitor.post("/setup/", setup_data("mallory")).status_code == 403
    assert not User.objects.exists() and not AuditEvent.objects.exists()


def test_setup_from_the_network_when_the_setting_allows_it(settings):
    from django.test import Client

    settings.ROUTING_SETUP_FROM_ANY_ADDRESS = True
    visitor = Client(REMOTE_ADDR="203.0.113.9")
    assert visitor.post("/setup/", setup_data("alice")).status_code == 302
    assert User.objects.get().username == "alice"


def test_first_admin_create_rechecks_inside_its_transaction():
    # The view's early check may pass for two requests; the service's own check must not.
    make_user("alice")
    with pytest.raises(SetupClosed):
        first_admin_create(username="bob", password=PASSWORD)
    assert User.objects.count() == 1


def test_setup_rejects_mismatched_and_weak_passwords(client):
    response = client.post("/setup/", setup_data(confirm=PASSWORD + "x"))
    assert PASSWORDS_DIFFER in response.content.decode()
    response = client.post("/setup/", setup_data(password=WEAK))
    page = response.content.decode()
    assert "This password is too short" in page
    assert 'value="alice"' in page and WEAK not in page
    assert not User.objects.exists() and not AuditEvent.objects.exists()


# --- users page: who may see it -------------------------------------------------------------


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get("/users/")
    assert response.status_code == 302 and response.url.startswith("/login/?next=/users/")


@pytest.mark.parametrize("role", ["viewer", "editor"])
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("htmx", [False, True])
def test_it_requires_admin_role(client, role, method, htmx):
    login_as(client, role)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    data = {"form": "add", "username": "mallory", "password": PASSWORD, "role": "admin"}
    response = getattr(client, method)("/users/", data if method == "post" else {}, **headers)
    assert response.status_code == 403
    assert not User.objects.filter(username="mallory").exists()


def test_nav_links_to_users_only_for_admins(client):
    login_as(client, "editor")
    assert 'href="/users/"' not in client.get("/audit/").content.decode()
    client.force_login(make_user("ada", "admin"))
    assert 'href="/users/"' in client.get("/audit/").content.decode()


# --- users page: listing and adding ---------------------------------------------------------


def test_it_lists_users_with_role_and_last_login(client):
    admin = login_as(client, "admin")
    make_user("eddie", "editor")
    make_user("root", None, is_superuser=True)
    User.objects.filter(pk=admin.pk).update(last_login="2030-01-02T03:04:05Z")
    page = client.get("/users/").content.decode()
    assert "eddie" in page and "root" in page
    assert '<span class="badge badge-ok">editor</span>' in page
    assert '<time datetime="2030-01-02T03:04:05+00:00">2030-01-02 03:04 UTC</time>' in page
    assert "never" in page
    assert 'aria-label="Role for eddie"' in page and ">Change role</button>" in page
    assert "Superusers are always admins" in page


def test_it_handles_the_only_user(client):
    login_as(client, "admin")
    page = client.get("/users/").content.decode()
    assert "You are the only user so far" in page and "(you)" in page


def test_add_user_form_is_labelled(client):
    login_as(client, "admin")
    page = client.get("/users/").content.decode()
    for label in ("Username", "Password", "Role"):
        assert f">{label}</label>" in page
    assert ">Add user</button>" in page


def test_it_adds_a_user(client):
    admin = login_as(client, "admin")
    data = {"form": "add", "username": "bob", "password": PASSWORD, "role": "editor"}
    response = client.post("/users/", data, follow=True)
    assert response.redirect_chain == [("/users/", 302)]
    assert "Added user bob (editor)." in response.content.decode()
    bob = User.objects.get(username="bob")
    assert bob.check_password(PASSWORD) and role_groups(bob) == ["editor"]
    event = AuditEvent.objects.get(action="user.create")
    assert (event.target, event.actor_id, event.changes) == (
        "bob",
        admin.pk,
        {"role": [None, "editor"]},
    )
    assert_no_password_audited()


def test_it_rejects_a_weak_password_and_keeps_other_input(client):
    login_as(client, "admin")
    data = {"form": "add", "username": "bob", "password": WEAK, "role": "editor"}
    response = client.post("/users/", data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "This password is too short" in page
    assert 'value="bob"' in page and '<option value="editor" selected>' in page
    assert WEAK not in page
    assert not User.objects.filter(username="bob").exists()
    assert not AuditEvent.objects.exists()


def test_it_rejects_a_taken_username(client):
    login_as(client, "admin")
    make_user("bob", "viewer")
    data = {"form": "add", "username": "bob", "password": PASSWORD, "role": "editor"}
    page = client.post("/users/", data).content.decode()
    assert "A user with that username already exists." in page
    assert role_groups(User.objects.get(username="bob")) == ["viewer"]


# --- users page: changing roles -------------------------------------------------------------


def test_it_changes_a_role(client):
    login_as(client, "admin")
    bob = make_user("bob", "editor")
    response = client.post(
        "/users/", {"form": "role", "user": bob.pk, "role": "admin"}, follow=True
    )
    assert "bob is now an admin." in response.content.decode()
    bob.refresh_from_db()
    assert role_groups(bob) == ["admin"] and bob.is_staff
    event = AuditEvent.objects.get(action="user.role")
    assert (event.target, event.changes) == ("bob", {"role": ["editor", "admin"]})


def test_it_refuses_to_demote_the_last_admin(client):
    admin = login_as(client, "admin")
    response = client.post("/users/", {"form": "role", "user": admin.pk, "role": "viewer"})
    page = response.content.decode()
    assert response.status_code == 200
    assert LAST_ADMIN.format(username=admin.username) in page
    assert 'aria-invalid="true"' in page
    assert role_groups(admin) == ["admin"]
    assert not AuditEvent.objects.exists()


def test_demoting_yourself_leaves_the_users_page(client):
    admin = login_as(client, "admin")
    make_user("ada", "admin")
    response = client.post("/users/", {"form": "role", "user": admin.pk, "role": "editor"})
    assert response.status_code == 302 and response.url == "/"
    assert role_groups(admin) == ["editor"]


def test_it_rejects_an_unknown_role_or_user(client):
    login_as(client, "admin")
    bob = make_user("bob", "viewer")
    assert (
        client.post("/users/", {"form": "role", "user": bob.pk, "role": "root"}).status_code == 400
    )
    assert client.post("/users/", {"form": "role", "user": "x", "role": "admin"}).status_code == 400
    assert role_groups(bob) == ["viewer"]


# --- services and the command line ----------------------------------------------------------


def test_user_create_and_set_role_keep_exactly_one_role_group():
    make_user("ada", "admin")
    user = user_create(username="bob", password=PASSWORD, role="viewer", actor="test")
    user.groups.add(Group.objects.create(name="unrelated"))
    for role in ("admin", "editor", "viewer"):
        user_set_role(user=user, role=role, actor="test")
        assert sorted(set(role_groups(user)) - {"unrelated"}) == [role]
    assert "unrelated" in role_groups(user)
    assert AuditEvent.objects.filter(action="user.role").count() == 3


def test_cli_adds_a_user_with_a_role():
    out = cli("user", "add", "bob", "--role", "editor", "--password-stdin", stdin=PASSWORD + "\n")
    assert "Added user bob (editor)." in out
    bob = User.objects.get(username="bob")
    assert bob.check_password(PASSWORD) and role_groups(bob) == ["editor"]
    event = AuditEvent.objects.get()
    assert event.action == "user.create" and event.actor_name.startswith("cli:")
    assert_no_password_audited()


def test_cli_requires_password_on_stdin():
    with pytest.raises(CommandError, match="--password-stdin"):
        cli("user", "add", "bob", "--role", "editor")
    with pytest.raises(CommandError, match="No password arrived"):
        cli("user", "add", "bob", "--role", "editor", "--password-stdin", stdin="\n")
    assert not User.objects.exists()


def test_cli_weak_password_is_one_line_error_and_creates_nothing():
    with pytest.raises(CommandError) as info:
        cli("user", "add", "bob", "--role", "editor", "--password-stdin", stdin=WEAK + "\n")
    assert "password: This password is too short" in str(info.value)
    assert "\n" not in str(info.value) and WEAK not in str(info.value)
    assert not User.objects.exists() and not AuditEvent.objects.exists()


def test_a_role_is_the_highest_role_group_and_a_superuser_is_admin():
    assert role_from(is_superuser=True, groups=[]) == "admin"
    assert role_from(is_superuser=False, groups=["viewer", "editor"]) == "editor"
    assert role_from(is_superuser=False, groups=["admin", "viewer"]) == "admin"
    assert role_from(is_superuser=False, groups=["ops"]) is None
