"""POST /v1/embeddings through a real server, with the official `openai` SDK and LangChain's
`OpenAIEmbeddings`, against the recording upstream: what the provider got, what the client
decoded, and the same tokens, limits, request log, usage and routing as chat."""

import httpx
import openai
import pytest

from gateway.chat_params import EMBEDDINGS
from gateway.services import token_create
from gateway.views.embeddings import BAD_INPUT
from providers import services
from providers.services import DeploymentSpec as D
from tests.gateway import test_gateway
from tests.gateway.test_gateway import client
from tests.upstream_embeddings import vector_for
from usage import request_log
from usage.models import RequestLog

gateway = test_gateway.gateway
setup = test_gateway.setup

# Every test twice: relayed without LiteLLM, and through LiteLLM (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]
MODEL = "pa/text-embedding-3-small"  # priced in LiteLLM's map: $0.02 a million tokens


def _post(gateway, token, body):
    return httpx.post(
        gateway + "/v1/embeddings", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_the_sdk_gets_its_default_base64_and_decodes_the_providers_numbers(gateway, setup):
    a, _, token = setup
    answer = client(gateway, token).embeddings.create(model=MODEL, input="hello world")
    assert answer.data[0].embedding == vector_for("hello world")
    assert answer.model == "text-embedding-3-small"
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (2, 2)
    sent = a.last
    assert sent.path == "/v1/embeddings"
    assert sent.headers["authorization"].startswith("Bearer sk-test-")
    # The provider is asked for floats; the gateway encodes them as the caller asked.
    assert sent.json() == {"model": "text-embedding-3-small", "input": "hello world"}


def test_base64_on_the_wire_is_little_endian_float32(gateway, setup):
    import base64
    import struct

    _, _, token = setup
    body = {"model": MODEL, "input": "x", "encoding_format": "base64"}
    encoded = _post(gateway, token, body).json()["data"][0]["embedding"]
    raw = base64.b64decode(encoded)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == vector_for("x")


def test_a_list_of_inputs_as_floats(gateway, setup):
    a, _, token = setup
    texts = ["one", "two words", "three more words"]
    answer = client(gateway, token).embeddings.create(
        model=MODEL, input=texts, encoding_format="float", dimensions=4
    )
    assert [d.index for d in answer.data] == [0, 1, 2]
    assert [d.embedding for d in answer.data] == [vector_for(t, 4) for t in texts]
    assert a.last.json() == {"model": "text-embedding-3-small", "input": texts, "dimensions": 4}


def test_token_ids_as_langchain_sends_them(gateway, setup):
    a, _, token = setup
    answer = client(gateway, token).embeddings.create(model=MODEL, input=[[1, 2, 3], [4]])
    assert [d.embedding for d in answer.data] == [vector_for([1, 2, 3]), vector_for([4])]
    assert a.last.json()["input"] == [[1, 2, 3], [4]]
    assert answer.usage.prompt_tokens == 4


def test_langchain_openai_embeddings(gateway, setup, monkeypatch):
    from importlib import resources

    from langchain_openai import OpenAIEmbeddings

    # LangChain tokenizes with tiktoken, which would download its encoding: LiteLLM ships it.
    bundled = resources.files("litellm") / "litellm_core_utils" / "tokenizers"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(bundled))
    a, _, token = setup
    texts = ["The gateway speaks every API.", "Embeddings too."]
    # As shipped: it tokenizes (tiktoken) and sends token IDs, in base64.
    embedder = OpenAIEmbeddings(
        model="pa/text-embedding-3-small",
        base_url=gateway + "/v1",
        api_key=token,
        max_retries=0,
    )
    vectors = embedder.embed_documents(texts)
    sent = a.last.json()["input"]
    assert len(sent) == 2 and all(isinstance(t, int) for ids in sent for t in ids)
    assert vectors == [vector_for(ids) for ids in sent]
    # And with plain text, as many set it.
    plain = OpenAIEmbeddings(
        model="pa/text-embedding-3-small",
        base_url=gateway + "/v1",
        api_key=token,
        max_retries=0,
        check_embedding_ctx_length=False,
    )
    assert plain.embed_query("Embeddings too.") == vector_for("Embeddings too.")
    assert a.last.json()["input"] == ["Embeddings too."]


def test_each_call_is_logged_with_its_tokens_and_cost(gateway, setup):
    _, _, token = setup
    client(gateway, token).embeddings.create(model=MODEL, input="five words in this input")
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.token_name, row.requested_model, row.provider, row.model, row.ok) == (
        "app", MODEL, "pa", "text-embedding-3-small", True
    )  # fmt: skip
    assert (row.prompt_tokens, row.completion_tokens) == (5, 0)
    assert row.cost == pytest.approx(5 * 0.02 / 1_000_000)


def test_default_groups_with_fallbacks_and_provider_model(gateway, setup):
    a, b, token = setup
    c = client(gateway, token)
    c.embeddings.create(model="default", input="x")
    assert a.last.json()["model"] == "gpt-4o-mini"
    services.group_save(name="spare", deployments=[D("pb", "text-embedding-3-large")])
    services.group_save(
        name="emb", deployments=[D("pa", "text-embedding-3-small")], fallbacks=["spare"]
    )
    a.fail_next(500, times=10)
    answer = c.embeddings.create(model="emb", input="y")
    assert answer.data[0].embedding == vector_for("y")
    assert b.last.json()["model"] == "text-embedding-3-large"
    c.embeddings.create(model="pb/e5", input="z")
    assert b.last.json()["model"] == "e5"
    request_log.flush()
    grouped = RequestLog.objects.get(requested_model="emb")
    assert (grouped.provider, grouped.model, grouped.fallbacks, grouped.ok) == (
        "pb", "text-embedding-3-large", 1, True
    )  # fmt: skip


def test_allowed_models_and_tokens_per_minute(gateway, setup):
    a, _, _ = setup
    _, limited = token_create(name="limited", allowed_models=[MODEL], tpm=5)
    c = client(gateway, limited)
    with pytest.raises(openai.PermissionDeniedError):
        c.embeddings.create(model="default", input="x")
    answer = c.embeddings.with_raw_response.create(model=MODEL, input="one two three")
    # Embeddings count their prompt tokens.
    assert answer.headers["x-ratelimit-remaining-tokens"] == "2"
    c.embeddings.create(model=MODEL, input="four five six")
    calls = len(a.requests)
    with pytest.raises(openai.RateLimitError):
        c.embeddings.create(model=MODEL, input="seven")
    assert len(a.requests) == calls
    request_log.flush()
    statuses = list(RequestLog.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [403, 200, 200, 429]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"input": ""}, "input", BAD_INPUT),
        ({"input": [1, "a", None]}, "input", BAD_INPUT),
        ({"input": "x", "api_base": "http://127.0.0.1:9"}, "api_base", None),
        ({"input": "x", "top_k": 1}, "top_k", EMBEDDINGS.unknown("top_k")),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format", None),
    ],
)
def test_what_is_refused(gateway, setup, body, param, message):
    a, _, token = setup
    answer = _post(gateway, token, {"model": MODEL, **body})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param
    if message:
        assert error["message"] == message
    assert a.requests == []


def test_gemini_and_ollama_providers(gateway, setup, upstream_factory, make_provider):
    _, _, token = setup
    gemini, ollama = upstream_factory("gemini"), upstream_factory("ollama")
    make_provider(name="pg", kind="gemini", base_url=gemini.base_url)
    make_provider(name="po", kind="ollama", base_url=ollama.base_url, api_key="")
    c = client(gateway, token)
    answer = c.embeddings.create(model="pg/gemini-embedding-001", input=["a b", "c"])
    assert [d.embedding for d in answer.data] == [vector_for("a b"), vector_for("c")]
    sent = gemini.last
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"].startswith("sk-test-")
    answer = c.embeddings.create(model="po/nomic-embed-text", input="a b")
    assert answer.data[0].embedding == vector_for("a b")
    assert ollama.last.path == "/api/embed"
    assert ollama.last.json()["model"] == "nomic-embed-text"


def test_models_say_what_they_serve(gateway, setup, make_provider):
    _, _, token = setup
    make_provider(name="claude", kind="anthropic", base_url="http://127.0.0.1:9")
    services.group_save(name="emb", deployments=[D("pa", "text-embedding-3-small")])
    services.group_save(name="mixed", deployments=[D("pa", "gpt-4o-mini"), D("pb", "mine")])
    services.group_save(name="sonnet", deployments=[D("claude", "claude-sonnet-4-5")])
    listed = httpx.get(gateway + "/v1/models", headers={"Authorization": f"Bearer {token}"})
    serves = {m["id"]: m.get("serves") for m in listed.json()["data"]}
    assert serves["emb"] == serves["pa/text-embedding-3-small"] == ["embeddings"]
    assert serves["default"] == serves["pa/gpt-4o-mini"] == ["chat"]
    # Anthropic's kind has chat models only; a model nothing describes gets no `serves`.
    assert serves["sonnet"] == serves["claude/claude-sonnet-4-5"] == ["chat"]
    assert serves["pb/mine"] is None and serves["mixed"] is None
    one = client(gateway, token).models.retrieve("emb")
    assert one.model_extra["serves"] == ["embeddings"]


def test_a_group_of_ollama_deployments_embeds_with_ollamas_embed_api(
    gateway, setup, upstream_factory, make_provider
):
    _, _, token = setup
    ollama = upstream_factory("ollama")
    make_provider(name="po", kind="ollama", base_url=ollama.base_url, api_key="")
    services.group_save(name="local-emb", deployments=[D("po", "nomic-embed-text")])
    c = client(gateway, token)
    answer = c.embeddings.create(model="local-emb", input=["a b", "c"])
    assert [d.embedding for d in answer.data] == [vector_for("a b"), vector_for("c")]
    assert ollama.last.path == "/api/embed"
    assert ollama.last.json()["model"] == "nomic-embed-text"
    # The group's chat still goes to Ollama's chat API: the embeddings' route is theirs only.
    c.chat.completions.create(model="local-emb", messages=[{"role": "user", "content": "hi"}])
    assert ollama.last.path == "/api/chat"
    request_log.flush()
    row = RequestLog.objects.filter(requested_model="local-emb").order_by("id").first()
    assert (row.provider, row.model, row.ok, row.prompt_tokens) == (
        "po", "nomic-embed-text", True, 3
    )  # fmt: skip


def test_a_provider_without_an_embeddings_api_is_refused_before_any_call(
    gateway, setup, upstream_factory, make_provider
):
    a, _, token = setup
    claude = upstream_factory("claude")
    make_provider(name="claude", kind="anthropic", base_url=claude.base_url)
    answer = _post(gateway, token, {"model": "claude/claude-sonnet-4-5", "input": "x"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "unsupported_endpoint", "model"
    )  # fmt: skip
    able = (
        "OpenAI, Google Gemini (AI Studio), Azure OpenAI, Azure AI Foundry, OpenRouter, "
        "Together AI, Mistral, OpenAI-compatible endpoint, Ollama, LM Studio, vLLM, "
        "AWS Bedrock, Google Vertex AI"
    )
    assert error["message"] == services.NO_EMBEDDINGS.format(
        provider="claude", kind="Anthropic", kinds=able
    )
    assert error["message"].startswith("Provider 'claude' (Anthropic) has no embeddings API")
    # A group with such a deployment (here a fallback's) is refused likewise, naming it.
    services.group_save(name="chatty", deployments=[D("claude", "claude-sonnet-4-5")])
    services.group_save(
        name="emb", deployments=[D("pa", "text-embedding-3-small")], fallbacks=["chatty"]
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway, token).embeddings.create(model="emb", input="x")
    assert caught.value.code == "unsupported_endpoint"
    assert caught.value.body["message"].startswith(
        "Routing group 'emb' cannot embed: its deployment 'claude/claude-sonnet-4-5' is on "
        "provider 'claude' (Anthropic), which has no embeddings API"
    )
    assert claude.requests == [] and a.requests == []
    request_log.flush()
    rows = list(RequestLog.objects.order_by("id").values_list("requested_model", "status", "ok"))
    assert rows == [("claude/claude-sonnet-4-5", 400, False), ("emb", 400, False)]
    first = RequestLog.objects.order_by("id").first()
    assert first.error.startswith("Provider 'claude' (Anthropic) has no embeddings API")
    assert first.token_name == "app"
