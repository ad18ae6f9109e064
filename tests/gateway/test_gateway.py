"""The gateway, driven by the official `openai` package against a real ASGI server on
127.0.0.1, backed by fake upstream servers on 127.0.0.1."""

import threading
from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone

from gateway.models import AccessToken
from gateway.services import token_create, token_revoke
from providers import services
from providers.models import Provider
from providers.services import DeploymentSpec as D

# Every test twice: relayed without LiteLLM, and through LiteLLM (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway(local_upstreams):
    import uvicorn

    from providers.routing.llm import litellm
    from routing_admin.asgi import application

    litellm()  # import once up front: on this machine it takes longer than a request timeout

    config = uvicorn.Config(
        application, host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ready = threading.Event()
    while not server.started:  # bounded by the join below, not a fixed sleep
        ready.wait(0.01)
        assert thread.is_alive(), "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def setup(upstream_factory, make_provider):
    a, b = upstream_factory("a"), upstream_factory("b")
    a.reply_text, b.reply_text = "from A", "from B"
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    _, raw = token_create(name="app", actor="test")
    return a, b, raw


def client(gateway, token):
    return openai.OpenAI(base_url=gateway + "/v1", api_key=token, max_retries=0, timeout=30)


def test_plain_completion_uses_the_default(gateway, setup):
    a, _, token = setup
    response = client(gateway, token).chat.completions.create(model="default", messages=HI)
    assert response.choices[0].message.content == "from A"
    assert a.last.json()["model"] == "gpt-4o-mini"
    assert a.last.headers["authorization"].startswith("Bearer sk-test-")


def test_provider_model_and_group_addressing(gateway, setup):
    _, b, token = setup
    services.group_save(name="fast", deployments=[D("pb", "small")])
    c = client(gateway, token)
    assert (
        c.chat.completions.create(model="pb/big", messages=HI).choices[0].message.content
        == "from B"
    )
    assert b.last.json()["model"] == "big"
    assert (
        c.chat.completions.create(model="fast", messages=HI).choices[0].message.content == "from B"
    )


def test_streaming_ends_with_done(gateway, setup):
    _, _, token = setup
    stream = client(gateway, token).chat.completions.create(
        model="default", messages=HI, stream=True
    )
    texts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 3 and "".join(texts) == "from A"
    with httpx.stream(
        "POST",
        gateway + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"model": "default", "messages": HI, "stream": True},
    ) as raw:
        lines = [line for line in raw.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_tool_calls_pass_through(gateway, setup):
    a, _, token = setup
    a.tool_call("lookup", {"q": "x"})
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    message = (
        client(gateway, token)
        .chat.completions.create(model="default", messages=HI, tools=tools)
        .choices[0]
        .message
    )
    assert message.tool_calls[0].function.name == "lookup"
    assert message.tool_calls[0].function.arguments == '{"q": "x"}'


def test_client_cannot_redirect_the_call_elsewhere(gateway, setup, upstream_factory):
    a, _, token = setup
    attacker = upstream_factory("attacker")
    # Refused, not ignored (issue 11): tests/gateway/test_gateway_params.py has every such
    # parameter.
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway, token).chat.completions.create(
            model="default",
            messages=HI,
            extra_body={"api_base": attacker.base_url + "/v1", "base_url": attacker.base_url},
        )
    assert info.value.body["param"] == "api_base"
    assert attacker.requests == [] and a.requests == []


@pytest.mark.parametrize("kind", ["wrong", "revoked", "expired", "missing"])
def test_bad_tokens_get_401(gateway, setup, kind):
    _, _, token = setup
    if kind == "revoked":
        token_revoke(token=AccessToken.objects.get(name="app"))
    if kind == "expired":
        AccessToken.objects.filter(name="app").update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        services.provider_update(provider=services_provider("pb"), timeout=11)  # new snapshot
    raw = {"wrong": "ra-not-a-token", "missing": ""}.get(kind, token)
    response = httpx.post(
        gateway + "/v1/chat/completions",
        json={"messages": HI},
        headers={"Authorization": f"Bearer {raw}"} if raw else {},
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"message", "type", "code"}


def services_provider(name):
    from providers.models import Provider

    return Provider.objects.get(name=name)


def test_unknown_model_is_404_and_upstream_500_is_openai_shaped(gateway, setup):
    a, _, token = setup
    c = client(gateway, token)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="nope/model", messages=HI)
    a.fail_next(500, times=5)
    with pytest.raises(openai.InternalServerError) as info:
        c.chat.completions.create(model="default", messages=HI)
    assert "pa" in info.value.message and "sk-test" not in info.value.message


def test_models_and_providers_never_show_keys(gateway, setup):
    _, _, token = setup
    services.group_save(name="fast", deployments=[D("pb", "small")])
    ids = {m.id for m in client(gateway, token).models.list()}
    assert {"default", "fast", "pa/gpt-4o-mini", "pb/small"} <= ids
    Provider.objects.filter(name="pb").update(unhealthy_since=timezone.now())
    answer = httpx.get(gateway + "/v1/providers", headers={"Authorization": f"Bearer {token}"})
    assert '"pa"' in answer.text and "sk-test" not in answer.text
    health = {p["name"]: p["health"] for p in answer.json()["data"]}
    assert health["pa"]["healthy"] is True and health["pb"]["healthy"] is False


def test_providers_are_named_as_every_page_names_them(gateway, setup):
    _, _, token = setup
    services.provider_update(provider=Provider.objects.get(name="pa"), display_name="Acme (prod)")
    answer = httpx.get(gateway + "/v1/providers", headers={"Authorization": f"Bearer {token}"})
    named = {
        p["name"]: (p["display_name"], p["kind"], p["kind_label"]) for p in answer.json()["data"]
    }
    assert named["pa"] == ("Acme (prod)", "openai", "OpenAI")
    assert named["pb"][0] == "pb"  # without a display name, its name


def test_dashboard_session_is_not_accepted(gateway, setup, client):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", password="pw")
    client.login(username="root", password="pw")
    assert client.get("/v1/models").status_code == 401


def test_healthz_needs_no_token(gateway, db):
    response = httpx.get(gateway + "/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"


def test_token_restricted_to_models(gateway, setup):
    _, _, _ = setup
    _, limited = token_create(name="limited", allowed_models=["pb/small"])
    c = client(gateway, limited)
    assert c.chat.completions.create(model="pb/small", messages=HI).choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        c.chat.completions.create(model="default", messages=HI)


def test_each_gateway_call_is_logged_with_its_token(gateway, setup):
    from usage import request_log
    from usage.models import RequestLog

    _, _, token = setup
    client(gateway, token).chat.completions.create(model="default", messages=HI)
    # A stream is logged when it ends, after the view has returned: still under its token.
    list(client(gateway, token).chat.completions.create(model="default", messages=HI, stream=True))
    request_log.flush()
    plain, streamed = RequestLog.objects.order_by("id")
    assert (plain.token_name, plain.provider, plain.model, plain.ok) == (
        "app", "pa", "gpt-4o-mini", True
    )  # fmt: skip
    assert (streamed.token_name, streamed.stream) == ("app", True)
    assert AccessToken.objects.get(name="app").last_used_at == streamed.at


def test_a_stream_through_a_group_is_logged_with_the_deployment_that_answered(gateway, setup):
    from usage import request_log
    from usage.models import RequestLog

    _, b, token = setup
    services.group_save(name="fast", deployments=[D("pb", "small")])
    stream = client(gateway, token).chat.completions.create(model="fast", messages=HI, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "from B" and b.last.json()["model"] == "small"
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.requested_model, row.provider, row.model, row.stream, row.ok) == (
        "fast", "pb", "small", True, True
    )  # fmt: skip
    assert row.token_name == "app"


def test_a_body_over_the_upload_limit_is_refused_in_openai_shape(gateway, setup, settings):
    _, _, token = setup
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = [{"role": "user", "content": "x" * 2000}]
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway, token).chat.completions.create(model="default", messages=big)
    assert info.value.status_code == 413
    assert info.value.body["code"] == "too_large"


@pytest.mark.parametrize("stream", [False, True])
def test_an_unexpected_failure_is_a_json_500_not_an_html_page(gateway, setup, monkeypatch, stream):
    # Plain calls and streams alike take the fast path (gateway/fastpath.py).
    _, _, token = setup

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours, with sk-test-" + "A1b2C3d4E5f6G7h8J9k0")

    monkeypatch.setattr(services, "acompletion", broken)
    answer = httpx.post(
        gateway + "/v1/chat/completions",
        json={"model": "default", "messages": HI, **({"stream": True} if stream else {})},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert (error["message"], error["type"], error["code"]) == (
        "Internal server error; it has been logged.", "api_error", "internal_error"
    )  # fmt: skip
    assert "sk-test" not in answer.text


def test_the_fast_path_keeps_the_security_headers(gateway, setup):
    _, _, token = setup
    answer = httpx.get(gateway + "/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert int(answer.headers["content-length"]) == len(answer.content)


def test_refused_calls_are_logged_with_their_token_and_status(gateway, setup):
    from usage import request_log
    from usage.models import RequestLog

    _, _, token = setup
    _, limited = token_create(name="limited", allowed_models=["pb/small"])
    with pytest.raises(openai.NotFoundError):
        client(gateway, token).chat.completions.create(model="nope/model", messages=HI)
    with pytest.raises(openai.PermissionDeniedError):
        client(gateway, limited).chat.completions.create(model="default", messages=HI)
    request_log.flush()
    rows = list(RequestLog.objects.order_by("id").values_list("token_name", "status", "ok"))
    assert rows == [("app", 404, False), ("limited", 403, False)]


def test_the_fast_path_serves_the_views_django_routes_those_paths_to():
    from django.urls import resolve, reverse

    from gateway.fastpath import FastPath
    from gateway.urls import FAST_ROUTES

    for route, (view, name) in FAST_ROUTES.items():
        assert reverse(name) == "/" + route
        assert resolve("/" + route).func is view is FastPath.routes["/" + route]
