"""Browsers: origins in ROUTING_CORS_ALLOWED_ORIGINS may call /v1/ and Azure OpenAI's
/openai/ from a web page (django-cors-headers), on the fast path (gateway/fastpath.py) and
through Django alike; other origins get no CORS header, and the dashboard never does."""

import re

import httpx
import pytest
from django.conf import settings as django_settings

from providers.middleware import GATEWAY_PREFIXES
from tests.gateway import test_gateway

# The in-process uvicorn gateway and its providers, from tests/gateway/test_gateway.py.
gateway = test_gateway.gateway
setup = test_gateway.setup

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
ALLOWED = "https://app.example.com"
# /v1/chat/completions and /v1/models take the fast path; the others go through Django.
PATHS = [
    "/v1/chat/completions",
    "/v1/models",
    "/v1/models/default",
    "/v1/providers",
    "/openai/deployments/default/chat/completions",
    "/openai/deployments/pa/text-embedding-3-small/embeddings",
]
AZURE_CHAT = "/openai/deployments/default/chat/completions?api-version=2024-10-21"


@pytest.fixture(autouse=True)
def cors_origins(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED]


def _preflight(base, path, origin, method="POST"):
    return httpx.options(
        base + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
        },
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_preflight_from_a_listed_origin_is_answered(gateway, setup, path):
    answer = _preflight(gateway, path, ALLOWED)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-stainless-os"} <= allowed
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in answer.headers


@pytest.mark.parametrize("path", PATHS)
def test_a_preflight_from_another_origin_gets_no_cors_header(gateway, setup, path):
    answer = _preflight(gateway, path, "https://evil.example.net")
    assert not [h for h in answer.headers if h.startswith("access-control-")]


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_from_a_listed_origin_carries_cors_headers(gateway, setup, stream):
    _, _, token = setup
    headers = {"Authorization": f"Bearer {token}", "Origin": ALLOWED}
    body = {"model": "default", "messages": HI, "stream": stream}
    answer = httpx.post(gateway + "/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in answer.headers["access-control-expose-headers"]
    if stream:
        assert answer.text.endswith("data: [DONE]\n\n")
    else:
        assert answer.json()["choices"][0]["message"]["content"] == "from A"
    refused = httpx.post(
        gateway + "/v1/chat/completions",
        json=body,
        headers={**headers, "Origin": "https://evil.example.net"},
    )
    assert "access-control-allow-origin" not in refused.headers
    assert "origin" in refused.headers["vary"].lower()


def test_errors_carry_cors_headers_so_a_page_can_read_them(gateway, setup):
    answer = httpx.get(gateway + "/v1/models", headers={"Origin": ALLOWED})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == ALLOWED


def test_the_dashboard_is_never_shared(gateway, setup):
    answer = _preflight(gateway, "/login/", ALLOWED)
    assert "access-control-allow-origin" not in answer.headers
    page = httpx.get(gateway + "/login/", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in page.headers


def test_no_origin_is_allowed_by_default(gateway, setup, settings):
    settings.CORS_ALLOWED_ORIGINS = []
    answer = _preflight(gateway, "/v1/chat/completions", ALLOWED)
    assert "access-control-allow-origin" not in answer.headers


def test_cors_covers_every_gateway_path():
    for prefix in GATEWAY_PREFIXES:
        assert re.match(django_settings.CORS_URLS_REGEX, prefix + "x"), prefix


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        # What the AzureOpenAI SDK sends: the token as api-key.
        ("/openai/deployments/default/chat/completions", "api-key, content-type"),
        # What the Anthropic SDK sends from a browser (dangerouslyAllowBrowser).
        (
            "/v1/messages",
            "x-api-key, anthropic-version, anthropic-dangerous-direct-browser-access",
        ),
    ],
)
def test_a_preflight_allows_the_other_key_headers(gateway, setup, path, headers):
    answer = httpx.options(
        gateway + path,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in headers.split(",")} <= allowed


def test_an_azure_call_from_a_listed_origin_carries_cors_headers(gateway, setup):
    _, _, token = setup
    headers = {"api-key": token, "Origin": ALLOWED}
    answer = httpx.post(gateway + AZURE_CHAT, json={"messages": HI}, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "from A"
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in answer.headers["access-control-expose-headers"]
    refused = httpx.post(
        gateway + AZURE_CHAT,
        json={"messages": HI},
        headers={**headers, "Origin": "https://evil.example.net"},
    )
    assert "access-control-allow-origin" not in refused.headers
