"""An upstream that echoes the stored key in its error body, in one of the encodings it
travels in (upper-case, percent-encoded in a URL, JSON-escaped, base64 of "user:key" as in
Basic auth, URL-safe base64, base64 then percent-encoded), never gets it relayed: not by
the gateway, not by the service layer's ProviderError, not by the connection test (issue 12).

The key is not key-shaped (no `sk-`), so only knowing it can mask it."""

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
from django.urls import reverse

from gateway.services import token_create
from providers import services
from providers.redact import mask, redact

KEY = "az+Key/" + "Zx8Yw7Vu6Ts5Rq4Po3Nm=="
HINT = mask(KEY)


def _b64(text: str, *, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(text.encode()).decode()


ENCODINGS = {
    "verbatim": KEY,
    "upper-case": KEY.upper(),
    "lower-case": KEY.lower(),
    "url-encoded": quote(KEY, safe=""),
    "url-encoded, lower-case hex": quote(KEY, safe="").lower(),
    "form-encoded": quote_plus(KEY),
    "in a URL's query": f"https://api.example.com/v1/models?key={quote(KEY, safe='')}&x=1",
    "json-escaped slash": KEY.replace("/", "\\/"),
    "json unicode escapes": KEY.replace("+", "\\u002B").replace("/", "\\u002f"),
    "base64": _b64(KEY),
    "base64 of user:key (Basic auth)": "Basic " + _b64("user:" + KEY),
    "base64 of :key": "Basic " + _b64(":" + KEY),
    "base64 of apikey:key": _b64("apikey:" + KEY),
    "url-safe base64": _b64("u:" + KEY, urlsafe=True),
    "base64, then url-encoded": quote(_b64("user:" + KEY), safe=""),
}
CASES = [pytest.param(text, id=name) for name, text in ENCODINGS.items()]


def _leaks(text: str) -> list[str]:
    """Which of the encodings of KEY (or a long part of one) `text` still holds."""
    found = []
    for name, encoded in ENCODINGS.items():
        needle = encoded.removeprefix("Basic ").split("key=")[-1].split("&")[0]
        if needle[4:24].lower() in text.lower():
            found.append(name)
    return found


@pytest.fixture
def keyed(make_provider, upstream):
    provider = make_provider(name="acme", base_url=upstream.base_url + "/v1", api_key=KEY)
    services.default_model_set(provider=provider, model="gpt-4o-mini", actor="test")
    return provider


def _echo(upstream, encoded: str, status: int = 400) -> None:
    message = f"Invalid credentials: {encoded} (request refused)"
    upstream.fail_next(status, {"error": {"message": message, "type": "invalid_request_error"}})


@pytest.mark.parametrize("encoded", CASES)
def test_redact_masks_each_encoding(encoded):
    redacted = redact(f"upstream said: {encoded}.", [KEY])

    assert _leaks(redacted) == []
    assert HINT in redacted and redacted.startswith("upstream said: ")


def test_redact_leaves_unrelated_base64_and_text_alone():
    text = "Basic " + _b64("user:another-password-entirely") + " at /v1/models?key=abc"
    assert redact(text, [KEY]) == text


@pytest.mark.parametrize("encoded", CASES)
def test_gateway_relays_the_error_without_the_key(client, keyed, upstream, encoded):
    _, token = token_create(name="app", actor="test")
    _echo(upstream, encoded)
    body = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post(
        reverse("gateway_chat"),
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    text = response.content.decode()

    assert response.status_code == 400, text
    assert "Invalid credentials" in response.json()["error"]["message"]
    assert _leaks(text) == []
    assert upstream.last.headers.get("authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize("encoded", CASES)
def test_provider_error_of_the_service_layer_holds_no_key(keyed, upstream, encoded):
    _echo(upstream, encoded, status=500)
    with pytest.raises(services.ProviderError) as info:
        services.completion([{"role": "user", "content": "hi"}])

    assert "Invalid credentials" in str(info.value)
    assert _leaks(str(info.value)) == [] and _leaks(repr(info.value)) == []


@pytest.mark.parametrize("encoded", CASES)
def test_connection_test_reports_the_error_without_the_key(keyed, upstream, encoded):
    _echo(upstream, encoded, status=401)
    result = services.provider_test(provider=keyed, actor="test")

    assert not result.ok and "Invalid credentials" in result.message
    assert _leaks(result.message) == []
    keyed.refresh_from_db()
    assert _leaks(keyed.last_test_message) == []


@pytest.mark.parametrize("offset", [280, 290, 299])
def test_connection_test_never_shows_the_start_of_a_key_cut_at_its_length_limit(
    keyed, upstream, offset
):
    # The message keeps 300 characters of the body: a key across that limit is masked
    # before the cut, not cut first (which would leave its first characters readable).
    upstream.fail_next(401, "x" * offset + quote(KEY, safe="") + " was refused")
    result = services.provider_test(provider=keyed, actor="test")

    assert not result.ok and "x" * 50 in result.message
    assert quote(KEY, safe="")[:8] not in result.message
