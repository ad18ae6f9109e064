"""No parameter is silently dropped: every parameter of OpenAI's chat completions request
reaches the provider, routing choices and unknown ones are refused with 400 naming them, and
a parameter the provider does not support is refused naming it and the provider, unless an
admin ticked "Drop parameters this provider does not support"."""

import typing

import openai
import pytest
from openai.types.chat import completion_create_params

from gateway.chat_params import (
    CHAT,
    CHAT_PARAMETERS,
    COMPLETIONS,
    EMBEDDINGS,
    PARAMETER_REFUSED,
    READ_BY_GATEWAY,
    ROUTING_PARAMETERS,
)
from providers import services
from providers.models import Provider
from providers.services import DeploymentSpec as D
from providers.services.calls import PARAMETER_UNSUPPORTED, PARAMETER_UNSUPPORTED_IN_GROUP
from tests.gateway import test_gateway
from tests.gateway.test_gateway import client

# The in-process uvicorn gateway and its providers, from tests/gateway/test_gateway.py.
gateway = test_gateway.gateway
setup = test_gateway.setup

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
FUNCTION = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}

# What the gateway used to drop (issue 11), and the parameters newer than its old list.
DROPPED_BEFORE = {
    "functions": [FUNCTION],
    "function_call": {"name": "lookup"},
    "service_tier": "flex",
    "store": True,
    "prediction": {"type": "content", "content": "Hello"},
    "audio": {"voice": "alloy", "format": "wav"},
    "modalities": ["text", "audio"],
    "web_search_options": {"search_context_size": "low"},
    "verbosity": "low",
    "prompt_cache_key": "cache-7",
    "safety_identifier": "user-42",
    "moderation": {"policy": {"input": {"mode": "score"}}},
    "prompt_cache_options": {"mode": "explicit", "ttl": "30m"},
    "prompt_cache_retention": "24h",
    "metadata": {"team": "search"},
}
# LiteLLM knows verbosity for the models that have it (GPT-5), and refuses it elsewhere.
MODEL_FOR = {"verbosity": "pa/gpt-5-mini"}


def test_the_list_is_the_openai_packages_own():
    keys = set(typing.get_type_hints(completion_create_params.CompletionCreateParamsBase))
    keys |= set(typing.get_type_hints(completion_create_params.CompletionCreateParamsStreaming))
    assert keys - READ_BY_GATEWAY == CHAT_PARAMETERS
    assert not CHAT_PARAMETERS & ROUTING_PARAMETERS


def test_the_embeddings_and_completions_lists_are_the_openai_packages_own():
    from openai.types import completion_create_params as text
    from openai.types import embedding_create_params

    keys = set(typing.get_type_hints(embedding_create_params.EmbeddingCreateParams))
    assert keys - EMBEDDINGS.read == EMBEDDINGS.accepted
    keys = set(typing.get_type_hints(text.CompletionCreateParamsBase))
    keys |= set(typing.get_type_hints(text.CompletionCreateParamsStreaming))
    assert keys - COMPLETIONS.read == COMPLETIONS.accepted
    assert not (EMBEDDINGS.accepted | COMPLETIONS.accepted) & ROUTING_PARAMETERS


@pytest.mark.parametrize("param", sorted(DROPPED_BEFORE))
def test_each_previously_dropped_parameter_reaches_the_provider(gateway, setup, param):
    a, _, token = setup
    extra = {"functions": [FUNCTION]} if param == "function_call" else {}
    client(gateway, token).chat.completions.create(
        model=MODEL_FOR.get(param, "default"),
        messages=HI,
        **extra,
        **{param: DROPPED_BEFORE[param]},
    )
    assert a.last.json()[param] == DROPPED_BEFORE[param]


def test_every_parameter_at_once_through_a_group_streamed(gateway, setup):
    _, b, token = setup
    services.group_save(name="fast", deployments=[D("pb", "gpt-4o-mini")])
    sent = {k: v for k, v in DROPPED_BEFORE.items() if k not in MODEL_FOR}
    stream = client(gateway, token).chat.completions.create(
        model="fast", messages=HI, stream=True, **sent
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "from B"
    received = b.last.json()
    assert {name: received.get(name) for name in sent} == sent


def _post(gateway, token, body):
    import httpx

    return httpx.post(
        gateway + "/v1/chat/completions",
        json={"model": "default", "messages": HI, **body},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.mark.parametrize(
    "name",
    [
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "custom_llm_provider",
        "headers",
        "extra_headers",
        "extra_body",
        "organization",
        "timeout",
    ],
)
def test_a_parameter_choosing_where_the_call_goes_is_refused_naming_it(gateway, setup, name):
    a, _, token = setup
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway, token).chat.completions.create(
            model="default", messages=HI, extra_body={name: "http://127.0.0.1:9/v1"}
        )
    assert info.value.body["param"] == name
    assert info.value.body["message"] == PARAMETER_REFUSED.format(name=name)
    assert a.requests == []


def test_an_unknown_parameter_is_refused_naming_it(gateway, setup):
    a, _, token = setup
    answer = _post(gateway, token, {"top_k": 5, "temperature": 0})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["message"], error["param"], error["code"]) == (
        CHAT.unknown("top_k"), "top_k", "invalid_parameter"
    )  # fmt: skip
    assert a.requests == []


@pytest.fixture
def anthropic(upstream_factory, make_provider, setup):
    server = upstream_factory("claude")
    make_provider(name="claude", kind="anthropic", base_url=server.base_url)
    return server


def test_a_parameter_the_provider_does_not_support_is_refused_naming_both(
    gateway, setup, anthropic
):
    _, _, token = setup
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway, token).chat.completions.create(
            model="claude/claude-sonnet-4-5", messages=HI, n=2
        )
    params = "the parameter 'n'"
    expected = PARAMETER_UNSUPPORTED.format(provider="claude", kind="Anthropic", params=params)
    assert info.value.body["message"] == expected
    assert (info.value.body["code"], info.value.body["param"]) == ("unsupported_parameter", "n")
    assert "drop_params" not in info.value.body["message"]
    assert anthropic.requests == []


def test_drop_params_on_the_provider_leaves_unsupported_ones_out(gateway, setup, anthropic):
    _, _, token = setup
    services.provider_update(provider=Provider.objects.get(name="claude"), drop_params=True)
    answer = client(gateway, token).chat.completions.create(
        model="claude/claude-sonnet-4-5", messages=HI, n=2, temperature=0.5
    )
    assert answer.choices[0].message.content == "Hello from claude"
    assert "n" not in anthropic.last.json() and anthropic.last.json()["temperature"] == 0.5


def test_drop_params_on_a_group_leaves_unsupported_ones_out(gateway, setup, anthropic):
    _, _, token = setup
    services.group_save(name="strict", deployments=[D("claude", "claude-sonnet-4-5")])
    services.group_save(
        name="lenient", deployments=[D("claude", "claude-sonnet-4-5")], drop_params=True
    )
    c = client(gateway, token)
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="strict", messages=HI, n=2)
    params = "the parameter 'n'"
    expected = PARAMETER_UNSUPPORTED_IN_GROUP.format(
        provider="claude", kind="Anthropic", group="strict", params=params
    )
    assert (info.value.body["message"], info.value.body["param"]) == (expected, "n")
    assert anthropic.requests == []
    answer = c.chat.completions.create(model="lenient", messages=HI, n=2)
    assert answer.choices[0].message.content == "Hello from claude"
    assert "n" not in anthropic.last.json()


def test_parameters_sent_in_the_body_are_refused_where_the_kind_cannot_send_them(
    gateway, setup, anthropic
):
    # LiteLLM has no argument for these and sends them in the body; its Anthropic adapter
    # would send a literal "extra_body" key instead.
    _, _, token = setup
    c = client(gateway, token)
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(
            model="claude/claude-sonnet-4-5", messages=HI, metadata={"team": "search"}
        )
    expected = PARAMETER_UNSUPPORTED.format(
        provider="claude", kind="Anthropic", params="the parameter 'metadata'"
    )
    assert (info.value.body["message"], info.value.body["param"]) == (expected, "metadata")
    assert anthropic.requests == []
    services.provider_update(provider=Provider.objects.get(name="claude"), drop_params=True)
    c.chat.completions.create(
        model="claude/claude-sonnet-4-5", messages=HI, metadata={"team": "search"}
    )
    assert not {"metadata", "extra_body"} & set(anthropic.last.json())
