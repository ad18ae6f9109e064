"""The gateway's relay (providers/services/relay.py) keeps what LiteLLM's path guarantees:
the address checked is the one connected to, redirects are not followed, answers are capped
in size and time, the provider's key is never shown, and a caller decides neither where a
call goes nor with which credentials, nor which headers its answer carries.

Every test runs through the real gateway, twice (`both_paths`): relayed, then through
LiteLLM (ROUTING_GATEWAY_RELAY=0); a caller must see the same, or the relay be safer.
`_path_taken` makes each relayed run prove that the relay made the call, so that a test
cannot pass by the call silently going through LiteLLM instead.
"""

import json
import logging

import httpx
import pytest

from gateway.chat_params import PARAMETER_REFUSED
from gateway.services import token_create
from providers import validators
from providers.kinds import KINDS
from providers.routing import outbound
from providers.services import relay
from tests.conftest import SECRET
from tests.gateway import test_gateway
from tests.gateway.test_gateway import HI
from tests.security import test_outbound_limits, test_outbound_pinning
from tests.security.test_outbound_limits import MIB, _chunked, _endless, _FakeClock
from tests.security.test_outbound_pinning import CHECKED_ADDRESS, CHECKED_NETWORK
from usage import request_log
from usage.models import RequestLog

# Fixtures of those modules.
gateway = test_gateway.gateway
hostile = test_outbound_limits.hostile
dns = test_outbound_pinning.dns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]

CHAT = "/v1/chat/completions"
# What the caller may see of the key: its mask at most (providers/redact.py).
MASKED = f"{SECRET[:3]}…{SECRET[-4:]}"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@pytest.fixture
def token(db):
    return token_create(name="app", actor="test")[1]


def _post(gateway, token, path=CHAT, send_headers=None, **body):
    body.setdefault("model", "p/m")
    if path == CHAT:
        body.setdefault("messages", HI)
    return httpx.post(
        gateway + path,
        json=body,
        headers={"Authorization": f"Bearer {token}", **(send_headers or {})},
        timeout=60,
    )


def _content(path: str) -> dict:
    return {CHAT: {}, "/v1/embeddings": {"input": "hi"}, "/v1/completions": {"prompt": "hi"}}[path]


def _relayed(headers) -> bool:
    # LiteLLM calls through the OpenAI SDK or its own client; the relay through httpx.
    agent = {k.lower(): v for k, v in headers.items()}.get("user-agent", "")
    return agent.startswith("python-httpx/")


def _path_taken(both_paths, headers) -> None:
    assert _relayed(headers) == both_paths


def _error_of(response) -> str:
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]["message"]


def _logged_errors() -> list[str]:
    request_log.flush()
    return list(RequestLog.objects.values_list("error", flat=True))


# --- SSRF: the pinned outbound pool, its caps, no redirects. ---------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", validators.ADDRESS_LOOPBACK),
        ("169.254.169.254", validators.ADDRESS_METADATA),
        ("10.1.2.3", validators.ADDRESS_PRIVATE),
    ],
)
@pytest.mark.parametrize("path", [CHAT, "/v1/embeddings"])
def test_a_host_rebound_to_a_private_address_is_refused_before_connecting(
    address,
    reason,
    path,
    gateway,
    token,
    dns,
    settings,
    make_provider,
    upstream,
    both_paths,
):
    port = upstream.base_url.rsplit(":", 1)[1]
    # The same kind on a plain address: proves which path this run's calls take.
    make_provider(name="plain", base_url=upstream.base_url + "/v1")
    _post(gateway, token, model="plain/m")
    _path_taken(both_paths, upstream.last.headers)
    upstream.reset()
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [CHECKED_NETWORK]
    dns["rebind.test"] = [[CHECKED_ADDRESS]]  # what the base URL was checked against
    make_provider(name="p", base_url=f"http://rebind.test:{port}/v1")
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [CHECKED_NETWORK]
    dns["rebind.test"] = [[address]]
    response = _post(gateway, token, path, **_content(path))
    assert response.status_code == 503
    refused = reason % {"address": f"rebind.test (resolves to {address})"}
    assert outbound.ADDRESS_REFUSED.format(host="rebind.test", reason=refused) in _error_of(
        response
    )
    assert upstream.requests == []
    assert SECRET not in response.text


def _redirect_to(location: str, status: int = 307):
    def answer(handler):
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("stream", [False, True])
def test_a_redirect_is_not_followed_nor_shown_to_the_caller(
    status,
    stream,
    gateway,
    token,
    hostile,
    upstream_factory,
    make_provider,
    both_paths,
):
    elsewhere = upstream_factory("elsewhere")
    server = hostile(_redirect_to(elsewhere.base_url + "/v1/chat/completions", status))
    make_provider(name="p", base_url=server.base_url + "/v1", max_retries=2)
    response = _post(gateway, token, stream=stream)
    assert response.status_code == 503
    assert _error_of(response) == (
        "Provider 'p' (OpenAI) failed: " + outbound.REDIRECT_REFUSED.format(status=status)
    )
    assert "location" not in response.headers
    assert elsewhere.requests == []
    # The relay asks once: a redirect is no failure that another try would mend. (The
    # OpenAI SDK under LiteLLM retries the refusal as a connection error, to the same host.)
    assert len(server.seen) == (1 if both_paths else 3)
    _path_taken(both_paths, server.seen[0])


@pytest.mark.parametrize("stream", [False, True])
def test_an_endless_answer_is_cut_at_the_size_cap(
    stream,
    gateway,
    token,
    hostile,
    make_provider,
    both_paths,
):
    if stream:

        def behaviour(handler):
            event = b'data: {"choices": [{"index": 0, "delta": {"content": "' + b"x" * MIB
            _chunked(handler, [event] * 40, [("Content-Type", "text/event-stream")])

    else:
        behaviour = _endless
    server = hostile(behaviour)
    make_provider(name="p", base_url=server.base_url + "/v1", max_retries=2)
    response = _post(gateway, token, stream=stream)
    # The relay does not ask again for what would be refused again (the OpenAI SDK under
    # LiteLLM retries a refusal as a connection error).
    assert len(server.seen) == 1 or not both_paths
    too_large = outbound.TOO_LARGE.format(limit="32 MiB")
    if stream:
        # The stream had begun: its error comes as its last event.
        assert response.status_code == 200
        events = [e for e in response.text.split("\n\n") if e.startswith("data: {")]
        assert too_large in json.loads(events[-1][6:])["error"]["message"]
    else:
        assert response.status_code == 503 and too_large in _error_of(response)
    _path_taken(both_paths, server.seen[0])


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_drip_answer_is_cut_at_the_total_time_limit(
    stream,
    gateway,
    token,
    hostile,
    make_provider,
    monkeypatch,
    both_paths,
):
    # Each byte arrives well within the read timeout; only the total limit stops the drip.
    head = b"data: " if stream else b""
    kind = "text/event-stream" if stream else "application/json"
    server = hostile(lambda h: _chunked(h, [head + b"{"] + [b" "] * 2000, [("Content-Type", kind)]))
    make_provider(name="p", base_url=server.base_url + "/v1")
    monkeypatch.setattr(outbound, "time", _FakeClock())  # ten seconds pass at every look
    response = _post(gateway, token, stream=stream)
    too_slow = outbound.TOO_SLOW.format(seconds=outbound.MAX_RESPONSE_SECONDS)
    if stream:
        assert response.status_code == 200
        events = [e for e in response.text.split("\n\n") if e.startswith("data: {")]
        assert too_slow in json.loads(events[-1][6:])["error"]["message"]
    else:
        assert response.status_code == 503 and too_slow in _error_of(response)
    _path_taken(both_paths, server.seen[0])


# --- Secrets: the provider's key never reaches the caller, the log or the logs. ------------

# A hostile (or careless) upstream echoing the key back, in as many ways as it could.
ECHOES = {
    "json": {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "auth"}},
    "json-escaped": json.dumps(
        {"error": {"message": "Incorrect API key: " + SECRET.replace("-", "\\u002d")}}
    ).replace("\\\\u002d", "\\u002d"),
    "text": f"Unauthorized: Bearer {SECRET} is not a valid key",
    "html": f"<html><body><h1>401</h1><p>key={SECRET}</p></body></html>",
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_a_key_echoed_by_the_upstream_is_masked_everywhere(
    echo, stream, gateway, token, upstream, make_provider, caplog, both_paths
):
    caplog.set_level(logging.INFO)
    make_provider(name="p", base_url=upstream.base_url + "/v1")
    echoed = {"WWW-Authenticate": f"Bearer {SECRET}", "X-Echo": SECRET, "Set-Cookie": SECRET}
    upstream.fail_next(401, ECHOES[echo], headers=echoed)
    response = _post(gateway, token, stream=stream)
    assert response.status_code == 502
    assert _error_of(response).startswith("Provider 'p' (OpenAI) failed with HTTP 401: ")
    assert SECRET not in response.text and MASKED in _error_of(response)
    assert all(SECRET not in v for v in response.headers.values())
    assert not {"www-authenticate", "x-echo", "set-cookie"} & set(response.headers)
    (logged,) = _logged_errors()
    assert SECRET not in logged and MASKED in logged
    assert SECRET not in caplog.text
    _path_taken(both_paths, upstream.last.headers)


def test_a_rate_limit_relays_its_rate_headers_only_and_masked(
    gateway, token, upstream, make_provider, caplog, both_paths
):
    caplog.set_level(logging.INFO)
    make_provider(name="p", base_url=upstream.base_url + "/v1")
    upstream.fail_next(
        429,
        {"error": {"message": f"Rate limit reached for key {SECRET}", "type": "requests"}},
        headers={
            "Retry-After": "75",  # past what a retry waits for: answered at once
            "X-RateLimit-Remaining-Requests": "0",
            "X-RateLimit-Key": SECRET,
            "Set-Cookie": "session=abc; Path=/",
            "Location": "http://169.254.169.254/",
            "X-Upstream-Secret": SECRET,
        },
    )
    response = _post(gateway, token)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "75"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    # Masked (and so not ASCII: Django sends it MIME-encoded).
    assert SECRET not in response.headers["x-ratelimit-key"]
    assert not {"set-cookie", "location", "x-upstream-secret"} & set(response.headers)
    assert SECRET not in response.text and SECRET not in caplog.text
    assert SECRET not in _logged_errors()[0]
    _path_taken(both_paths, upstream.last.headers)


# --- Caller control: where the call goes and with which credentials. -----------------------


@pytest.mark.parametrize(
    "name",
    [
        "api_base", "base_url", "api_key", "extra_headers", "headers", "custom_llm_provider",
        "extra_body", "extra_query", "timeout", "max_retries",
    ],
)  # fmt: skip
@pytest.mark.parametrize("path", [CHAT, "/v1/embeddings", "/v1/completions"])
def test_a_parameter_choosing_the_endpoint_or_credentials_is_refused(
    name, path, gateway, token, upstream, make_provider, upstream_factory
):
    elsewhere = upstream_factory("elsewhere")
    make_provider(name="p", kind="vllm", base_url=upstream.base_url + "/v1", api_key=SECRET)
    value = elsewhere.base_url if name in ("api_base", "base_url") else "x"
    response = _post(gateway, token, path, **_content(path), **{name: value})
    assert response.status_code == 400
    assert _error_of(response) == PARAMETER_REFUSED.format(name=name)
    assert upstream.requests == [] and elsewhere.requests == []


def test_an_authorization_in_the_body_is_refused(gateway, token, upstream, make_provider):
    make_provider(name="p", base_url=upstream.base_url + "/v1")
    response = _post(gateway, token, Authorization="Bearer sk-caller-0000000000")
    assert response.status_code == 400 and "Unknown parameter 'Authorization'" in _error_of(
        response
    )
    assert upstream.requests == []


@pytest.mark.parametrize(
    "model", ["p/../../admin", "p/m?api-key=x", "p/m#x", "p/m\r\nX: y", "p/%2e%2e/x"]
)
def test_a_model_id_with_url_characters_never_reaches_the_provider(
    model, gateway, token, upstream, make_provider
):
    make_provider(name="p", base_url=upstream.base_url + "/v1")
    response = _post(gateway, token, model=model)
    assert response.status_code == 404
    assert upstream.requests == []


@pytest.mark.parametrize("path", [CHAT, "/v1/embeddings", "/v1/completions"])
def test_the_callers_headers_are_not_sent_upstream(
    path, gateway, token, upstream, make_provider, both_paths
):
    make_provider(name="p", kind="vllm", base_url=upstream.base_url + "/v1", api_key=SECRET,
                  headers={"X-Team": "search"})  # fmt: skip
    caller = {
        "X-Api-Key": "caller-key", "Api-Key": "caller-key", "OpenAI-Organization": "org-caller",
        "X-Forwarded-For": "10.0.0.1", "Cookie": "sessionid=caller", "X-Team": "caller",
        "Anthropic-Version": "caller", "Forwarded": "for=10.0.0.1",
    }  # fmt: skip
    response = _post(gateway, token, path, send_headers=caller, **_content(path))
    assert response.status_code == 200, response.text
    sent = upstream.last.headers
    _path_taken(both_paths, sent)
    assert sent["authorization"] == f"Bearer {SECRET}"
    assert sent["x-team"] == "search"
    assert token not in json.dumps(sent) and token not in upstream.last.body.decode()
    assert not {"x-api-key", "api-key", "openai-organization", "cookie", "x-forwarded-for",
                "anthropic-version", "forwarded"} & set(sent)  # fmt: skip
    if both_paths:
        # The relay's request carries nothing else: no header of the caller's can slip in.
        assert set(sent) == {
            "host", "accept", "accept-encoding", "connection", "user-agent", "content-length",
            "content-type", "authorization", "x-team",
        }  # fmt: skip


def test_the_relayed_body_holds_the_kinds_parameters_only(gateway, token, upstream, make_provider):
    make_provider(name="p", base_url=upstream.base_url + "/v1")
    given = {"temperature": 0.5, "seed": 1, "user": "u", "n": 1, "stop": ["x"]}
    response = _post(gateway, token, model="p/gpt-4o-mini", **given)
    assert response.status_code == 200, response.text
    sent = upstream.last.json()
    assert sent == {"model": "gpt-4o-mini", "messages": HI, **given}
    if _relayed(upstream.last.headers):
        assert set(sent) - {"model", "messages"} <= KINDS["openai"].relayed_params("acompletion")


def test_a_model_id_that_looks_like_a_url_is_only_the_bodys_model(
    gateway, token, upstream, make_provider, both_paths
):
    make_provider(name="p", base_url=upstream.base_url + "/v1")
    response = _post(gateway, token, model="p/http://169.254.169.254/latest")
    assert response.status_code == 200, response.text
    assert upstream.last.path == "/v1/chat/completions" and upstream.last.query == {}
    assert upstream.last.json()["model"] == "http://169.254.169.254/latest"
    _path_taken(both_paths, upstream.last.headers)


def test_an_upstreams_cookies_are_never_sent_again(
    gateway,
    token,
    hostile,
    make_provider,
    both_paths,
):
    """The outbound clients are shared by every provider and team: a cookie one provider's
    answer sets (an authenticating proxy's session, say) must not ride along with another
    provider's calls to the same host."""
    headers = [("Content-Type", "application/json"), ("Set-Cookie", "session=team-a; Path=/")]
    server = hostile(_answer_with(json.dumps(ANSWER).encode(), headers))
    make_provider(name="a", base_url=server.base_url + "/v1")
    make_provider(name="b", base_url=server.base_url + "/v1", api_key="sk-other-0000000000000")
    assert _post(gateway, token, model="a/m").status_code == 200
    assert _post(gateway, token, model="b/m").status_code == 200
    assert len(server.seen) == 2
    assert not any("cookie" in {k.lower() for k in seen} for seen in server.seen)
    _path_taken(both_paths, server.seen[1])


# --- Responses: nothing of the upstream's answer but its body reaches the caller. ----------


def _answer_with(body: bytes, headers: list[tuple[str, str]]):
    def answer(handler):
        handler.send_response(200)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


HOSTILE_HEADERS = [
    ("Content-Type", "text/html"),
    ("Set-Cookie", "sessionid=upstream; Path=/"),
    ("Location", "https://evil.example/"),
    ("Access-Control-Allow-Origin", "*"),
    ("Content-Security-Policy", "default-src *"),
    ("X-Upstream", "1"),
]


def test_the_upstreams_headers_do_not_reach_the_caller(
    gateway,
    token,
    hostile,
    make_provider,
    both_paths,
):
    server = hostile(_answer_with(json.dumps(ANSWER).encode(), HOSTILE_HEADERS))
    make_provider(name="p", base_url=server.base_url + "/v1")
    response = _post(gateway, token)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hi"
    assert response.headers["content-type"] == "application/json"
    assert not {"set-cookie", "location", "access-control-allow-origin", "x-upstream"} & set(
        response.headers
    )
    assert response.headers.get("content-security-policy") != "default-src *"
    _path_taken(both_paths, server.seen[0])


def test_a_stream_carries_the_gateways_content_type_and_no_upstream_headers(
    gateway,
    token,
    hostile,
    make_provider,
    both_paths,
):
    chunk = {**ANSWER, "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}  # fmt: skip
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    server = hostile(_answer_with(body, HOSTILE_HEADERS))
    make_provider(name="p", base_url=server.base_url + "/v1")
    response = _post(gateway, token, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert not {"set-cookie", "location", "access-control-allow-origin", "x-upstream"} & set(
        response.headers
    )
    assert '"content": "hi"' in response.text
    _path_taken(both_paths, server.seen[0])


@pytest.mark.parametrize(
    "body", [b"<html><script>alert(1)</script></html>", b"[1, 2]", b"", b'"text"']
)
def test_an_answer_that_is_not_a_json_object_is_an_error_never_passed_on(
    body,
    gateway,
    token,
    hostile,
    make_provider,
    both_paths,
):
    server = hostile(_answer_with(body, [("Content-Type", "text/html")]))
    make_provider(name="p", base_url=server.base_url + "/v1")
    response = _post(gateway, token)
    assert response.status_code in (500, 503)
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()
    assert "<script>" not in response.headers.get("content-type", "")
    if both_paths:
        assert _error_of(response) == "Provider 'p' (OpenAI) failed: " + relay.NOT_JSON.format(
            status=200
        )
    _path_taken(both_paths, server.seen[0])


def test_an_upstream_event_cannot_add_fields_or_events_to_the_callers_stream(
    gateway, token, hostile, make_provider, both_paths
):
    """An event's data lines are one JSON chunk to the gateway: however the upstream splits
    them, the caller's stream has data lines only (no `event:`, `id:` or `retry:` of the
    upstream's making), and no event the gateway did not pass on as one."""
    chunk = {**ANSWER, "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}  # fmt: skip
    chunk.pop("usage")
    split = json.dumps(chunk).replace(", ", ",\ndata: ", 1)  # one chunk over two data lines
    body = (
        f"data: {split}\n\n"
        'data: {}\ndata: retry: 1\ndata: event: error\ndata:\ndata: data: {"injected": 1}\n\n'
        "data: [DONE]\n\n"
    ).encode()
    server = hostile(_answer_with(body, [("Content-Type", "text/event-stream")]))
    make_provider(name="p", base_url=server.base_url + "/v1")
    response = _post(gateway, token, stream=True)
    assert response.status_code == 200
    lines = response.text.split("\n")
    assert all(line.startswith("data: ") or line == "" for line in lines), lines
    assert 'data: {"injected": 1}' not in lines
    if both_paths:
        # A chunk split over data lines is still the one chunk it was.
        assert json.loads(lines[0][6:])["choices"][0]["delta"]["content"] == "hi"
    _path_taken(both_paths, server.seen[0])
