"""Connection tests call providers with our keys: a person cannot fire them without limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ThrottleHit

HX = {"HTTP_HX_REQUEST": "true"}
LIMIT = 3


@pytest.fixture
def limited(settings):
    settings.ROUTING_TESTS_PER_MINUTE = LIMIT


@pytest.fixture
def acme(make_provider, upstream):
    return make_provider(name="acme", base_url=upstream.base_url + "/v1")


def _models_calls(upstream) -> int:
    return sum(1 for r in upstream.requests if r.path.endswith("/models"))


def test_connection_test_flood_is_answered_429_with_a_message(
    client, login_as, limited, acme, upstream
):
    login_as("viewer")
    url = reverse("provider_test", args=["acme"])
    assert [client.post(url).status_code for _ in range(LIMIT)] == [302] * LIMIT
    response = client.post(url)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Too many connection tests: at most 3 a minute" in response.content.decode()
    assert _models_calls(upstream) == LIMIT  # the refused test never reached the provider


def test_htmx_connection_test_flood_shows_the_message_in_the_page(
    client, login_as, limited, acme, upstream
):
    login_as("viewer")
    url = reverse("provider_test", args=["acme"])
    for _ in range(LIMIT):
        assert client.post(url, **HX).status_code == 200
    response = client.post(url, **HX)
    html = response.content.decode()
    assert response.status_code == 429 and "<html" not in html
    assert 'role="alert"' in html and "Too many connection tests" in html
    assert response["HX-Retarget"] == "#messages"


def test_connection_test_limit_is_per_person(client, login_as, limited, acme, upstream):
    login_as("viewer")
    url = reverse("provider_test", args=["acme"])
    for _ in range(LIMIT + 2):
        client.post(url)
    colleague = User.objects.create_user("colleague", password="pw-colleague")
    colleague.groups.add(Group.objects.get_or_create(name="viewer")[0])
    other = Client()
    other.force_login(colleague)
    assert other.post(url).status_code == 302


def test_model_refresh_cannot_be_used_to_bypass_the_limit(
    client, login_as, limited, acme, upstream
):
    login_as("viewer")
    for _ in range(LIMIT):
        client.post(reverse("provider_test", args=["acme"]))
    response = client.post(reverse("model_options"), {"provider": "acme"}, **HX)
    assert response.status_code == 429
    assert client.post(reverse("test_all")).status_code == 429
    assert _models_calls(upstream) == LIMIT


def test_budget_comes_back_after_a_minute(client, login_as, limited, acme, upstream):
    login_as("viewer")
    url = reverse("provider_test", args=["acme"])
    for _ in range(LIMIT + 3):  # the refused ones do not eat into the next minute
        client.post(url)
    ThrottleHit.objects.update(at=timezone.now() - timedelta(seconds=61))
    assert client.post(url).status_code == 302


def test_reading_model_suggestions_is_not_counted(client, login_as, limited, acme, upstream):
    login_as("viewer")
    for _ in range(LIMIT + 2):
        assert client.get(reverse("model_options"), {"provider": "acme"}, **HX).status_code == 200
    assert client.post(reverse("provider_test", args=["acme"])).status_code == 302
