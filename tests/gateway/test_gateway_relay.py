"""The relay (providers/services/relay.py): a call to one provider of a kind that speaks
OpenAI's wire format goes out without LiteLLM, as the caller sent it (the model rewritten,
the provider's key and headers added), and the caller gets what LiteLLM's path gives."""

import os
import subprocess
import sys

import httpx
import openai
import pydantic
import pytest

from gateway.services import token_create
from providers import services
from providers.models import Provider
from providers.services import DeploymentSpec as D
from tests.conftest import SECRET, shared_database_url
from tests.gateway import test_gateway
from tests.gateway.test_gateway import HI, client
from usage import request_log
from usage.models import RequestLog

gateway = test_gateway.gateway
setup = test_gateway.setup

pytestmark = pytest.mark.django_db(transaction=True)


def _relayed(request) -> bool:
    # LiteLLM calls through the OpenAI SDK ("AsyncOpenAI/Python") or its own client
    # ("litellm/<version>"); the relay through httpx.
    return request.headers["user-agent"].startswith("python-httpx/")


def test_a_chat_call_is_relayed_as_the_caller_sent_it(gateway, upstream, make_provider):
    provider = make_provider(
        name="acme", base_url=upstream.base_url + "/v1", headers={"X-Team": "search"}
    )
    services.default_model_set(provider=provider, model="gpt-4o-mini")
    _, token = token_create(name="app", actor="test")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    answer = client(gateway, token).chat.completions.create(
        model="acme/gpt-4o-mini", messages=HI, temperature=0.25, seed=3, tools=tools
    )
    assert answer.choices[0].message.content == "Hello from upstream"
    sent = upstream.last
    assert _relayed(sent)
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers["x-team"] == "search"
    assert sent.json() == {
        "model": "gpt-4o-mini", "messages": HI, "temperature": 0.25, "seed": 3, "tools": tools,
    }  # fmt: skip
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.provider, row.model, row.status, row.prompt_tokens, row.completion_tokens) == (
        "acme", "gpt-4o-mini", 200, 7, 3,
    )  # fmt: skip


def test_openrouter_gets_its_app_headers_and_usage_accounting(gateway, upstream, make_provider):
    make_provider(name="or", kind="openrouter", base_url=upstream.base_url + "/api/v1")
    _, token = token_create(name="app", actor="test")
    client(gateway, token).chat.completions.create(model="or/openai/gpt-4o-mini", messages=HI)
    sent = upstream.last
    assert _relayed(sent) and sent.path == "/api/v1/chat/completions"
    assert sent.headers["x-title"] == "Routing Admin"
    assert sent.json()["usage"] == {"include": True}
    assert sent.json()["model"] == "openai/gpt-4o-mini"


def test_a_parameter_litellm_changes_for_the_kind_goes_through_litellm(
    gateway, upstream, make_provider
):
    # LiteLLM sends Groq `max_completion_tokens` as `max_tokens`: the caller gets that.
    make_provider(name="g", kind="groq", base_url=upstream.base_url + "/openai/v1")
    _, token = token_create(name="app", actor="test")
    c = client(gateway, token)
    c.chat.completions.create(model="g/llama", messages=HI, max_tokens=5)
    assert _relayed(upstream.last) and upstream.last.json()["max_tokens"] == 5
    c.chat.completions.create(model="g/llama", messages=HI, max_completion_tokens=5)
    assert not _relayed(upstream.last) and upstream.last.json()["max_tokens"] == 5


def test_groups_and_untranslated_kinds_keep_litellm(gateway, upstream, make_provider):
    make_provider(name="acme", base_url=upstream.base_url + "/v1")
    services.group_save(name="fast", deployments=[D("acme", "m")])
    _, token = token_create(name="app", actor="test")
    client(gateway, token).chat.completions.create(model="fast", messages=HI)
    assert not _relayed(upstream.last)


def test_relay_off_sends_everything_through_litellm(gateway, upstream, make_provider, settings):
    settings.ROUTING_GATEWAY_RELAY = False
    make_provider(name="acme", base_url=upstream.base_url + "/v1")
    _, token = token_create(name="app", actor="test")
    client(gateway, token).chat.completions.create(model="acme/m", messages=HI)
    assert not _relayed(upstream.last)


def _fields(answer, top: bool = True):
    """An SDK object's typed fields (but its ID and time): what the SDK declares, not extras
    it keeps of an answer (LiteLLM adds `provider_specific_fields`, `citations`, a delta's
    `audio`: not OpenAI's, and the relay hands over the provider's answer as it is)."""
    if isinstance(answer, pydantic.BaseModel):
        names = [n for n in type(answer).model_fields if not top or n not in ("id", "created")]
        return {name: _fields(getattr(answer, name), False) for name in names}
    if isinstance(answer, list):
        return [_fields(item, False) for item in answer]
    return answer


def _seen(gateway, token, upstream) -> dict:
    """What a caller sees of a plain call, a stream, and an upstream refusal."""
    c = client(gateway, token)
    plain = c.chat.completions.create(model="acme/m", messages=HI)
    chunks = list(c.chat.completions.create(model="acme/m", messages=HI, stream=True))
    usage = list(
        c.chat.completions.create(
            model="acme/m", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    upstream.fail_next(400, {"error": {"message": "bad things", "type": "invalid"}})
    refused = httpx.post(
        gateway + "/v1/chat/completions",
        json={"model": "acme/m", "messages": HI},
        headers={"Authorization": f"Bearer {token}"},
    )
    return {
        "plain": _fields(plain),
        "chunks": [_fields(ch) for ch in chunks],
        "usage": [_fields(ch) for ch in usage],
        "refused": (refused.status_code, refused.json()),
    }


def test_both_paths_give_the_caller_the_same(gateway, upstream, make_provider, settings):
    """The official SDK's objects, plain and streamed, and an upstream error's body."""
    make_provider(name="acme", base_url=upstream.base_url + "/v1")
    _, token = token_create(name="app", actor="test")
    relayed = _seen(gateway, token, upstream)
    assert _relayed(upstream.requests[0])
    settings.ROUTING_GATEWAY_RELAY = False
    upstream.reset()
    through_litellm = _seen(gateway, token, upstream)
    assert not _relayed(upstream.requests[0])
    # LiteLLM makes up `completion_tokens_details` (reasoning_tokens 0) for a stream's usage
    # that has none; the relay passes the provider's usage as it came.
    through_litellm["usage"][-1]["usage"]["completion_tokens_details"] = None
    for part in relayed:
        assert relayed[part] == through_litellm[part], part
    assert relayed["refused"][1]["error"]["message"] == (
        "Provider 'acme' (OpenAI) failed with HTTP 400: litellm.BadRequestError: "
        "OpenAIException - bad things"
    )


def test_retries_follow_the_providers_max_retries(gateway, upstream, make_provider):
    make_provider(name="acme", base_url=upstream.base_url + "/v1", max_retries=2)
    _, token = token_create(name="app", actor="test")
    upstream.fail_next(429, headers={"Retry-After": "0"}, times=2)
    answer = client(gateway, token).chat.completions.create(model="acme/m", messages=HI)
    assert answer.choices[0].message.content == "Hello from upstream"
    assert len(upstream.requests) == 3 and _relayed(upstream.last)
    services.provider_update(provider=Provider.objects.get(name="acme"), max_retries=0)
    upstream.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        client(gateway, token).chat.completions.create(model="acme/m", messages=HI)
    assert len(upstream.requests) == 4


def test_embeddings_and_legacy_completions_are_relayed(gateway, upstream, make_provider):
    make_provider(name="v", kind="vllm", base_url=upstream.base_url + "/v1", api_key="")
    _, token = token_create(name="app", actor="test")
    c = client(gateway, token)
    vectors = c.embeddings.create(model="v/e5", input=["a", "b"])  # the SDK asks base64
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0
    assert _relayed(upstream.last) and upstream.last.path == "/v1/embeddings"
    assert upstream.last.headers["authorization"] == "Bearer EMPTY"  # vLLM's placeholder
    assert "encoding_format" not in upstream.last.json()
    text = c.completions.create(model="v/instruct", prompt="Hi", max_tokens=5)
    assert text.choices[0].text and upstream.last.path == "/v1/completions"
    assert _relayed(upstream.last) and upstream.last.json()["prompt"] == "Hi"


def test_a_relayed_call_imports_no_litellm(upstream, make_provider, tmp_path):
    """In a process of its own: the call, and its log record, leave LiteLLM unimported (the
    request log's writer loads LiteLLM's price map later, off the call path)."""
    provider = make_provider(name="acme", base_url=upstream.base_url + "/v1")
    services.default_model_set(provider=provider, model="m")
    script = (
        "import asyncio, sys, django; django.setup()\n"
        "from providers import services\n"
        "answer = asyncio.run(services.acompletion([{'role': 'user', 'content': 'hi'}],"
        " relayable=True))\n"
        "print(answer.data['choices'][0]['message']['content'], 'litellm' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "ROUTING_REQUEST_LOG_INTERVAL_SECONDS": "3600",
    }
    ran = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.split("\n")[-2] == "Hello from upstream False"
    assert _relayed(upstream.last)
    assert upstream.last.json()["model"] == "m"
