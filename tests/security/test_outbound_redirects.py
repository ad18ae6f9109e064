"""Redirects from providers are never followed: a provider (or whoever took over its host)
answering 30x must not get our stored key sent on to another host, whatever the HTTP client
above the transport (LiteLLM, the OpenAI SDK) would do by default."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from asgiref.sync import async_to_sync

from providers import services
from providers.routing import outbound
from providers.services import connection
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
pytestmark = pytest.mark.django_db


class _Redirect(BaseHTTPRequestHandler):
    def _answer(self):
        self.server.hits.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(self.server.status)
        self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def redirector():
    servers = []

    def start(location: str, status: int = 307) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
        server.location, server.status, server.hits = location, status, []
        server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_redirect_to_metadata_is_not_followed_by_the_connection_test(redirector, make_provider):
    server = redirector(METADATA, status=302)
    provider = make_provider(name="p", base_url=server.base_url + "/v1")
    result = services.provider_test(provider=provider)
    assert not result.ok
    assert result.message == connection.REDIRECTED.format(location=METADATA)
    assert server.hits == ["/v1/models"]


CASES = {
    # kind: (base URL suffix, header that carries the key)
    "openai": ("/v1", "authorization"),  # the OpenAI SDK's client
    "anthropic": ("", "x-api-key"),  # LiteLLM's own HTTP handler
    "gemini": ("", "x-goog-api-key"),
    "azure": ("", "api-key"),  # httpx drops Authorization on a redirect, never these
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_redirect_to_another_host_is_not_followed_with_the_key(
    kind, redirector, upstream_factory, make_provider
):
    elsewhere = upstream_factory("elsewhere")
    suffix, _ = CASES[kind]
    server = redirector(elsewhere.base_url + "/v1/chat/completions")
    make_provider(
        name="p",
        kind=kind,
        base_url=server.base_url + suffix,
        api_version="2024-10-21" if kind == "azure" else "",
    )
    with pytest.raises(services.ProviderError) as sync_error:
        services.completion(HI, model="p/m")

    async def stream():
        async for _ in await services.acompletion(HI, model="p/m", stream=True):
            pass

    with pytest.raises(services.ProviderError) as async_error:
        async_to_sync(stream)()
    assert elsewhere.requests == []
    assert len(server.hits) == 2
    for error in (sync_error.value, async_error.value):
        assert "redirect" in str(error) and SECRET not in str(error)


def test_redirect_is_refused_even_when_the_client_asks_to_follow_it(redirector, upstream, settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    server = redirector(upstream.base_url + "/v1/models", status=301)
    with outbound.client(timeout=10) as client, pytest.raises(outbound.Refused) as caught:
        client.get(
            server.base_url + "/v1/models", headers={"x-api-key": SECRET}, follow_redirects=True
        )
    assert str(caught.value) == outbound.REDIRECT_REFUSED.format(status=301)
    assert upstream.requests == []

    async def follow():
        async with outbound.async_client(timeout=10) as client:
            await client.get(server.base_url + "/v1/models", follow_redirects=True)

    with pytest.raises(outbound.Refused):
        async_to_sync(follow)()
    assert upstream.requests == []


def test_redirect_answer_is_still_readable_when_not_followed(redirector, settings):
    # The connection test reports where the provider wanted to send us.
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    server = redirector("https://example.com/v1/models", status=308)
    with outbound.client(timeout=10) as client:
        response = client.get(server.base_url + "/v1/models")
    assert response.status_code == 308
    assert response.headers["location"] == "https://example.com/v1/models"
    assert isinstance(response, httpx.Response)
