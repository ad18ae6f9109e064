"""Answers from providers are size-capped and time-bounded, and never inflate past the cap:
a hostile or broken provider cannot exhaust this server's memory or hold a worker for ever."""

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync

from providers import services
from providers.routing import outbound

HI = [{"role": "user", "content": "hi"}]
MIB = 1024 * 1024
pytestmark = pytest.mark.django_db


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        self.server.seen.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # The client hanging up on us is what some tests want.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.server.behaviour(self)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def _chunked(handler, chunks, headers=()):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    for chunk in chunks:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def hostile(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    servers = []

    def start(behaviour) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.behaviour, server.seen = behaviour, []
        server.daemon_threads = True
        server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _endless(handler):
    # 64 MiB of a JSON string that never closes, a MiB at a time, unless the client hangs up.
    _chunked(handler, (b'{"id": "' if i == 0 else b"x" * MIB for i in range(64)))


def test_endless_model_answer_is_cut_at_the_size_cap(hostile, make_provider):
    server = hostile(_endless)
    make_provider(name="p", base_url=server.base_url + "/v1")
    with pytest.raises(services.ProviderError) as caught:
        services.completion(HI, model="p/m")
    assert outbound.TOO_LARGE.format(limit="32 MiB") in str(caught.value)
    with pytest.raises(services.ProviderError) as caught:
        async_to_sync(services.acompletion)(HI, model="p/m")
    assert outbound.TOO_LARGE.format(limit="32 MiB") in str(caught.value)


def test_oversized_answer_announced_by_content_length_is_refused_before_reading(hostile):
    def announce(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(1024 * MIB))
        handler.end_headers()
        handler.wfile.write(b"{")  # and then nothing: a client reading on would wait

    server = hostile(announce)
    with (
        outbound.client(timeout=30, max_bytes=MIB) as client,
        pytest.raises(outbound.Refused) as caught,
    ):
        client.get(server.base_url + "/v1/models")
    assert str(caught.value) == outbound.TOO_LARGE.format(limit="1 MiB")


def test_connection_test_answer_past_the_cap_is_refused(hostile, make_provider):
    server = hostile(_endless)
    provider = make_provider(name="p", base_url=server.base_url + "/v1")
    result = services.provider_test(provider=provider)
    assert not result.ok and "larger than" in result.message


def test_compressed_answer_is_refused_as_a_possible_decompression_bomb(hostile):
    # 1 KiB of gzip can inflate to megabytes: the cap counts what is read, so nothing
    # compressed is asked for, and anything compressed sent anyway is refused.
    server = hostile(
        lambda h: _chunked(h, [b"\x1f\x8b" + b"\0" * 64], [("Content-Encoding", "gzip")])
    )
    with (
        outbound.client(timeout=10) as client,
        pytest.raises(outbound.Refused) as caught,
    ):
        client.get(server.base_url + "/v1/models", headers={"Accept-Encoding": "gzip"})
    assert str(caught.value) == outbound.COMPRESSED.format(encoding="gzip")
    assert server.seen[0]["Accept-Encoding"] == "identity"


class _FakeClock:
    """time.monotonic for outbound only: ten seconds pass at every look."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 10.0
        return self.now


def test_slow_drip_answer_is_cut_at_the_total_time_limit(hostile, monkeypatch):
    # Each chunk arrives well within the read timeout; only a total limit stops the drip.
    server = hostile(lambda h: _chunked(h, [b"x"] * 100))
    monkeypatch.setattr(outbound, "time", _FakeClock())
    with (
        outbound.client(timeout=10, max_seconds=45) as client,
        pytest.raises(outbound.Refused) as caught,
    ):
        client.get(server.base_url + "/v1/models")
    assert str(caught.value) == outbound.TOO_SLOW.format(seconds=45)


def test_answer_within_the_limits_is_read_whole(hostile):
    body = b"y" * (MIB - 1)
    server = hostile(lambda h: _chunked(h, [body[:1000], body[1000:]]))
    with outbound.client(timeout=10, max_bytes=MIB) as client:
        assert client.get(server.base_url + "/v1/models").content == body
