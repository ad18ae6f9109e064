"""POST /v1/messages, Anthropic's Messages API, driven by the official `anthropic` package
through the real gateway, against the recording upstream: passed through to Anthropic-kind
providers in Anthropic's format, translated by LiteLLM for any other; plain, streamed (read
by the SDK's own stream parser) and with tools; tokens (sent as x-api-key, as the SDK does),
limits, request log and routing as for chat completions; errors in Anthropic's shape."""

from __future__ import annotations

import typing

import anthropic
import httpx
import pytest
from anthropic.types import message_create_params
from anthropic.types.beta import message_create_params as beta_message_create_params

from gateway.api_params import MESSAGES_PARAMETERS, MESSAGES_READ
from gateway.chat_params import ROUTING_PARAMETERS
from gateway.services import token_create
from providers import services
from providers.services import DeploymentSpec as D
from tests.conftest import SECRET
from tests.gateway import test_gateway
from usage import request_log
from usage.models import RequestLog

gateway = test_gateway.gateway

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
TOOL = {
    "name": "lookup",
    "description": "Look a word up.",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
}
CLAUDE = "claude-sonnet-4-5"


@pytest.fixture
def setup(upstream_factory, make_provider):
    """An Anthropic provider (the default) and an OpenAI one, and a token."""
    c, a = upstream_factory("c"), upstream_factory("a")
    c.reply_text, a.reply_text = "from Claude", "from A"
    pc = make_provider(name="pc", kind="anthropic", base_url=c.base_url)
    make_provider(name="pa", base_url=a.base_url + "/v1")
    services.default_model_set(provider=pc, model=CLAUDE)
    _, raw = token_create(name="app", actor="test")
    return c, a, raw


def client(gateway, token) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=token, max_retries=0, timeout=30)


def _text(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def test_a_plain_message_is_passed_through_to_anthropic(gateway, setup):
    c, _, token = setup
    message = client(gateway, token).messages.create(
        model="default",
        max_tokens=50,
        messages=HI,
        system="Be brief.",
        # Older releases of the SDK had it, and clients built on them send it.
        extra_body={"temperature": 0.5},
    )
    assert _text(message) == "from Claude" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 2)
    sent = c.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == SECRET and "anthropic-version" in sent.headers
    body = sent.json()
    assert (body["model"], body["max_tokens"], body["messages"]) == (CLAUDE, 50, HI)
    assert body["system"] == "Be brief." and body["temperature"] == 0.5


def test_a_streamed_message_is_read_by_the_sdk(gateway, setup):
    c, _, token = setup
    with client(gateway, token).messages.stream(
        model="default", max_tokens=50, messages=HI
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 3 and "".join(pieces) == "from Claude"
    assert _text(final) == "from Claude" and final.usage.output_tokens == 2
    assert c.last.json()["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_tools_with_anthropic(gateway, setup, stream):
    c, _, token = setup
    c.tool_call("lookup", {"q": "x"})
    message = _ask_with_tool(client(gateway, token), "default", stream)
    use = message.content[0]
    assert (use.type, use.name, use.input) == ("tool_use", "lookup", {"q": "x"})
    assert message.stop_reason == "tool_use"
    assert c.last.json()["tools"][0]["name"] == "lookup"


def _ask_with_tool(c: anthropic.Anthropic, model: str, stream: bool):
    kwargs = {"model": model, "max_tokens": 50, "messages": HI, "tools": [TOOL]}
    if not stream:
        return c.messages.create(**kwargs)
    with c.messages.stream(**kwargs) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True])
def test_any_other_provider_answers_in_anthropics_format(gateway, setup, stream):
    _, a, token = setup
    c = client(gateway, token)
    if stream:
        with c.messages.stream(model="pa/gpt-4o-mini", max_tokens=50, messages=HI) as events:
            message = events.get_final_message()
    else:
        message = c.messages.create(model="pa/gpt-4o-mini", max_tokens=50, messages=HI)
    assert _text(message) == "from A"
    # Chat completions: what every OpenAI-like provider speaks.
    assert a.last.path == "/v1/chat/completions"
    assert a.last.headers["authorization"] == f"Bearer {SECRET}"
    assert a.last.json()["model"] == "gpt-4o-mini"
    assert a.last.json()["messages"] == HI


@pytest.mark.parametrize("stream", [False, True])
def test_an_openai_compatible_endpoint_gets_chat_completions(
    gateway, setup, upstream_factory, make_provider, stream
):
    _, _, token = setup
    local = upstream_factory("local")
    local.reply_text = "from the local server"
    make_provider(name="box", kind="openai_compatible", base_url=local.base_url + "/v1")
    c = client(gateway, token)
    if stream:
        with c.messages.stream(model="box/m", max_tokens=50, messages=HI) as events:
            message = events.get_final_message()
    else:
        message = c.messages.create(model="box/m", max_tokens=50, messages=HI)
    assert _text(message) == "from the local server"
    assert [r.path for r in local.requests] == ["/v1/chat/completions"]


@pytest.mark.parametrize("stream", [False, True])
def test_tools_with_another_provider(gateway, setup, stream):
    _, a, token = setup
    a.tool_call("lookup", {"q": "x"})
    message = _ask_with_tool(client(gateway, token), "pa/gpt-4o-mini", stream)
    use = next(block for block in message.content if block.type == "tool_use")
    assert (use.name, use.input) == ("lookup", {"q": "x"})
    sent = a.last.json()["tools"][0]
    assert (sent["type"], sent["function"]["name"]) == ("function", "lookup")
    assert sent["function"]["parameters"] == TOOL["input_schema"]


def test_groups_fall_back(gateway, setup):
    c, a, token = setup
    services.group_save(name="backup", deployments=[D("pa", "gpt-4o-mini")])
    services.group_save(name="main", deployments=[D("pc", CLAUDE)], fallbacks=["backup"])
    c.fail_next(500, times=10)
    message = client(gateway, token).messages.create(model="main", max_tokens=50, messages=HI)
    assert _text(message) == "from A"
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.requested_model, row.provider, row.model, row.fallbacks) == (
        "main", "pa", "gpt-4o-mini", 1
    )  # fmt: skip


def test_a_stream_through_a_group_is_logged_with_the_deployment_that_answered(gateway, setup):
    c, a, token = setup
    services.group_save(name="backup", deployments=[D("pa", "gpt-4o-mini")])
    services.group_save(name="main", deployments=[D("pc", CLAUDE)], fallbacks=["backup"])
    with client(gateway, token).messages.stream(model="main", max_tokens=50, messages=HI) as s:
        assert _text(s.get_final_message()) == "from Claude"
    c.fail_next(500, times=10)
    with client(gateway, token).messages.stream(model="main", max_tokens=50, messages=HI) as s:
        assert _text(s.get_final_message()) == "from A"
    request_log.flush()
    rows = RequestLog.objects.order_by("id").values_list("provider", "model", "fallbacks", "stream")
    assert list(rows) == [("pc", CLAUDE, 0, True), ("pa", "gpt-4o-mini", 1, True)]


def test_each_call_is_logged_with_its_token_and_usage(gateway, setup):
    _, _, token = setup
    c = client(gateway, token)
    c.messages.create(model="default", max_tokens=50, messages=HI)
    with c.messages.stream(model="default", max_tokens=50, messages=HI) as stream:
        stream.get_final_message()
    request_log.flush()
    plain, streamed = RequestLog.objects.order_by("id")
    for row in (plain, streamed):
        assert (row.token_name, row.provider, row.model, row.ok) == ("app", "pc", CLAUDE, True)
        assert (row.prompt_tokens, row.completion_tokens) == (7, 2)
    assert (plain.stream, streamed.stream) == (False, True)


def test_tokens_per_minute_count_plain_and_streamed_answers(gateway, setup):
    per_call = 7 + 2
    _, raw = token_create(name="ci", tpm=2 * per_call + 1, actor="test")
    c = client(gateway, raw)
    answer = c.messages.with_raw_response.create(model="default", max_tokens=50, messages=HI)
    assert answer.headers["x-ratelimit-remaining-tokens"] == str(per_call + 1)
    with c.messages.stream(model="default", max_tokens=50, messages=HI) as stream:
        stream.get_final_message()
    answer = c.messages.with_raw_response.create(model="default", max_tokens=50, messages=HI)
    assert answer.headers["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(anthropic.RateLimitError) as refused:
        c.messages.create(model="default", max_tokens=50, messages=HI)
    assert refused.value.body["error"]["type"] == "rate_limit_error"


def test_a_token_may_use_only_its_models(gateway, setup):
    c, _, _ = setup
    _, limited = token_create(name="limited", allowed_models=["pa/gpt-4o-mini"])
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        client(gateway, limited).messages.create(model="default", max_tokens=50, messages=HI)
    assert refused.value.body["type"] == "error"
    assert refused.value.body["error"]["type"] == "permission_error"
    assert c.requests == []


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_the_token_is_taken_from_either_header(gateway, setup, header):
    _, _, token = setup
    value = token if header == "x-api-key" else f"Bearer {token}"
    answer = httpx.post(
        gateway + "/v1/messages",
        json={"model": "default", "max_tokens": 50, "messages": HI},
        headers={header: value},
    )
    assert answer.status_code == 200 and answer.json()["type"] == "message"


def test_errors_are_anthropic_shaped(gateway, setup):
    c, _, token = setup
    unauthorized = httpx.post(gateway + "/v1/messages", json={"messages": HI})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["type"] == "authentication_error"
    sdk = client(gateway, token)
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(model="nope/model", max_tokens=50, messages=HI)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        sdk.messages.create(
            model="default", max_tokens=50, messages=HI, extra_body={"api_base": "http://x"}
        )
    assert "api_base" in bad.value.body["error"]["message"]
    c.fail_next(500, times=5)
    with pytest.raises(anthropic.InternalServerError) as failed:
        sdk.messages.create(model="default", max_tokens=50, messages=HI)
    assert failed.value.body["type"] == "error"
    assert "pc" in failed.value.body["error"]["message"]
    assert "sk-test" not in str(failed.value.body)


def test_the_list_is_the_anthropic_packages_own():
    keys = set()
    for params in (message_create_params, beta_message_create_params):
        keys |= set(typing.get_type_hints(params.MessageCreateParamsBase))
        keys |= set(typing.get_type_hints(params.MessageCreateParamsStreaming))
    older = {"temperature", "top_k", "top_p"}
    assert keys - MESSAGES_READ - {"betas", "fallbacks"} == MESSAGES_PARAMETERS - older
    assert not MESSAGES_PARAMETERS & ROUTING_PARAMETERS


def test_a_stream_whose_provider_fails_is_an_anthropic_error(gateway, setup):
    c, _, token = setup
    c.fail_next(529, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    with (
        pytest.raises(anthropic.APIStatusError) as failed,
        client(gateway, token).messages.stream(model="pc/" + CLAUDE, max_tokens=50, messages=HI),
    ):
        pass
    assert failed.value.body["type"] == "error" and "pc" in failed.value.body["error"]["message"]
