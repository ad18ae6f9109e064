"""A stored key is only ever sent to the host it was saved with: moving a provider to another
host (base URL, kind default, port) needs the key typed again, from the service, the edit
page and the command line alike."""

import pytest
from django.core.exceptions import ValidationError

from providers import services
from providers.models import Provider
from providers.services.providers import (
    HEADERS_REQUIRED_FOR_NEW_HOST,
    KEY_REQUIRED_FOR_NEW_HOST,
)
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.django_db


def _refused_key(provider: Provider, **fields) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        services.provider_update(provider=provider, actor="attacker", **fields)
    return caught.value


def test_base_url_moved_to_another_host_without_reentering_the_key_is_refused(
    make_provider, upstream_factory
):
    home, attacker = upstream_factory("home"), upstream_factory("attacker")
    provider = make_provider(name="p", base_url=home.base_url + "/v1")
    error = _refused_key(provider, base_url=attacker.base_url.replace("127.0.0.1", "localhost"))
    assert error.message_dict["api_key"] == [KEY_REQUIRED_FOR_NEW_HOST]
    provider.refresh_from_db()
    assert provider.base_url == home.base_url + "/v1"
    services.completion(HI, model="p/m")
    assert attacker.requests == [] and len(home.requests) == 1


def test_port_change_on_the_same_host_counts_as_another_host(make_provider, upstream_factory):
    home, other = upstream_factory("home"), upstream_factory("other")
    provider = make_provider(name="p", base_url=home.base_url + "/v1")
    error = _refused_key(provider, base_url=other.base_url + "/v1")
    assert error.message_dict["api_key"] == [KEY_REQUIRED_FOR_NEW_HOST]


def test_kind_change_that_moves_the_default_host_needs_the_key_again(make_provider):
    # Blank base URL: the kind's default. openai -> groq moves the key to api.groq.com.
    provider = make_provider(name="p", kind="openai", base_url="")
    error = _refused_key(provider, kind="groq")
    assert error.message_dict["api_key"] == [KEY_REQUIRED_FOR_NEW_HOST]
    assert Provider.objects.get(pk=provider.pk).kind == "openai"


def test_custom_headers_are_not_carried_to_another_host(make_provider, upstream_factory):
    home, other = upstream_factory("home"), upstream_factory("other")
    provider = make_provider(
        name="p",
        base_url=home.base_url + "/v1",
        api_key="",
        kind="openai_compatible",
        headers={"X-Api-Token": "header-secret"},
    )
    error = _refused_key(provider, base_url=other.base_url + "/v1")
    assert error.message_dict["headers"] == [HEADERS_REQUIRED_FOR_NEW_HOST]


def test_new_host_with_the_key_typed_again_gets_only_the_new_key(make_provider, upstream_factory):
    home, new = upstream_factory("home"), upstream_factory("new")
    provider = make_provider(name="p", base_url=home.base_url + "/v1")
    services.provider_update(
        provider=provider, actor="editor", base_url=new.base_url + "/v1", api_key="sk-new-key"
    )
    services.completion(HI, model="p/m")
    assert new.last.headers["authorization"] == "Bearer sk-new-key"
    assert all(SECRET not in str(r.headers) for r in new.requests)
    assert home.requests == []


def test_edit_page_moving_the_host_with_the_key_left_blank_is_refused(
    make_provider, upstream_factory, login_as, client
):
    home, attacker = upstream_factory("home"), upstream_factory("attacker")
    provider = make_provider(name="p", base_url=home.base_url + "/v1")
    login_as("editor")
    response = client.post(
        "/providers/p/edit/",
        {
            "name": "p",
            "kind": "openai",
            "base_url": attacker.base_url + "/v1",
            "api_key": "",
            "timeout": "10",
            "max_retries": "0",
            "enabled": "on",
            "version": provider.version,
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert KEY_REQUIRED_FOR_NEW_HOST in response.content.decode().replace("&#x27;", "'")
    provider.refresh_from_db()
    assert provider.base_url == home.base_url + "/v1"
    assert provider.get_api_key() == SECRET
