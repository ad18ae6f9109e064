"""Errors and edges in OpenAI's shape, through a real server and the official `openai`
client: upstream timeouts (504, never retried), rate limits (Retry-After relayed), refused
connections (503), unknown paths (404), wrong methods (405), bodies too large (413) or too
deeply nested (400), and GET /v1/models/{id}."""

import socket

import httpx
import openai
import pytest

from gateway.views.api import BODY_TOO_LARGE, METHOD_NOT_ALLOWED
from providers import services
from providers.models import Provider
from providers.services import DeploymentSpec as D
from providers.services.calls import GROUP_TIMEOUT, UPSTREAM_TIMEOUT
from tests.gateway import test_gateway
from tests.gateway.test_gateway import client

# The in-process uvicorn gateway and its providers, from tests/gateway/test_gateway.py.
gateway = test_gateway.gateway
setup = test_gateway.setup

# Every test twice: relayed without LiteLLM, and through LiteLLM (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]
HI = [{"role": "user", "content": "hi"}]


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_slow_upstream_is_a_504_the_sdk_does_not_retry(gateway, setup):
    a, _, token = setup
    services.provider_update(provider=Provider.objects.get(name="pa"), timeout=0.5)
    a.hang(10)
    # The SDK's defaults: 2 retries on 408, 429 and 5xx.
    sdk = openai.OpenAI(base_url=gateway + "/v1", api_key=token, timeout=30)
    with pytest.raises(openai.APIStatusError) as info:
        sdk.chat.completions.create(model="default", messages=HI)
    assert info.value.status_code == 504
    assert info.value.body["code"] == "upstream_timeout"
    assert info.value.body["message"] == UPSTREAM_TIMEOUT.format(
        provider="pa", kind="OpenAI", limit="0.5 s"
    )
    assert len(a.requests) == 1


def test_a_slow_upstream_streamed_is_a_504_the_sdk_does_not_retry(gateway, setup):
    # SDK users mostly stream: the timeout must be a status, not a 200 with an error event.
    a, _, token = setup
    services.provider_update(provider=Provider.objects.get(name="pa"), timeout=0.5)
    a.hang(10)
    sdk = openai.OpenAI(base_url=gateway + "/v1", api_key=token, timeout=30)
    with pytest.raises(openai.APIStatusError) as info:
        sdk.chat.completions.create(model="default", messages=HI, stream=True)
    assert info.value.status_code == 504
    assert info.value.body["code"] == "upstream_timeout"
    assert len(a.requests) == 1


def test_a_slow_group_names_the_group_and_its_limit(gateway, setup):
    _, b, token = setup
    services.group_save(name="fast", deployments=[D("pb", "m", timeout=0.5)])
    b.hang(10)
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway, token).chat.completions.create(model="fast", messages=HI)
    assert info.value.status_code == 504
    expected = GROUP_TIMEOUT.format(provider="fast", limit="0.5 s")
    assert (info.value.body["code"], info.value.body["message"]) == ("upstream_timeout", expected)


def test_an_upstream_429_relays_retry_after_and_rate_limit_headers(gateway, setup):
    a, _, token = setup
    limits = {
        "Retry-After": "17",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "17s",
        "Set-Cookie": "upstream=1",
    }
    a.fail_next(429, headers=limits)
    answer = httpx.post(
        gateway + "/v1/chat/completions", json={"messages": HI}, headers=_auth(token), timeout=30
    )
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "upstream_rate_limited"
    assert answer.headers["retry-after"] == "17"
    assert answer.headers["x-ratelimit-remaining-requests"] == "0"
    assert answer.headers["x-ratelimit-reset-requests"] == "17s"
    assert "set-cookie" not in answer.headers
    a.fail_next(429, headers=limits)
    with pytest.raises(openai.RateLimitError) as info:
        client(gateway, token).chat.completions.create(model="default", messages=HI)
    assert info.value.response.headers["retry-after"] == "17"
    a.fail_next(429, headers=limits)
    streamed = httpx.post(
        gateway + "/v1/chat/completions",
        json={"messages": HI, "stream": True},
        headers=_auth(token),
        timeout=30,
    )
    assert streamed.status_code == 429 and streamed.headers["retry-after"] == "17"


def test_an_upstream_that_refuses_the_connection_is_a_503(gateway, setup, make_provider):
    _, _, token = setup
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once the socket is closed
    make_provider(name="down", base_url=f"http://127.0.0.1:{closed}/v1")
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway, token).chat.completions.create(model="down/m", messages=HI)
    assert info.value.status_code == 503
    assert info.value.body["code"] == "upstream_unreachable"
    assert "'down'" in info.value.body["message"]


def test_an_upstream_that_cannot_be_resolved_is_a_503(gateway, setup, make_provider, monkeypatch):
    from providers import addresses, validators
    from providers.routing import outbound

    def resolve(host):
        # No DNS query leaves the machine: this name is "not found" without asking anyone.
        raise OSError(f"cannot resolve {host!r}")

    for module in (addresses, outbound, validators):
        monkeypatch.setattr(module, "resolve_host", resolve)
    _, _, token = setup
    make_provider(name="gone", base_url="https://api.gone.example/v1")
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway, token).chat.completions.create(model="gone/m", messages=HI)
    assert info.value.status_code == 503
    assert info.value.body["code"] == "upstream_unreachable"
    assert "api.gone.example" in info.value.body["message"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/images/generations"),
        ("GET", "/v1/"),
        ("POST", "/v1"),
        ("POST", "/openai/deployments/default/images/generations"),
    ],
)
def test_an_unknown_path_is_a_json_404(gateway, setup, method, path):
    _, _, token = setup
    answer = httpx.request(method, gateway + path, headers=_auth(token), json={})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_url"
    assert set(answer.json()["error"]) == {"message", "type", "code", "param"}


def test_healthz_answers_a_head_probe(gateway):
    answer = httpx.head(gateway + "/healthz")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"


def test_an_unknown_path_through_the_sdk_is_not_found(gateway, setup):
    _, _, token = setup
    with pytest.raises(openai.NotFoundError) as info:
        client(gateway, token).images.generate(model="default", prompt="hi")
    assert info.value.body["code"] == "unknown_url"


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/chat/completions", "POST"),
        ("POST", "/v1/models", "GET"),
        ("DELETE", "/v1/models/default", "GET"),
        ("POST", "/v1/providers", "GET"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_a_json_405(gateway, setup, method, path, allowed):
    _, _, token = setup
    answer = httpx.request(method, gateway + path, headers=_auth(token))
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    error = answer.json()["error"]
    assert error["message"] == METHOD_NOT_ALLOWED.format(method=method, allowed=allowed)
    assert error["code"] == "method_not_allowed"


@pytest.mark.parametrize("stream", [False, True])
def test_a_body_over_the_limit_is_a_json_413(gateway, setup, settings, stream):
    _, _, token = setup
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"messages": [{"role": "user", "content": "x" * 2000}], "stream": stream}
    answer = httpx.post(gateway + "/v1/chat/completions", json=body, headers=_auth(token))
    assert answer.status_code == 413
    assert answer.json()["error"]["message"] == BODY_TOO_LARGE.format(limit=1000)


def test_a_body_over_the_limit_is_a_json_413_through_django_too(setup, settings, client):
    # The Django stack (streams, and servers without the fast path) reads the body itself.
    _, _, token = setup
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = client.post(
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "x" * 2000}]},
        content_type="application/json",
        headers=_auth(token),
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("stream_first", [False, True])
def test_a_body_nested_too_deeply_is_a_400(gateway, setup, stream_first):
    a, _, token = setup
    head = '{"stream": true, "messages": ' if stream_first else '{"messages": '
    body = head + "[" * 100_000 + "]" * 100_000 + "}"
    answer = httpx.post(
        gateway + "/v1/chat/completions",
        content=body,
        headers={**_auth(token), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"
    assert a.requests == []


def test_get_a_model_by_id_even_with_slashes(gateway, setup):
    _, _, token = setup
    services.group_save(name="fast", deployments=[D("pb", "meta-llama/Llama-3-8b")])
    c = client(gateway, token)
    model = c.models.retrieve("pa/gpt-4o-mini")
    assert (model.id, model.object, model.owned_by) == ("pa/gpt-4o-mini", "model", "pa")
    assert c.models.retrieve("pb/meta-llama/Llama-3-8b").owned_by == "pb"
    assert c.models.retrieve("fast").owned_by == "routing-group"
    with pytest.raises(openai.NotFoundError) as info:
        c.models.retrieve("pa/not-listed")
    assert info.value.body["code"] == "model_not_found"


def test_get_a_model_the_token_may_not_use_is_a_404(gateway, setup):
    from gateway.services import token_create

    _, limited = token_create(name="limited", allowed_models=["pa/gpt-4o-mini"])
    c = client(gateway, limited)
    assert c.models.retrieve("pa/gpt-4o-mini").id == "pa/gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("default")


@pytest.mark.parametrize("stream", [False, True])
def test_a_key_echoed_in_a_relayed_header_is_masked(gateway, setup, stream):
    # Through the real server: the masked value (sk-…) must still be a valid header.
    from providers.redact import mask
    from tests.conftest import SECRET

    a, _, token = setup
    a.fail_next(429, headers={"Retry-After": "5", "x-ratelimit-remaining-tokens": SECRET})
    answer = httpx.post(
        gateway + "/v1/chat/completions",
        json={"messages": HI, "stream": stream},
        headers=_auth(token),
        timeout=30,
    )
    assert answer.status_code == 429 and answer.headers["retry-after"] == "5"
    relayed = answer.headers["x-ratelimit-remaining-tokens"]
    assert SECRET not in relayed and SECRET[8:] not in relayed
    assert mask(SECRET)[-4:] in relayed
