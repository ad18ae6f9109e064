"""explain(): a failed connection test says what to do, for the saved test, Test all and the
command line alike (they all run the same probe). Every server here is real, on 127.0.0.1."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from providers import addresses, services
from providers.routing import outbound
from providers.services import connection
from tests.conftest import SECRET

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    # Bound and closed again: nothing listens there for the rest of the test.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_on_a_local_kind_asks_whether_it_runs(make_provider):
    port = _closed_port()
    provider = make_provider(name="llm", kind="vllm", base_url=f"http://127.0.0.1:{port}/v1")
    result = services.provider_test(provider=provider)
    expected = connection.NOTHING_LISTENING.format(where=f"127.0.0.1:{port}", label="vLLM")
    assert not result.ok and result.message == expected
    assert expected == f"Nothing is listening at 127.0.0.1:{port}: is vLLM running?"
    assert "Errno" not in provider.__class__.objects.get(name="llm").last_test_message


def test_the_command_line_and_test_all_show_the_same_words(make_provider):
    port = _closed_port()
    make_provider(name="llm", kind="vllm", base_url=f"http://127.0.0.1:{port}/v1")
    expected = connection.NOTHING_LISTENING.format(where=f"127.0.0.1:{port}", label="vLLM")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 failed"):
        call_command("routing", "provider", "test", "--all", stdout=out, stderr=err)
    assert expected in out.getvalue() + err.getvalue()


def test_connection_refused_on_a_remote_kind_points_at_the_base_url(make_provider):
    port = _closed_port()
    provider = make_provider(name="o", kind="openai", base_url=f"http://127.0.0.1:{port}/v1")
    result = services.provider_test(provider=provider)
    where = f"127.0.0.1:{port}"
    assert result.message == connection.NOTHING_LISTENING_REMOTE.format(where=where)


@pytest.mark.parametrize(
    "status, advice",
    [
        (401, connection.WRONG_KEY.format(label="OpenAI")),
        (403, connection.KEY_NOT_ALLOWED.format(label="OpenAI")),
    ],
)
def test_a_refused_key_says_so_and_never_echoes_it(make_provider, upstream, status, advice):
    upstream.fail_next(status, {"error": {"message": f"bad key {SECRET}"}})
    provider = make_provider(name="o", base_url=upstream.base_url + "/v1")
    result = services.provider_test(provider=provider)
    assert not result.ok and result.message.startswith(f"HTTP {status}: {advice}")
    assert SECRET not in result.message


def test_not_found_names_the_url_and_an_example_base_url(make_provider, upstream):
    upstream.fail_next(404, {"error": "no route"})
    provider = make_provider(name="o", base_url=upstream.base_url + "/wrong")
    result = services.provider_test(provider=provider)
    advice = connection.WRONG_BASE_URL.format(
        url=upstream.base_url + "/wrong/models", example="https://api.openai.com/v1"
    )
    assert result.message.startswith(f"HTTP 404: {advice}")


def test_an_unknown_host_name_is_a_dns_failure(monkeypatch, db):
    def no_such_host(host):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # Nothing leaves the machine: the name is refused where it would be resolved.
    monkeypatch.setattr(addresses, "resolve_host", no_such_host)
    monkeypatch.setattr(outbound, "resolve_host", no_such_host)
    draft = services.provider_draft(
        kind="openai", base_url="https://api.openai.example/v1", api_key=SECRET
    )
    result = services.provider_test_unsaved(provider=draft)
    assert result.message == connection.NO_SUCH_HOST.format(host="api.openai.example")


def test_a_timeout_says_where_it_waited(make_provider, upstream):
    upstream.hang(5)
    provider = make_provider(name="slow", base_url=upstream.base_url + "/v1", timeout=0.5)
    result = services.provider_test(provider=provider)
    hint = connection.TIMED_OUT_HINT.format(where=upstream.base_url.removeprefix("http://"))
    assert result.message.endswith(hint)


def test_other_errors_are_left_as_they_are(make_provider, upstream):
    upstream.fail_next(500, "boom")
    provider = make_provider(name="o", base_url=upstream.base_url + "/v1")
    result = services.provider_test(provider=provider)
    assert result.message == connection.HTTP_ERROR.format(status=500, detail="boom")


@pytest.fixture
def untrusted_https(tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate no one trusts (self-signed, made here)."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "server.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pem)
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_an_untrusted_certificate_says_so(make_provider, untrusted_https):
    provider = make_provider(name="o", kind="openai", base_url=untrusted_https)
    result = services.provider_test(provider=provider)
    assert result.message.startswith("The TLS certificate of 127.0.0.1 could not be verified")
    assert result.message == connection.TLS_UNVERIFIED.format(
        host="127.0.0.1", reason="self-signed certificate"
    )
