"""POST /v1/responses, driven by the official `openai` package (and LangChain's ChatOpenAI
with use_responses_api=True) through the real gateway, against the recording upstream:
OpenAI's Responses API where the provider has it, chat completions where it has not
(LiteLLM bridges it), plain, streamed and with tools; tokens, limits, request log and
routing as for chat completions."""

from __future__ import annotations

import typing

import openai
import pytest
from openai.types.responses import response_create_params

from gateway.api_params import RESPONSES_PARAMETERS, RESPONSES_READ
from gateway.chat_params import ROUTING_PARAMETERS
from gateway.services import token_create
from providers import services
from providers.services import DeploymentSpec as D
from tests.conftest import SECRET
from tests.gateway import test_gateway
from tests.gateway.test_gateway import client
from usage import request_log
from usage.models import RequestLog

gateway = test_gateway.gateway
setup = test_gateway.setup

pytestmark = pytest.mark.django_db(transaction=True)
TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
}


def _streamed_text(events) -> tuple[str, list[str]]:
    events = list(events)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    return text, [e.type for e in events]


def test_a_plain_response_from_openais_responses_api(gateway, setup):
    a, _, token = setup
    response = client(gateway, token).responses.create(model="default", input="hi")
    assert response.output_text == "from A"
    assert response.usage.input_tokens == 7 and response.usage.output_tokens == 2
    sent = a.last
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.json()["model"] == "gpt-4o-mini" and sent.json()["input"] == "hi"


def test_parameters_reach_the_provider(gateway, setup):
    a, _, token = setup
    client(gateway, token).responses.create(
        model="default",
        input=[{"role": "user", "content": "hi"}],
        instructions="Be brief.",
        max_output_tokens=50,
        temperature=0.2,
    )
    sent = a.last.json()
    assert sent["instructions"] == "Be brief." and sent["max_output_tokens"] == 50
    assert sent["temperature"] == 0.2
    assert sent["input"] == [{"role": "user", "content": "hi"}]


def test_a_streamed_response_is_read_by_the_sdk(gateway, setup):
    a, _, token = setup
    stream = client(gateway, token).responses.create(model="default", input="hi", stream=True)
    text, types = _streamed_text(stream)
    assert text == "from A"
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert a.last.json()["stream"] is True
    with client(gateway, token).responses.stream(model="default", input="hi") as events:
        final = events.get_final_response()
    assert final.output_text == "from A"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 2)


@pytest.mark.parametrize("stream", [False, True])
def test_tools(gateway, setup, stream):
    a, _, token = setup
    a.tool_call("lookup", {"q": "x"})
    c = client(gateway, token)
    if stream:
        with c.responses.stream(model="default", input="look x up", tools=[TOOL]) as events:
            response = events.get_final_response()
    else:
        response = c.responses.create(model="default", input="look x up", tools=[TOOL])
    call = response.output[0]
    assert (call.type, call.name, call.arguments) == ("function_call", "lookup", '{"q": "x"}')
    assert a.last.json()["tools"][0]["name"] == "lookup"


@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_without_the_responses_api_gets_chat_completions(
    gateway, setup, upstream_factory, make_provider, stream
):
    _, _, token = setup
    local = upstream_factory("local")
    local.reply_text = "from the local server"
    make_provider(name="box", kind="openai_compatible", base_url=local.base_url + "/v1")
    c = client(gateway, token)
    if stream:
        text, _ = _streamed_text(c.responses.create(model="box/m", input="hi", stream=True))
    else:
        text = c.responses.create(model="box/m", input="hi").output_text
    assert text == "from the local server"
    assert local.last.path == "/v1/chat/completions"
    assert local.last.json()["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_provider_answers_a_responses_call(
    gateway, setup, upstream_factory, make_provider, stream
):
    _, _, token = setup
    claude = upstream_factory("claude")
    claude.reply_text = "from Claude"
    make_provider(name="pc", kind="anthropic", base_url=claude.base_url)
    c = client(gateway, token)
    model = "pc/claude-sonnet-4-5"
    if stream:
        text, _ = _streamed_text(c.responses.create(model=model, input="hi", stream=True))
    else:
        text = c.responses.create(model=model, input="hi").output_text
    assert text == "from Claude"
    assert claude.last.path == "/v1/messages"
    assert claude.last.headers["x-api-key"] == SECRET
    assert claude.last.json()["model"] == "claude-sonnet-4-5"


def test_groups_fall_back_and_provider_model_addresses_one(gateway, setup):
    a, b, token = setup
    services.group_save(name="backup", deployments=[D("pb", "small")])
    services.group_save(name="main", deployments=[D("pa", "gpt-4o-mini")], fallbacks=["backup"])
    c = client(gateway, token)
    a.fail_next(500, times=10)
    assert c.responses.create(model="main", input="hi").output_text == "from B"
    assert b.last.path == "/v1/responses" and b.last.json()["model"] == "small"
    assert c.responses.create(model="pb/big", input="hi").output_text == "from B"
    assert b.last.json()["model"] == "big"
    request_log.flush()
    fell_back = RequestLog.objects.order_by("id").first()
    assert (fell_back.requested_model, fell_back.provider, fell_back.model) == (
        "main", "pb", "small"
    )  # fmt: skip
    assert fell_back.fallbacks == 1


def test_a_stream_through_a_group_is_logged_with_the_deployment_that_answered(gateway, setup):
    a, b, token = setup
    services.group_save(name="backup", deployments=[D("pb", "small")])
    services.group_save(name="main", deployments=[D("pa", "gpt-4o-mini")], fallbacks=["backup"])
    a.fail_next(500, times=10)
    text, _ = _streamed_text(
        client(gateway, token).responses.create(model="main", input="hi", stream=True)
    )
    assert text == "from B"
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.provider, row.model, row.fallbacks, row.stream) == ("pb", "small", 1, True)
    assert (row.prompt_tokens, row.completion_tokens) == (7, 2)


def test_a_token_may_use_only_its_models(gateway, setup):
    a, _, _ = setup
    _, limited = token_create(name="limited", allowed_models=["pb/small"])
    c = client(gateway, limited)
    assert c.responses.create(model="pb/small", input="hi").output_text == "from B"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        c.responses.create(model="default", input="hi")
    assert refused.value.body["code"] == "model_not_allowed"
    assert a.requests == []


def test_each_call_is_logged_with_its_token_and_usage(gateway, setup):
    _, _, token = setup
    c = client(gateway, token)
    c.responses.create(model="default", input="hi")
    list(c.responses.create(model="default", input="hi", stream=True))
    request_log.flush()
    plain, streamed = RequestLog.objects.order_by("id")
    for row in (plain, streamed):
        assert (row.token_name, row.provider, row.model, row.ok) == (
            "app", "pa", "gpt-4o-mini", True
        )  # fmt: skip
        assert (row.prompt_tokens, row.completion_tokens) == (7, 2)
    assert (plain.stream, streamed.stream) == (False, True)


def test_tokens_per_minute_count_plain_and_streamed_answers(gateway, setup):
    _, _, _ = setup
    per_call = 7 + 2  # the recording upstream's usage for "from A"
    _, raw = token_create(name="ci", tpm=2 * per_call + 1, actor="test")
    c = client(gateway, raw)
    answer = c.responses.with_raw_response.create(model="default", input="hi")
    assert answer.headers["x-ratelimit-remaining-tokens"] == str(per_call + 1)
    list(c.responses.create(model="default", input="hi", stream=True))
    answer = c.responses.with_raw_response.create(model="default", input="hi")
    assert answer.headers["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(openai.RateLimitError):
        c.responses.create(model="default", input="hi")


def test_errors_are_openai_shaped(gateway, setup):
    a, _, token = setup
    c = client(gateway, token)
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="nope/model", input="hi")
    with pytest.raises(openai.BadRequestError) as bad:
        c.responses.create(model="default", input="hi", extra_body={"api_base": "http://x"})
    assert bad.value.body["param"] == "api_base"
    with pytest.raises(openai.BadRequestError) as bad:
        c.responses.create(model="default", input=[])
    assert bad.value.body["code"] == "invalid_input"
    a.fail_next(500, times=5)
    with pytest.raises(openai.InternalServerError) as failed:
        c.responses.create(model="default", input="hi")
    assert "pa" in failed.value.message and "sk-test" not in failed.value.message


def test_langchain_chat_openai_with_the_responses_api(gateway, setup):
    from langchain_openai import ChatOpenAI

    a, _, token = setup
    llm = ChatOpenAI(
        model="default",
        base_url=gateway + "/v1",
        api_key=token,
        use_responses_api=True,
        max_retries=0,
        timeout=30,
    )
    assert llm.invoke("hi").text == "from A"
    assert a.last.path == "/v1/responses"
    assert "".join(chunk.text for chunk in llm.stream("hi")) == "from A"


def test_the_list_is_the_openai_packages_own():
    keys = set(typing.get_type_hints(response_create_params.ResponseCreateParamsBase))
    keys |= set(typing.get_type_hints(response_create_params.ResponseCreateParamsStreaming))
    assert keys - RESPONSES_READ == RESPONSES_PARAMETERS
    assert not RESPONSES_PARAMETERS & ROUTING_PARAMETERS


def test_a_stream_whose_provider_fails_is_an_openai_error(gateway, setup):
    a, _, token = setup
    a.fail_next(500, times=5)
    with pytest.raises(openai.InternalServerError) as failed:
        list(client(gateway, token).responses.create(model="default", input="hi", stream=True))
    assert "pa" in failed.value.message and "sk-test" not in failed.value.message
