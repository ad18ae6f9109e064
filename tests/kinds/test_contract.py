"""One contract, run for every registered provider kind: a real call through the service
layer reaches a real HTTP server with the kind's path, auth header and model, and the
connection test reads the kind's model list."""

from dataclasses import dataclass

import pytest

from providers import kinds, services
from providers.validators import validate_base_url
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Case:
    suffix: str  # appended to the test server's URL to make the base URL
    model: str
    path: str  # where the chat request must land
    auth: tuple[str, str] | None  # header that must carry the key
    api_version: str = ""


BEARER = ("authorization", f"Bearer {SECRET}")
CASES = {
    "openai": Case("/v1", "gpt-4o-mini", "/v1/chat/completions", BEARER),
    "anthropic": Case("", "claude-sonnet-4-5", "/v1/messages", ("x-api-key", SECRET)),
    "gemini": Case(
        "",
        "gemini-2.5-flash",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        ("x-goog-api-key", SECRET),
    ),
    "azure": Case(
        "",
        "my-deployment",
        "/openai/deployments/my-deployment/chat/completions",
        ("api-key", SECRET),
        api_version="2024-10-21",
    ),
    # A model named like an OpenAI one would make LiteLLM reroute azure_ai to azure/.
    "azure_ai": Case("/models", "my-model", "/models/chat/completions", BEARER),
    "openrouter": Case("/api/v1", "openai/gpt-4o", "/api/v1/chat/completions", BEARER),
    "groq": Case("/openai/v1", "llama-3.1-8b-instant", "/openai/v1/chat/completions", BEARER),
    "together": Case("/v1", "meta-llama/Llama-3-8b", "/v1/chat/completions", BEARER),
    "mistral": Case("/v1", "mistral-small-latest", "/v1/chat/completions", BEARER),
    "deepseek": Case("/v1", "deepseek-chat", "/v1/chat/completions", BEARER),
    "openai_compatible": Case("/v1", "my-model", "/v1/chat/completions", BEARER),
    "ollama": Case("", "llama3.2", "/api/chat", None),
    "lm_studio": Case("/v1", "qwen2.5-7b", "/v1/chat/completions", BEARER),
    "vllm": Case("/v1", "meta-llama/Llama-3.1-8B", "/v1/chat/completions", BEARER),
}
ALL_KINDS = sorted(kinds.KINDS)


def test_every_registered_kind_has_a_contract_case():
    assert sorted(CASES) == ALL_KINDS


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_kind_describes_itself(slug):
    kind = kinds.KINDS[slug]
    assert kind.label and kind.litellm_prefix and kind.model_example
    if kind.base_url_required:
        assert kind.base_url_example
        assert "base_url" in kind.field_errors(base_url="", has_api_key=True, api_version="1")
    else:
        assert validate_base_url(kind.default_base_url, local=kind.local).url
    if kind.api_key_required:
        assert "api_key" in kind.field_errors(base_url="x", has_api_key=False, api_version="1")
    if kind.api_version_required:
        assert "api_version" in kind.field_errors(base_url="x", has_api_key=True, api_version="")


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_litellm_params_never_leave_key_or_base_to_the_environment(slug):
    kind = kinds.KINDS[slug]
    params = kind.litellm_params(
        model="m",
        base_url="https://example.com",
        api_key="",
        api_version="",
        headers={},
        timeout=5,
        max_retries=0,
    )
    assert params["api_key"] and params["api_base"]
    assert params["model"].startswith(kind.litellm_prefix + "/")


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_call_reaches_the_kind_endpoint_with_key_and_model(slug, upstream, make_provider):
    case, kind = CASES[slug], kinds.KINDS[slug]
    key = SECRET if case.auth else ""
    upstream.reply_text = f"hello from {slug}"
    make_provider(
        name="p",
        kind=slug,
        base_url=upstream.base_url + case.suffix,
        api_key=key,
        api_version=case.api_version,
        headers={"X-Team": "team-header-value"},
    )
    response = services.completion(HI, model=f"p/{case.model}")
    assert response.choices[0].message.content == f"hello from {slug}"
    sent = [r for r in upstream.requests if r.path == case.path]
    assert len(sent) == 1, [r.path for r in upstream.requests]
    request = sent[0]
    if case.auth:
        name, value = case.auth
        assert request.headers[name] == value
    assert request.headers["x-team"] == "team-header-value"
    if case.api_version:
        assert request.query["api-version"] == [case.api_version]
    body = request.json()
    if case.model not in request.path:
        assert body["model"] == case.model
    assert "hi" in str(body)
    assert kind.litellm_prefix  # the registry, not an if-chain, chose the route


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_connection_test_reads_the_kind_model_list(slug, upstream, make_provider):
    case = CASES[slug]
    upstream.models = ["alpha-1", "beta-2"]
    provider = make_provider(
        name="p",
        kind=slug,
        base_url=upstream.base_url + case.suffix,
        api_key=SECRET if case.auth else "",
        api_version=case.api_version,
    )
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.models == ["alpha-1", "beta-2"]
    assert result.latency_ms is not None and result.latency_ms >= 0
    request = upstream.last
    if case.auth:
        name, value = case.auth
        assert request.headers[name] == value
    provider.refresh_from_db()
    assert provider.last_test_ok and provider.discovered_models == ["alpha-1", "beta-2"]
