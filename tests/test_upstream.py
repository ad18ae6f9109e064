"""The fake upstream speaks each provider's wire format well enough for real litellm calls.

These tests also pin down what litellm 1.106.2 sends for each prefix (path, auth, body),
which the provider-kind registry relies on.
"""

import os
import time

import httpx
import pytest

# The fixtures are imported by name, so every test that takes one redefines it for ruff.
# ruff: noqa: F811
from tests.upstream import Upstream, upstream, upstream_factory  # noqa: F401

# Before litellm is first imported: without it litellm fetches its price list over the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "sk-test-1234567890abcd"
HI = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# litellm 1.106.2 routes any call with `tools` through its MCP gateway check, which imports
# the optional `mcp` package and fails without it; this private flag skips that check.
NO_MCP = {"_skip_mcp_handler": True}


@pytest.fixture(scope="module")
def litellm():
    import litellm

    saved = litellm.disable_hf_tokenizer_download, litellm.suppress_debug_info
    # Streams without usage make litellm count tokens, and for llama-like model names it
    # would first try (and, offline, retry for half a minute) to download a tokenizer.
    litellm.disable_hf_tokenizer_download = True
    litellm.suppress_debug_info = True
    yield litellm
    litellm.disable_hf_tokenizer_download, litellm.suppress_debug_info = saved


def _to(server: Upstream, path: str):
    # litellm's ollama adapter posts /api/show from a logging thread, so `last` may be that.
    return [request for request in server.requests if request.path == path]


@pytest.mark.parametrize(
    ("model", "base", "path", "sent_model"),
    [
        ("openai/gpt-4o-mini", "/v1", "/v1/chat/completions", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "", "/chat/completions", "gpt-4o-mini"),
        ("hosted_vllm/my-model", "/v1", "/v1/chat/completions", "my-model"),
        ("lm_studio/my-model", "/v1", "/v1/chat/completions", "my-model"),
        ("openrouter/openai/gpt-4o", "/api/v1", "/api/v1/chat/completions", "openai/gpt-4o"),
        (
            "together_ai/meta-llama/Llama-3-8b",
            "/v1",
            "/v1/chat/completions",
            "meta-llama/Llama-3-8b",
        ),
        (
            "groq/llama-3.1-8b-instant",
            "/openai/v1",
            "/openai/v1/chat/completions",
            "llama-3.1-8b-instant",
        ),
        ("mistral/mistral-small-latest", "/v1", "/v1/chat/completions", "mistral-small-latest"),
        ("deepseek/deepseek-chat", "/v1", "/v1/chat/completions", "deepseek-chat"),
        # The fake, like Azure, refuses the inference API without ?api-version.
        (
            "azure_ai/my-model",
            "/models?api-version=2024-05-01-preview",
            "/models/chat/completions",
            "my-model",
        ),
    ],
)
def test_openai_style_prefixes(litellm, upstream, model, base, path, sent_model):
    response = litellm.completion(
        model=model, api_base=upstream.base_url + base, api_key=KEY, messages=HI
    )

    assert response.choices[0].message.content == "Hello from upstream"
    request = upstream.last
    assert (request.method, request.path) == ("POST", path)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json()["model"] == sent_model
    assert request.json()["messages"] == HI


def test_anthropic(litellm, upstream):
    model = "anthropic/claude-3-5-sonnet-20241022"
    response = litellm.completion(model=model, api_base=upstream.base_url, api_key=KEY, messages=HI)

    assert response.choices[0].message.content == "Hello from upstream"
    request = upstream.last
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.json()["model"] == "claude-3-5-sonnet-20241022"
    assert request.json()["max_tokens"] > 0


def test_anthropic_api_base_is_the_host_not_v1(litellm, upstream):
    model = "anthropic/claude-3-5-sonnet-20241022"
    litellm.completion(model=model, api_base=upstream.base_url + "/v1", api_key=KEY, messages=HI)

    assert upstream.last.path == "/v1/v1/messages"


def test_gemini(litellm, upstream):
    response = litellm.completion(
        model="gemini/gemini-2.0-flash",
        api_base=upstream.base_url + "/v1beta",
        api_key=KEY,
        messages=HI,
    )

    assert response.choices[0].message.content == "Hello from upstream"
    request = upstream.last
    assert request.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert "key" not in request.query
    assert request.json()["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_azure_openai(litellm, upstream):
    response = litellm.completion(
        model="azure/my-deployment",
        api_base=upstream.base_url,
        api_version="2024-10-21",
        api_key=KEY,
        messages=HI,
    )

    assert response.choices[0].message.content == "Hello from upstream"
    request = upstream.last
    assert request.path == "/openai/deployments/my-deployment/chat/completions"
    assert request.query == {"api-version": ["2024-10-21"]}
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers


def test_azure_ai_anthropic_endpoint(litellm, upstream):
    response = litellm.completion(
        model="azure_ai/claude-sonnet-4-5",
        api_base=upstream.base_url + "/anthropic",
        api_key=KEY,
        messages=HI,
    )

    assert response.choices[0].message.content == "Hello from upstream"
    request = upstream.last
    assert request.path == "/anthropic/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["api-key"] == KEY
    assert request.json()["model"] == "claude-sonnet-4-5"


def test_ollama_chat(litellm, upstream):
    response = litellm.completion(
        model="ollama_chat/llama3.2", api_base=upstream.base_url, api_key=KEY, messages=HI
    )

    assert response.choices[0].message.content == "Hello from upstream"
    [request] = _to(upstream, "/api/chat")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json()["model"] == "llama3.2"
    assert request.json()["stream"] is False


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("openai/gpt-4o-mini", "/v1"),
        ("anthropic/claude-3-5-sonnet-20241022", ""),
        ("gemini/gemini-2.0-flash", "/v1beta"),
        ("ollama_chat/llama3.2", ""),
    ],
)
def test_streaming(litellm, upstream, model, base):
    upstream.reply_text = "one two three four"

    stream = litellm.completion(
        model=model, api_base=upstream.base_url + base, api_key=KEY, messages=HI, stream=True
    )
    pieces = [chunk.choices[0].delta.content for chunk in stream]

    texts = [piece for piece in pieces if piece]
    assert len(texts) >= 3
    assert "".join(texts) == "one two three four"


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("openai/gpt-4o-mini", "/v1"),
        ("anthropic/claude-3-5-sonnet-20241022", ""),
        ("gemini/gemini-2.0-flash", "/v1beta"),
        ("ollama_chat/llama3.2", ""),
    ],
)
def test_tool_call_round_trip(litellm, upstream, model, base):
    upstream.tool_call("get_weather", {"city": "Paris"})
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    call = {"model": model, "api_base": upstream.base_url + base, "api_key": KEY, **NO_MCP}

    first = litellm.completion(**call, messages=messages, tools=[WEATHER_TOOL])
    [tool_call] = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert tool_call.function.name == "get_weather"
    assert tool_call.function.arguments == '{"city": "Paris"}'

    messages += [
        first.choices[0].message.model_dump(),
        {"role": "tool", "tool_call_id": tool_call.id, "content": "Sunny"},
    ]
    second = litellm.completion(**call, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Hello from upstream"


def test_streamed_tool_call(litellm, upstream):
    upstream.tool_call("get_weather", {"city": "Paris"})

    stream = litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=upstream.base_url,
        api_key=KEY,
        messages=HI,
        tools=[WEATHER_TOOL],
        stream=True,
        **NO_MCP,
    )
    chunks = list(stream)

    deltas = [call for chunk in chunks for call in chunk.choices[0].delta.tool_calls or []]
    assert deltas[0].function.name == "get_weather"
    assert "".join(delta.function.arguments for delta in deltas) == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_fail_next_then_recover(litellm, upstream):
    upstream.fail_next(429)
    call = {"model": "openai/gpt-4o-mini", "api_base": upstream.base_url, "api_key": KEY}

    # The OpenAI SDK retries 429s and 5xx twice by default.
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(**call, messages=HI, max_retries=0)
    response = litellm.completion(**call, messages=HI, max_retries=0)

    assert response.choices[0].message.content == "Hello from upstream"
    assert len(upstream.requests) == 2


def test_fail_next_with_plain_text_body(upstream):
    upstream.fail_next(502, "bad gateway", times=2)

    answers = [httpx.get(f"{upstream.base_url}/v1/models") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [502, 502, 200]
    assert answers[0].text == "bad gateway"


def test_hang_times_out_and_stop_releases_it(litellm, upstream):
    upstream.hang(30)

    with pytest.raises(litellm.Timeout):
        litellm.completion(
            model="openai/gpt-4o-mini",
            api_base=upstream.base_url,
            api_key=KEY,
            messages=HI,
            timeout=0.5,
            max_retries=0,
        )
    started = time.monotonic()
    upstream.stop()

    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("provider", "base", "path"),
    [
        ("openai", "/v1", "/v1/models"),
        ("anthropic", "", "/v1/models"),
        # Unlike completions, Gemini's model list appends /v1beta itself.
        ("gemini", "", "/v1beta/models"),
        ("ollama", "", "/api/tags"),
    ],
)
def test_model_lists_parse_in_litellm(litellm, upstream, provider, base, path):
    upstream.models = ["alpha", "beta"]

    models = litellm.get_valid_models(
        check_provider_endpoint=True,
        custom_llm_provider=provider,
        api_key=KEY,
        api_base=upstream.base_url + base,
    )

    assert [model.split("/")[-1] for model in models] == ["alpha", "beta"]
    assert upstream.last.path == path


@pytest.mark.parametrize(
    ("path", "key", "field"),
    [
        ("/v1/models", "data", "id"),
        ("/openai/models?api-version=2024-10-21", "data", "id"),
        ("/v1beta/models", "models", "name"),
        ("/api/tags", "models", "name"),
    ],
)
def test_model_list_shapes(upstream, path, key, field):
    upstream.models = ["alpha"]

    answer = httpx.get(upstream.base_url + path).json()

    assert [model[field].removeprefix("models/") for model in answer[key]] == ["alpha"]


def test_unknown_path_is_404_and_recorded(upstream):
    answer = httpx.post(f"{upstream.base_url}/nowhere?x=1", json={"a": 1})

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == 404
    assert upstream.last.path == "/nowhere"
    assert upstream.last.query == {"x": ["1"]}
    assert upstream.last.json() == {"a": 1}


def test_factory_servers_are_told_apart(litellm, upstream_factory):
    first, second = upstream_factory("first"), upstream_factory("second")
    call = {"model": "openai/gpt-4o-mini", "api_key": KEY, "messages": HI}

    answers = [
        litellm.completion(**call, api_base=server.base_url).choices[0].message.content
        for server in (first, second)
    ]

    assert answers == ["Hello from first", "Hello from second"]
    assert first.base_url != second.base_url
    assert len(first.requests) == len(second.requests) == 1


def test_reset_forgets_requests_and_behaviours(upstream):
    upstream.fail_next(500, times=5)
    upstream.tool_call("x", {})
    httpx.get(f"{upstream.base_url}/v1/models")

    upstream.reset()

    assert upstream.requests == []
    assert httpx.get(f"{upstream.base_url}/v1/models").status_code == 200
    with pytest.raises(AssertionError):
        _ = Upstream("empty").last
