"""One contract, run for every registered provider kind: a real call through the service
layer reaches a real HTTP server with the kind's path, auth header, model and required query
parameters, and the connection test reads the kind's model list at the route, with the
query and in the format the vendor documents."""

from dataclasses import dataclass

import pytest

from providers import kinds, services
from providers.services.connection import NOT_A_MODEL_LIST
from providers.validators import validate_base_url
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]


MODELS = ["alpha-1", "beta-2"]


@dataclass(frozen=True)
class Case:
    suffix: str  # appended to the test server's URL to make the base URL
    model: str
    path: str  # where the chat request must land
    auth: tuple[str, str] | None  # header that must carry the key
    api_version: str = ""  # stored on the provider
    list_path: str = ""  # where the connection test must land; "": the suffix + /models
    # The model list's shape as the vendor documents it (tests/upstream.py list_format).
    list_format: str = "openai"
    # Query parameters the vendor requires, on the call and on the model list.
    query: dict[str, str] | None = None
    listed: tuple[str, ...] = tuple(MODELS)  # what the test must find
    declared: tuple[str, ...] = ()  # the provider's "Deployments"


BEARER = ("authorization", f"Bearer {SECRET}")
AZURE_AI_SDK_VERSION = "2024-05-01-preview"  # what azure-ai-inference sends
CASES = {
    "openai": Case("/v1", "gpt-4o-mini", "/v1/chat/completions", BEARER),
    "anthropic": Case(
        "", "claude-sonnet-4-5", "/v1/messages", ("x-api-key", SECRET), list_path="/v1/models"
    ),
    "gemini": Case(
        "",
        "gemini-2.5-flash",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        ("x-goog-api-key", SECRET),
        list_path="/v1beta/models",
    ),
    # /openai/models lists base models, not deployments: only the declared ones are offered.
    "azure": Case(
        "",
        "my-deployment",
        "/openai/deployments/my-deployment/chat/completions",
        ("api-key", SECRET),
        api_version="2024-10-21",
        list_path="/openai/models",
        query={"api-version": "2024-10-21"},
        listed=("my-deployment", "other-deployment"),
        declared=("my-deployment", "other-deployment"),
    ),
    # A model named like an OpenAI one would make LiteLLM reroute azure_ai to azure/.
    # No API version stored: the kind sends the one the official SDK sends.
    "azure_ai": Case(
        "/models",
        "my-model",
        "/models/chat/completions",
        BEARER,
        list_path="/models/info",
        list_format="info",
        query={"api-version": AZURE_AI_SDK_VERSION},
        listed=("alpha-1",),
    ),
    "openrouter": Case("/api/v1", "openai/gpt-4o", "/api/v1/chat/completions", BEARER),
    "groq": Case("/openai/v1", "llama-3.1-8b-instant", "/openai/v1/chat/completions", BEARER),
    "together": Case(
        "/v1", "meta-llama/Llama-3-8b", "/v1/chat/completions", BEARER, list_format="array"
    ),
    "mistral": Case("/v1", "mistral-small-latest", "/v1/chat/completions", BEARER),
    "deepseek": Case("/v1", "deepseek-chat", "/v1/chat/completions", BEARER),
    "openai_compatible": Case("/v1", "my-model", "/v1/chat/completions", BEARER),
    "ollama": Case("", "llama3.2", "/api/chat", None, list_path="/api/tags"),
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
    if kind.default_api_version:
        # The form shows what will be sent, so a dashboard edit never erases it.
        assert kind.shows_api_version and kind.api_version_example
    assert bool(CASES[slug].declared) == kind.shows_declared_models


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_litellm_params_name_the_model_with_the_kinds_prefix(slug):
    # That no key or base URL is left to the environment is proven end to end, against a
    # recording upstream, by tests/providers/services/test_completion.py.
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
        declared_models=list(case.declared),
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
    for name, value in (case.query or {}).items():
        assert request.query[name] == [value]
    body = request.json()
    if case.model not in request.path:
        assert body["model"] == case.model
    assert "hi" in str(body)
    assert kind.litellm_prefix  # the registry, not an if-chain, chose the route


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_connection_test_reads_the_kind_model_list(slug, upstream, make_provider):
    case = CASES[slug]
    upstream.models = list(MODELS)
    upstream.list_format = case.list_format
    provider = make_provider(
        name="p",
        kind=slug,
        base_url=upstream.base_url + case.suffix,
        api_key=SECRET if case.auth else "",
        api_version=case.api_version,
        declared_models=list(case.declared),
    )
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.models == list(case.listed)
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert [r.path for r in upstream.requests] == [case.list_path or case.suffix + "/models"]
    request = upstream.last
    assert request.method == "GET"
    for name, value in (case.query or {}).items():
        assert request.query[name] == [value]
    if case.auth:
        name, value = case.auth
        assert request.headers[name] == value
    provider.refresh_from_db()
    assert provider.last_test_ok and provider.discovered_models == list(case.listed)


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_model_list_in_another_shape_is_reported_as_such(slug, upstream, make_provider):
    """JSON that is not this kind's list is "not a model list", never "not JSON"."""
    case, kind = CASES[slug], kinds.KINDS[slug]
    upstream.list_format = "array" if case.list_format != "array" else "openai"
    provider = make_provider(
        name="p",
        kind=slug,
        base_url=upstream.base_url + case.suffix,
        api_key=SECRET if case.auth else "",
        api_version=case.api_version,
        declared_models=list(case.declared),
    )
    result = services.provider_test(provider=provider)
    assert not result.ok
    example = kind.default_base_url or kind.base_url_example
    assert result.message == NOT_A_MODEL_LIST.format(label=kind.label, example=example)
