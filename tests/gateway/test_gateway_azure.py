"""Azure OpenAI's paths through a real server with the official `AzureOpenAI` SDK: the gateway
as `azure_endpoint`, a gateway token as `api_key` (sent as `api-key`), and a deployment name
meaning `default`, a routing group or `provider/model`."""

import httpx
import openai
import pytest

from gateway.services import token_create
from providers import services
from providers.services import DeploymentSpec as D
from tests.conftest import SECRET
from tests.gateway import test_gateway
from tests.upstream_embeddings import vector_for
from usage import request_log
from usage.models import RequestLog

gateway = test_gateway.gateway
setup = test_gateway.setup

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
API_VERSION = "2024-10-21"


def azure(gateway, token, **kwargs):
    return openai.AzureOpenAI(
        azure_endpoint=gateway,
        api_key=token,
        api_version=API_VERSION,
        max_retries=0,
        timeout=30,
        **kwargs,
    )


def test_chat_with_a_deployment_meaning_default_group_or_provider_model(gateway, setup):
    a, b, token = setup
    c = azure(gateway, token)
    answer = c.chat.completions.create(model="default", messages=HI)
    assert answer.choices[0].message.content == "from A"
    assert a.last.path == "/v1/chat/completions" and a.last.json()["model"] == "gpt-4o-mini"
    answer = c.chat.completions.create(model="pb/gpt-4o", messages=HI)
    assert answer.choices[0].message.content == "from B"
    assert b.last.json()["model"] == "gpt-4o"
    services.group_save(name="fast", deployments=[D("pb", "small")])
    assert c.chat.completions.create(model="fast", messages=HI).choices[0].message.content
    assert b.last.json()["model"] == "small"
    # A client bound to one deployment, as many Azure apps are.
    bound = azure(gateway, token, azure_deployment="fast")
    assert bound.chat.completions.create(model="ignored", messages=HI).choices[0].message.content
    request_log.flush()
    rows = list(RequestLog.objects.order_by("id").values_list("token_name", "requested_model"))
    assert rows == [("app", "default"), ("app", "pb/gpt-4o"), ("app", "fast"), ("app", "fast")]


def test_streamed_chat(gateway, setup):
    _, _, token = setup
    stream = azure(gateway, token).chat.completions.create(
        model="default", messages=HI, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "from A"


def test_embeddings_and_completions(gateway, setup):
    a, _, token = setup
    c = azure(gateway, token)
    answer = c.embeddings.create(model="pa/text-embedding-3-small", input=["x y", "z"])
    assert [d.embedding for d in answer.data] == [vector_for("x y"), vector_for("z")]
    assert a.last.path == "/v1/embeddings"
    assert c.completions.create(model="pa/gpt-3.5-turbo-instruct", prompt="x").choices[0].text
    assert a.last.path == "/v1/completions"


def test_to_an_azure_provider_too(gateway, setup, upstream_factory, make_provider):
    _, _, token = setup
    server = upstream_factory("azure")
    make_provider(name="az", kind="azure", base_url=server.base_url, api_version="2024-06-01")
    c = azure(gateway, token)
    assert c.chat.completions.create(model="az/gpt4o-prod", messages=HI).choices[0].message
    sent = server.last
    assert sent.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert sent.query["api-version"] == ["2024-06-01"] and sent.headers["api-key"] == SECRET
    answer = c.embeddings.create(model="az/embed-prod", input="q")
    assert answer.data[0].embedding == vector_for("q")
    assert server.last.path == "/openai/deployments/embed-prod/embeddings"


def test_tokens_and_paths_are_checked(gateway, setup):
    a, _, _ = setup
    _, limited = token_create(name="limited", allowed_models=["pb/small"])
    with pytest.raises(openai.PermissionDeniedError):
        azure(gateway, limited).chat.completions.create(model="default", messages=HI)
    with pytest.raises(openai.AuthenticationError):
        azure(gateway, "ra-not-a-token").chat.completions.create(model="default", messages=HI)
    # The header the SDK sends the key in, and nothing else.
    answer = httpx.post(
        gateway + f"/openai/deployments/pb/small/chat/completions?api-version={API_VERSION}",
        headers={"api-key": limited},
        json={"messages": HI},
    )
    assert answer.status_code == 200, answer.text
    answer = httpx.post(
        gateway + f"/openai/deployments/default/audio/speech?api-version={API_VERSION}",
        headers={"api-key": limited},
        json={},
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_url"
    assert a.requests == []
