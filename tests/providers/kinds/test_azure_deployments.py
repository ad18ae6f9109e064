"""Azure OpenAI: /openai/models lists the resource's base models, which cannot be called;
calls name a deployment. Only the deployments named on the provider ("Deployments", on the
form and `--deployments` on the command line) are advertised: suggestions, /v1/models."""

import io

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from providers import kinds, services
from providers.models import AuditEvent, Provider
from providers.services.providers import (
    DECLARED_MODEL_INVALID,
    DECLARED_MODELS_NOT_FOR_KIND,
    parse_model_names,
)
from tests.conftest import SECRET
from tests.gateway.test_gateway import gateway  # noqa: F401 - the fixture

HI = [{"role": "user", "content": "hi"}]
BASE_MODELS = ["gpt-4o-2024-08-06", "gpt-35-turbo-0125"]


def _azure(make_provider, upstream, **kwargs):
    return make_provider(
        name="az", kind="azure", base_url=upstream.base_url, api_version="2024-10-21", **kwargs
    )


def test_the_test_advertises_deployments_not_base_models(upstream, make_provider):
    upstream.models = list(BASE_MODELS)
    provider = _azure(make_provider, upstream, declared_models=["chat-prod", "mini-eu"])
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.models == ["chat-prod", "mini-eu"]
    assert result.message == kinds.AZURE_DEPLOYMENTS_OK.format(count=2, s="s")
    sent = upstream.last
    assert (sent.path, sent.query["api-version"]) == ("/openai/models", ["2024-10-21"])
    assert sent.headers["api-key"] == SECRET
    provider.refresh_from_db()
    assert provider.discovered_models == ["chat-prod", "mini-eu"]


def test_without_deployments_nothing_uncallable_is_advertised(upstream, make_provider):
    upstream.models = list(BASE_MODELS)
    provider = _azure(make_provider, upstream)
    result = services.provider_test(provider=provider)
    assert result.ok and result.models == []
    assert result.message == kinds.AZURE_NO_DEPLOYMENTS_OK
    provider.refresh_from_db()
    assert provider.discovered_models == []


def test_a_declared_deployment_is_called_by_name(upstream, make_provider):
    _azure(make_provider, upstream, declared_models=["chat-prod"])
    services.completion(HI, model="az/chat-prod")
    call = upstream.last
    assert call.path == "/openai/deployments/chat-prod/chat/completions"
    assert call.query["api-version"] == ["2024-10-21"]


def test_deployments_are_suggested_as_soon_as_they_are_saved(upstream, make_provider):
    provider = _azure(make_provider, upstream, declared_models=["chat-prod"])
    assert provider.discovered_models == ["chat-prod"]
    provider = services.provider_update(
        provider=provider, declared_models=["chat-prod", "mini-eu"], actor="test"
    )
    provider.refresh_from_db()
    assert provider.declared_models == ["chat-prod", "mini-eu"]
    assert provider.discovered_models == ["chat-prod", "mini-eu"]
    event = AuditEvent.objects.filter(action="provider.update").latest("id")
    assert event.changes["declared_models"] == [["chat-prod"], ["chat-prod", "mini-eu"]]


def test_names_are_parsed_once_each_in_order():
    assert parse_model_names("chat-prod, mini-eu\n\n  chat-prod ,o4-mini\n") == [
        "chat-prod",
        "mini-eu",
        "o4-mini",
    ]


def test_each_name_goes_through_the_model_id_validator(upstream, make_provider):
    with pytest.raises(ValidationError) as caught:
        _azure(make_provider, upstream, declared_models=["ok-name", "bad name!", "../x"])
    messages = caught.value.message_dict["declared_models"]
    assert len(messages) == 2
    assert messages[0].startswith(DECLARED_MODEL_INVALID.format(name="bad name!", error=""))
    assert messages[1].startswith(DECLARED_MODEL_INVALID.format(name="../x", error=""))
    assert not Provider.objects.exists()


def test_deployments_for_a_kind_that_lists_its_models_are_refused(make_provider):
    with pytest.raises(ValidationError) as caught:
        make_provider(name="o", kind="openai", declared_models=["gpt-4o"])
    label = kinds.KINDS["openai"].label
    assert caught.value.message_dict["declared_models"] == [
        DECLARED_MODELS_NOT_FOR_KIND.format(label=label)
    ]
    assert not Provider.objects.exists()


# --- the form ------------------------------------------------------------------------------


def test_the_form_shows_deployments_for_azure_only(client, login_as):
    login_as("editor")
    azure = client.get(reverse("kind_fields"), {"kind": "azure"}, HTTP_HX_REQUEST="true")
    assert "Deployments" in azure.content.decode()
    assert 'name="declared_models"' in azure.content.decode()
    openai = client.get(reverse("kind_fields"), {"kind": "openai"}, HTTP_HX_REQUEST="true")
    assert 'name="declared_models"' not in openai.content.decode()


def _form(**overrides):
    data = {
        "name": "az",
        "kind": "azure",
        "base_url": "https://contoso.openai.azure.com",
        "api_key": SECRET,
        "api_version": "2024-10-21",
        "declared_models": "chat-prod, mini-eu\no4-mini",
        "timeout": "600",
        "max_retries": "0",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_the_form_saves_deployments(client, login_as):
    login_as("editor")
    response = client.post(reverse("provider_add"), _form())
    assert response.status_code == 302, response.content.decode()[:3000]
    provider = Provider.objects.get(name="az")
    assert provider.declared_models == ["chat-prod", "mini-eu", "o4-mini"]
    page = client.get(reverse("provider_edit", args=["az"])).content.decode()
    assert "chat-prod\nmini-eu\no4-mini" in page


def test_the_form_names_a_bad_deployment_and_stores_nothing(client, login_as):
    login_as("editor")
    response = client.post(reverse("provider_add"), _form(declared_models="chat-prod, bad name!"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Deployment &#x27;bad name!&#x27;" in html or "Deployment 'bad name!'" in html
    assert not Provider.objects.exists()


# --- the command line ----------------------------------------------------------------------


def _routing(*args: str) -> str:
    out = io.StringIO()
    call_command("routing", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_cli_add_and_edit_deployments(db, local_upstreams, monkeypatch):
    monkeypatch.setenv("AZ_KEY", SECRET)
    _routing(
        "provider",
        "add",
        "--name",
        "az",
        "--kind",
        "azure",
        "--base-url",
        "https://contoso.openai.azure.com",
        "--api-key-env",
        "AZ_KEY",
        "--api-version",
        "2024-10-21",
        "--deployments",
        "chat-prod,mini-eu",
    )
    provider = Provider.objects.get(name="az")
    assert provider.declared_models == ["chat-prod", "mini-eu"]
    assert "chat-prod, mini-eu" in _routing("provider", "show", "az")
    _routing("provider", "edit", "az", "--deployments", "o4-mini")
    provider.refresh_from_db()
    assert provider.declared_models == provider.discovered_models == ["o4-mini"]
    assert provider.get_api_key() == SECRET  # the rest is left as it was


def test_cli_names_the_flag_of_a_bad_deployment(db, local_upstreams):
    with pytest.raises(CommandError) as caught:
        _routing("provider", "add", "--name", "o", "--kind", "ollama", "--deployments", "x")
    label = kinds.KINDS["ollama"].label
    assert str(caught.value) == "deployments: " + DECLARED_MODELS_NOT_FOR_KIND.format(label=label)
    assert not Provider.objects.exists()


# --- the gateway ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_v1_models_lists_deployments_not_base_models(gateway, upstream, make_provider):  # noqa: F811
    from gateway.services import token_create

    upstream.models = list(BASE_MODELS)
    provider = _azure(make_provider, upstream, declared_models=["chat-prod"])
    services.provider_test(provider=provider)
    _, token = token_create(name="app", actor="test")
    answer = httpx.get(gateway + "/v1/models", headers={"Authorization": f"Bearer {token}"})
    ids = {model["id"] for model in answer.json()["data"]}
    assert "az/chat-prod" in ids
    assert not {f"az/{m}" for m in BASE_MODELS} & ids


def test_test_before_saving_offers_the_typed_deployments(
    client, login_as, upstream, local_upstreams
):
    login_as("editor")
    upstream.models = list(BASE_MODELS)
    data = _form(
        base_url=upstream.base_url, declared_models="chat-prod\nmini-eu", _test="1", name=""
    )
    response = client.post(reverse("provider_add"), data, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert kinds.AZURE_DEPLOYMENTS_OK.format(count=2, s="s").split(" (")[0] in html
    assert upstream.last.path == "/openai/models"
    assert upstream.last.query["api-version"] == ["2024-10-21"]
    assert not Provider.objects.exists()
