"""One contract, run for every registered provider kind: a real call through the service
layer reaches a real HTTP server with the kind's path, auth header, model and required query
parameters, and the connection test reads the kind's model list at the route, with the
query and in the format the vendor documents."""

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest

from providers import kinds, services
from providers.kinds.bedrock import BEDROCK_OK
from providers.services.connection import NOT_A_MODEL_LIST
from providers.validators import validate_base_url
from tests.conftest import SECRET
from tests.providers.kinds import cloud_keys
from tests.upstream import RecordedRequest
from tests.upstream_clouds import TEST_ACCESS_TOKEN

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
    options: dict[str, str] = field(default_factory=dict)  # the kind's own settings
    # The stored key from the test server's URL (a service account's token_uri); None: SECRET.
    key: Callable[[str], str] | None = None
    # More to check on the recorded call (a signature).
    check: Callable[[RecordedRequest], None] | None = None
    # The connection test's requests, in order, when not one GET of list_path.
    test_requests: tuple[tuple[str, str], ...] = ()
    ok_message: str = ""  # what the connection test says, when the kind cannot list models

    def api_key(self, upstream_url: str) -> str:
        if self.key is not None:
            return self.key(upstream_url)
        return SECRET if self.auth else ""

    @property
    def lists_models(self) -> bool:
        return not self.ok_message

    def provider(self, slug: str, upstream_url: str, **extra):
        """The keyword arguments of services.provider_create for this case."""
        return {
            "kind": slug,
            "base_url": upstream_url + self.suffix,
            "api_key": self.api_key(upstream_url),
            "api_version": self.api_version,
            "declared_models": list(self.declared),
            "options": dict(self.options),
            **extra,
        }


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
    # The signature is recomputed from the known keys for the recorded request.
    "bedrock": Case(
        "",
        "amazon.nova-lite-v1:0",
        "/model/amazon.nova-lite-v1%3A0/converse",
        None,
        options={"region": cloud_keys.AWS_REGION, "access_key_id": cloud_keys.AWS_ACCESS_KEY_ID},
        key=lambda url: cloud_keys.AWS_SECRET_ACCESS_KEY,
        check=cloud_keys.assert_valid_sigv4,
        test_requests=(("POST", "/model/amazon.nova-micro-v1%3A0/converse"),),
        ok_message=BEDROCK_OK,
        listed=(),
    ),
    # The token comes from the service account's token_uri, a route of the test server.
    "vertex_ai": Case(
        "",
        "gemini-2.5-flash",
        f"/v1/projects/{cloud_keys.VERTEX_PROJECT}/locations/{cloud_keys.VERTEX_LOCATION}"
        "/publishers/google/models/gemini-2.5-flash:generateContent",
        ("authorization", f"Bearer {TEST_ACCESS_TOKEN}"),
        options={"project": cloud_keys.VERTEX_PROJECT, "location": cloud_keys.VERTEX_LOCATION},
        key=lambda url: cloud_keys.service_account_json(url + "/token"),
        list_path="/v1beta1/publishers/google/models",
        test_requests=(("POST", "/token"), ("GET", "/v1beta1/publishers/google/models")),
    ),
}
ALL_KINDS = sorted(kinds.KINDS)
LISTING_KINDS = [slug for slug in ALL_KINDS if CASES[slug].lists_models]


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
        default = kind.default_base_url_for(kind.example_options)
        assert validate_base_url(default, local=kind.local).url
    for setting in kind.fields:
        assert setting.label and setting.example and setting.help_text
        errors = kind.field_errors(base_url="x", has_api_key=True, api_version="1", options={})
        assert (setting.name in errors) == setting.required
        assert setting.error(kind.label, setting.example) is None
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
    upstream.reply_text = f"hello from {slug}"
    make_provider(
        name="p", **case.provider(slug, upstream.base_url, headers={"X-Team": "team-header-value"})
    )
    response = services.completion(HI, model=f"p/{case.model}")
    assert response.choices[0].message.content == f"hello from {slug}"
    sent = [r for r in upstream.requests if r.path == case.path]
    assert len(sent) == 1, [r.path for r in upstream.requests]
    request = sent[0]
    if case.auth:
        name, value = case.auth
        assert request.headers[name] == value
    if case.check:
        case.check(request)
    assert request.headers["x-team"] == "team-header-value"
    for name, value in (case.query or {}).items():
        assert request.query[name] == [value]
    body = request.json()
    if case.model not in unquote(request.path):
        assert body["model"] == case.model
    assert "hi" in str(body)
    assert kind.litellm_prefix  # the registry, not an if-chain, chose the route


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_connection_test_reads_the_kind_model_list(slug, upstream, make_provider):
    case = CASES[slug]
    upstream.models = list(MODELS)
    upstream.list_format = case.list_format
    provider = make_provider(name="p", **case.provider(slug, upstream.base_url))
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.models == list(case.listed)
    assert result.latency_ms is not None and result.latency_ms >= 0
    expected = case.test_requests or (("GET", case.list_path or case.suffix + "/models"),)
    assert [(r.method, r.path) for r in upstream.requests] == list(expected)
    request = upstream.last
    for name, value in (case.query or {}).items():
        assert request.query[name] == [value]
    if case.auth:
        name, value = case.auth
        assert request.headers[name] == value
    if case.check:
        case.check(request)
    if case.ok_message:
        assert result.message == case.ok_message
    provider.refresh_from_db()
    assert provider.last_test_ok and provider.discovered_models == list(case.listed)


@pytest.mark.parametrize("slug", LISTING_KINDS)
def test_model_list_in_another_shape_is_reported_as_such(slug, upstream, make_provider):
    """JSON that is not this kind's list is "not a model list", never "not JSON"."""
    case, kind = CASES[slug], kinds.KINDS[slug]
    upstream.list_format = "array" if case.list_format != "array" else "openai"
    provider = make_provider(name="p", **case.provider(slug, upstream.base_url))
    result = services.provider_test(provider=provider)
    assert not result.ok
    example = kind.default_base_url or kind.base_url_example
    assert result.message == NOT_A_MODEL_LIST.format(label=kind.label, example=example)


@pytest.mark.parametrize("slug", ALL_KINDS)
def test_embeds_says_whether_litellm_has_an_embeddings_call_for_the_kind(
    slug, upstream, make_provider
):
    import asyncio

    from providers.routing import live

    case, kind = CASES[slug], kinds.KINDS[slug]
    if kind.serves:
        assert kind.embeds == ("embeddings" in kind.serves)
    make_provider(name="p", **case.provider(slug, upstream.base_url))
    snap = live.snapshot()
    # acall itself, past the refusal of services.aembedding: what LiteLLM would do.
    call = services.acall("aembedding", model=f"p/{case.model}", snapshot=snap, input="x")
    try:
        asyncio.run(call)
    except services.ProviderError as exc:
        failure = str(exc)
    else:
        failure = ""
    sent = [r.path for r in upstream.requests if r.path != "/token"]
    if kind.embeds:
        assert sent, failure
    else:
        assert not sent and failure, (sent, failure)
