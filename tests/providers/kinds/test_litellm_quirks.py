"""What LiteLLM gets wrong for some kinds, and the workarounds in providers/routing/llm.py, checked
at the recording upstream: Groq answers without service_tier, Ollama's /api/show side
request behind an authenticating proxy, OpenRouter's attribution headers."""

import pytest
from asgiref.sync import async_to_sync

from providers import kinds, services
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
]


@pytest.mark.parametrize("stream", [False, True])
def test_groq_answer_without_service_tier_is_read(stream, upstream, make_provider):
    upstream.omit_fields = {"service_tier"}
    upstream.reply_text = "no tier here"
    make_provider(name="g", kind="groq", base_url=upstream.base_url + "/openai/v1")
    response = services.completion(HI, model="g/llama-3.1-8b-instant", stream=stream)
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response)
    else:
        text = response.choices[0].message.content
    assert text == "no tier here"
    request = upstream.last
    assert request.path == "/openai/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SECRET}"


def test_ollama_model_info_request_carries_key_and_headers(upstream, make_provider):
    make_provider(
        name="o",
        kind="ollama",
        base_url=upstream.base_url,
        api_key=SECRET,
        headers={"X-Proxy-Auth": "proxy-token"},
    )
    # LiteLLM caches what /api/show said per model: a model name of this test's own.
    chunks = list(services.completion(HI, model="o/proxied-model:7b", stream=True, tools=TOOLS))
    assert chunks
    # LiteLLM asks /api/show from its logging thread, once the stream has ended.
    shows = upstream.wait_for("/api/show")
    assert shows, [r.path for r in upstream.requests]
    for request in shows:
        assert request.method == "POST"
        assert request.json() == {"name": "proxied-model:7b"}
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        assert request.headers["x-proxy-auth"] == "proxy-token"
    chats = [r for r in upstream.requests if r.path == "/api/chat"]
    assert chats and chats[0].headers["x-proxy-auth"] == "proxy-token"


def test_ollama_model_info_request_carries_headers_in_async_streams(upstream, make_provider):
    make_provider(
        name="o", kind="ollama", base_url=upstream.base_url, headers={"X-Proxy-Auth": "pt"}
    )

    async def call() -> None:
        stream = await services.acompletion(HI, model="o/async-model:3b", stream=True)
        async for _chunk in stream:
            pass

    async_to_sync(call)()
    shows = upstream.wait_for("/api/show")
    assert shows, [r.path for r in upstream.requests]
    assert all(r.headers.get("x-proxy-auth") == "pt" for r in shows)
    assert all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in shows)


def test_openrouter_credits_this_app(upstream, make_provider):
    make_provider(name="or", kind="openrouter", base_url=upstream.base_url + "/api/v1")
    services.completion(HI, model="or/openai/gpt-4o-mini")
    request = upstream.last
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["x-title"] == kinds.APP_NAME == "Routing Admin"
    assert request.headers["http-referer"] == kinds.APP_REFERER
    assert "litellm" not in request.headers["http-referer"].lower()


def test_openrouter_headers_set_on_the_provider_win(upstream, make_provider):
    make_provider(
        name="or",
        kind="openrouter",
        base_url=upstream.base_url + "/api/v1",
        headers={"x-title": "Team Tool", "HTTP-Referer": "https://team.example/"},
    )
    services.completion(HI, model="or/openai/gpt-4o-mini")
    headers = upstream.last.headers
    assert headers["x-title"] == "Team Tool"
    assert headers["http-referer"] == "https://team.example/"
