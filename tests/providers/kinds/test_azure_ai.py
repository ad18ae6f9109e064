"""Azure AI Foundry's three endpoints, told apart by the base URL: the model inference API
(`/models`, api-version required), Claude's `/anthropic` (no model list) and the OpenAI v1
API (`/openai/v1`). Checked at the recording upstream: path, query, headers, body."""

from providers import kinds, services
from providers.kinds import AZURE_AI_ANTHROPIC_OK
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]
SDK_VERSION = "2024-05-01-preview"  # azure-ai-inference's default api_version


def test_the_default_api_version_is_the_official_sdks():
    kind = kinds.KINDS["azure_ai"]
    assert kind.default_api_version == SDK_VERSION
    assert kind.shows_api_version and not kind.api_version_required


def test_inference_api_call_and_test_send_the_stored_api_version(upstream, make_provider):
    provider = make_provider(
        name="f", kind="azure_ai", base_url=upstream.base_url + "/models", api_version="2025-04-01"
    )
    services.completion(HI, model="f/DeepSeek-R1")
    call = upstream.last
    assert (call.method, call.path) == ("POST", "/models/chat/completions")
    assert call.query["api-version"] == ["2025-04-01"]
    assert call.json()["model"] == "DeepSeek-R1"
    upstream.models = ["DeepSeek-R1"]
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    test = upstream.last
    assert (test.method, test.path) == ("GET", "/models/info")
    assert test.query["api-version"] == ["2025-04-01"]
    assert test.headers["api-key"] == SECRET
    assert result.models == ["DeepSeek-R1"]


def test_anthropic_endpoint_is_tested_without_generating_anything(upstream, make_provider):
    provider = make_provider(name="c", kind="azure_ai", base_url=upstream.base_url + "/anthropic")
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.message == AZURE_AI_ANTHROPIC_OK
    assert result.models == []
    (sent,) = upstream.requests
    assert (sent.method, sent.path) == ("POST", "/anthropic/v1/messages")
    assert sent.json() == {}  # no messages, no max_tokens: the service refuses it, for free
    assert sent.headers["api-key"] == SECRET
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "api-version" not in sent.query


def test_anthropic_endpoint_refusing_the_key_fails_the_test(upstream, make_provider):
    upstream.fail_next(401, {"error": {"message": "invalid api key"}})
    provider = make_provider(name="c", kind="azure_ai", base_url=upstream.base_url + "/anthropic")
    result = services.provider_test(provider=provider)
    assert not result.ok and result.status == 401
    assert SECRET not in result.message


def test_anthropic_endpoint_calls_claude_in_anthropics_format(upstream, make_provider):
    make_provider(name="c", kind="azure_ai", base_url=upstream.base_url + "/anthropic")
    upstream.reply_text = "from claude"
    response = services.completion(HI, model="c/claude-sonnet-4-5")
    assert response.choices[0].message.content == "from claude"
    call = upstream.last
    assert (call.method, call.path) == ("POST", "/anthropic/v1/messages")
    assert call.json()["model"] == "claude-sonnet-4-5"
    assert "api-version" not in call.query


def test_openai_v1_base_url_gets_openais_paths(upstream, make_provider):
    """LiteLLM would add /models to any services.ai.azure.com base: /openai/v1/models/chat/..."""
    provider = make_provider(name="v1", kind="azure_ai", base_url=upstream.base_url + "/openai/v1")
    upstream.reply_text = "from v1"
    response = services.completion(HI, model="v1/gpt-4.1-mini")
    assert response.choices[0].message.content == "from v1"
    call = upstream.last
    assert (call.method, call.path) == ("POST", "/openai/v1/chat/completions")
    assert call.headers["authorization"] == f"Bearer {SECRET}"
    assert call.json()["model"] == "gpt-4.1-mini"
    assert "api-version" not in call.query  # the v1 API takes none
    upstream.models = ["gpt-4.1-mini", "o4-mini"]
    result = services.provider_test(provider=provider)
    assert result.ok and result.models == ["gpt-4.1-mini", "o4-mini"]
    test = upstream.last
    assert (test.method, test.path) == ("GET", "/openai/v1/models")


def test_foundry_host_with_openai_v1_path_keeps_it():
    kind = kinds.KINDS["azure_ai"]
    params = kind.litellm_params(
        model="gpt-4.1-mini",
        base_url="https://contoso.services.ai.azure.com/openai/v1",
        api_key=SECRET,
        api_version="",
        headers={},
        timeout=5,
        max_retries=0,
    )
    assert params["model"] == "openai/gpt-4.1-mini"
    assert params["api_base"] == "https://contoso.services.ai.azure.com/openai/v1"
    assert "api_version" not in params


def test_api_version_is_on_the_form_for_this_kind(client, login_as):
    from django.urls import reverse

    login_as("editor")
    html = client.get(reverse("kind_fields"), {"kind": "azure_ai"}, HTTP_HX_REQUEST="true")
    text = html.content.decode()
    assert 'name="api_version"' in text and SDK_VERSION in text


def test_a_dashboard_edit_keeps_an_api_version_set_on_the_command_line(
    client, login_as, make_provider
):
    from django.urls import reverse

    provider = make_provider(
        name="f",
        kind="azure_ai",
        base_url="https://contoso.services.ai.azure.com/models",
        api_version="2025-04-01",
    )
    login_as("editor")
    page = client.get(reverse("provider_edit", args=["f"])).content.decode()
    assert 'value="2025-04-01"' in page
    form = {
        "name": "f",
        "kind": "azure_ai",
        "base_url": provider.base_url,
        "api_version": "2025-04-01",
        "timeout": "600",
        "max_retries": "0",
        "enabled": "on",
        "version": str(provider.version),
    }
    response = client.post(reverse("provider_edit", args=["f"]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    provider.refresh_from_db()
    assert provider.api_version == "2025-04-01"
