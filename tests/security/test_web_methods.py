"""Every URL in the project, walked: GET never changes anything, a POST needs a CSRF token
and the right role.

A new URL pattern fails test_team_matrix.py's test_every_url_is_in_one_matrix until it is
added to ENDPOINTS here (or to its TEAM_PAGES), which forces a decision about what it may do
and for whom.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from gateway.services import token_create
from providers import services
from providers.services.groups import DeploymentSpec

ROLES = ("viewer", "editor", "admin")
# name -> (URL arguments, who may POST to it: a role, "anyone", or "token" for the gateway,
# which takes no cookies and so needs no CSRF token).
ENDPOINTS: dict[str, tuple[dict, str]] = {
    "gateway_chat": ({}, "token"),
    "gateway_responses": ({}, "token"),
    "gateway_messages": ({}, "token"),
    "gateway_embeddings": ({}, "token"),
    "gateway_completions": ({}, "token"),
    "azure_chat": ({"deployment": "default"}, "token"),
    "azure_embeddings": ({"deployment": "default"}, "token"),
    "azure_completions": ({"deployment": "default"}, "token"),
    "azure_not_found": ({"path": "images"}, "token"),
    "gateway_models": ({}, "token"),
    "gateway_model": ({"model_id": "acme/gpt-4o-mini"}, "token"),
    "gateway_providers": ({}, "token"),
    "gateway_not_found": ({"path": "images/generations"}, "token"),
    "healthz": ({}, "token"),
    # Scrapers: a bearer token of its own (ROUTING_METRICS_TOKEN) or an allowed address.
    "metrics": ({}, "token"),
    "overview": ({}, "viewer"),
    "default_set": ({}, "editor"),
    "default_revert": ({}, "editor"),
    "model_options": ({}, "viewer"),
    "provider_add": ({}, "editor"),
    "kind_fields": ({}, "editor"),
    "test_all": ({}, "viewer"),
    "provider_detail": ({"name": "acme"}, "viewer"),
    "provider_edit": ({"name": "acme"}, "editor"),
    "provider_remove": ({"name": "spare"}, "editor"),
    "provider_test": ({"name": "acme"}, "viewer"),
    "provider_drain": ({"name": "acme"}, "editor"),
    "group_list": ({}, "viewer"),
    "group_add": ({}, "editor"),
    "router_settings": ({}, "editor"),
    "group_edit": ({"name": "fast"}, "editor"),
    "group_remove": ({"name": "fast"}, "editor"),
    "group_test": ({"name": "fast"}, "viewer"),
    "config_export": ({}, "editor"),
    "config_import": ({}, "editor"),
    "env_import": ({}, "editor"),
    "token_list": ({}, "editor"),
    "token_detail": ({"name": "app"}, "editor"),
    "token_revoke": ({"name": "app"}, "editor"),
    "usage": ({}, "viewer"),
    "audit_log": ({}, "viewer"),
    "users": ({}, "admin"),
    "setup": ({}, "anyone"),
    "login": ({}, "anyone"),
    "logout": ({}, "anyone"),
    # Single sign-on: GET only (405 to a POST); 404 while it is not configured.
    "oidc_authentication_init": ({}, "anyone"),
    "oidc_authentication_callback": ({}, "anyone"),
}
# GET with the query strings the pages use, so that the view goes past its first line.
QUERIES = {
    "model_options": {"provider": "acme"},
    "kind_fields": {"kind": "azure", "editing": "acme"},
    "provider_add": {"kind": "anthropic"},
    "audit_log": {"target": "acme"},
}
# POSTs that, from someone allowed, would change something.
POST_DATA = {
    "default_set": {"provider": "acme", "model": "other-model"},
    "provider_drain": {"drain_when_unhealthy": "on"},  # the checkbox in provider_detail.html
    "users": {"form": "add", "username": "mallory", "password": "Zq9-long-pass!", "role": "admin"},
    "token_list": {"name": "stolen"},
    "token_detail": {"rpm": "60", "budget_usd": "5", "budget_period": "day"},
    "setup": {"username": "mallory", "password": "Zq9-long-pass!", "password2": "Zq9-long-pass!"},
}


def _names(resolver: URLResolver) -> set[str]:
    found = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found |= _names(entry)
        elif isinstance(entry, URLPattern) and entry.name:
            found.add(entry.name)
    return found


def _state() -> dict[str, list[dict]]:
    """Every row of every table but the sessions."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model is not Session
    }


@pytest.fixture
def world(make_provider, db):
    acme = make_provider(name="acme", base_url="https://api.example.com/v1")
    make_provider(name="spare", base_url="https://api.example.org/v1")
    services.default_model_set(provider=acme, model="gpt-4o-mini", actor="test")
    services.group_save(name="fast", deployments=[DeploymentSpec("acme", "gpt-4o-mini")])
    token_create(name="app", actor="test")
    users = {}
    for role in ROLES:
        users[role] = User.objects.create_user(role, password="pw-" + role)
        users[role].groups.add(Group.objects.get_or_create(name=role)[0])
    return users


def _client(users: dict, role: str | None, **kwargs) -> Client:
    client = Client(**kwargs)
    if role is not None:
        client.force_login(users[role])
    return client


@pytest.mark.parametrize("role", [None, *ROLES])
def test_get_changes_nothing_for_any_role(world, role):
    client = _client(world, role)
    before = _state()
    for name, (kwargs, _) in ENDPOINTS.items():
        response = client.get(reverse(name, kwargs=kwargs), QUERIES.get(name, {}))
        assert response.status_code < 500, name
        assert _state() == before, f"GET {name} as {role} changed the database"


@pytest.mark.parametrize("role", [None, "admin"])
def test_post_without_csrf_token_is_refused_everywhere(world, role):
    client = _client(world, role, enforce_csrf_checks=True)
    before = _state()
    for name, (kwargs, who) in ENDPOINTS.items():
        if who == "token":
            continue
        response = client.post(reverse(name, kwargs=kwargs), POST_DATA.get(name, {}))
        assert response.status_code == 403, name
        assert b"CSRF" in response.content, name
        assert _state() == before, f"POST {name} without CSRF changed the database"
    if role is not None:
        assert client.session.get("_auth_user_id")  # not even logged out


@pytest.mark.parametrize("role", [None, "viewer", "editor"])
def test_post_below_the_required_role_is_refused_and_changes_nothing(world, role):
    client = _client(world, role)
    rank = {None: -1, **{r: i for i, r in enumerate(ROLES)}}
    before = _state()
    refused = 0
    for name, (kwargs, who) in ENDPOINTS.items():
        if who in ("token", "anyone") or rank[role] >= rank[who]:
            continue
        response = client.post(reverse(name, kwargs=kwargs), POST_DATA.get(name, {}))
        if response.status_code != 405:  # a GET-only view refuses any POST
            if role is None:
                assert response.status_code == 302 and "/login/" in response["Location"], name
            else:
                assert response.status_code == 403, name
        assert _state() == before, f"POST {name} as {role} changed the database"
        refused += 1
    assert refused > 0


def test_each_post_data_changes_something_when_allowed(world):
    # Otherwise the checks above could not fail for it: a refused POST and a harmless one
    # look the same. The first-run page is closed once a user exists, so it is left out.
    for name, data in POST_DATA.items():
        kwargs, who = ENDPOINTS[name]
        if name == "setup":
            continue
        client = _client(world, "admin" if who != "anyone" else None)  # last_login moves
        before = _state()
        response = client.post(reverse(name, kwargs=kwargs), data)
        assert response.status_code < 400, name
        assert _state() != before, f"POST_DATA[{name!r}] changes nothing"


def test_logout_by_get_is_refused(world):
    client = _client(world, "viewer")
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("overview")).status_code == 200  # still logged in
