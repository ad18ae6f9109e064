import re

import pytest

from providers.routing import live
from tests.oidc_provider import idp, oidc_provider  # noqa: F401 - fixtures
from tests.upstream import upstream, upstream_factory  # noqa: F401 - fixtures
from usage import request_log

SECRET = "sk-test-" + "A1b2C3d4E5f6G7h8J9k0"  # fake, key-shaped so redaction is exercised


def error_summary(html: str) -> str:
    """The error summary of a refused form (templates/_error_summary.html)."""
    match = re.search(r'<div class="error-summary"[^>]*role="alert"[^>]*>(.*?)</div>', html, re.S)
    assert match, "no error summary"
    return match.group(1)


def shared_database_url() -> str:
    """DATABASE_URL of the test database, for subprocesses that must share it."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + s["NAME"]
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture(scope="session", autouse=True)
def _stop_config_watcher(django_db_setup, django_db_blocker):
    yield
    # Before the test database is dropped: the PostgreSQL listener holds a connection to it.
    live.shutdown()
    request_log.stop()
    from django.db import connection

    if connection.vendor == "postgresql":
        # Threads of the in-process gateway servers kept connections of their own; PostgreSQL
        # will not drop a database while any session is still connected to it.
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _fresh_live_cache():
    # Each test's database is rolled back; a snapshot from an earlier test must not survive.
    live.reset()
    request_log.discard()
    yield
    live.reset()
    request_log.stop()
    request_log.discard()


@pytest.fixture
def local_upstreams(settings):
    """Let remote kinds (openai, anthropic, ...) point at test servers on 127.0.0.1."""
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


@pytest.fixture
def make_provider(db, local_upstreams):
    from providers import services

    def make(name="acme", kind="openai", base_url="", api_key=SECRET, **kwargs):
        return services.provider_create(
            name=name, kind=kind, base_url=base_url, api_key=api_key, actor="test", **kwargs
        )

    return make


@pytest.fixture
def login_as(db, client):
    """Log the test client in with a user of the given role ("viewer"/"editor"/"admin")."""
    from django.contrib.auth.models import Group, User

    def login(role: str, username: str | None = None):
        user = User.objects.create_user(username or role, password="pw-" + role)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        client.force_login(user)
        return user

    return login


@pytest.fixture(params=[True, False], ids=["relay", "litellm"])
def both_paths(request, settings):
    """Run a test twice: calls relayed without LiteLLM where the kind allows it, then every
    call through LiteLLM (ROUTING_GATEWAY_RELAY=0). A caller must see the same either way.
    The value is whether the relay is on."""
    settings.ROUTING_GATEWAY_RELAY = request.param
    return request.param
