"""The address checked is the address connected to: DNS rebinding, mixed answers, proxies
from the environment and TLS, for connection tests and model calls (sync, async, routed).

`dns` replaces the system resolver for a few test names, for everything in the process
(validators, LiteLLM, aiohttp, the pinned transport): a real rebinding attack changes the
answer for every resolver, and a request that is not pinned would then reach the fake
upstream on 127.0.0.1.
"""

import datetime
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from asgiref.sync import async_to_sync
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers import addresses, services, validators
from providers.routing import outbound
from providers.services import DeploymentSpec
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]
# Documentation addresses stand in for "a public IP" at check time; the test lists their
# network so that the provider may use http:// to reach the fake upstream.
CHECKED_NETWORK = "203.0.113.0/24"
CHECKED_ADDRESS = "203.0.113.7"
pytestmark = pytest.mark.django_db


@pytest.fixture
def dns(monkeypatch):
    """{name: [answer, ...]}: the system resolver's answers (lists of addresses) for those
    names, one per lookup, the last one repeating: a rebinding DNS server with TTL 0."""
    table: dict[str, list[list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in table:
            return real(host, port, *args, **kwargs)
        answers = table[name]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        port = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def rebind(dns, settings, make_provider, upstream):
    """A provider saved while rebind.test pointed at a checked address; returns a function
    that makes the name point somewhere else from the next lookup on (or from the one after
    that, with `after_one_check`), as a rebinding DNS server would."""
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [CHECKED_NETWORK]
    dns["rebind.test"] = [[CHECKED_ADDRESS]]
    port = upstream.base_url.rsplit(":", 1)[1]
    provider = make_provider(name="victim", base_url=f"http://rebind.test:{port}/v1")
    # make_provider listed 127.0.0.1; the attack is only interesting when it is not listed.
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [CHECKED_NETWORK]

    def point_to(*addresses: str, after_one_check: bool = False):
        dns["rebind.test"] = [[CHECKED_ADDRESS]] if after_one_check else []
        dns["rebind.test"].append(list(addresses))
        return provider

    return point_to


def _refusal(address: str, message: str) -> str:
    reason = message % {"address": f"rebind.test (resolves to {address})"}
    return outbound.ADDRESS_REFUSED.format(host="rebind.test", reason=reason)


def test_dns_rebinding_between_check_and_connect_is_refused(rebind, upstream):
    # The connection test checks the base URL (first lookup: the checked address), then
    # connects (second lookup: loopback).
    provider = rebind("127.0.0.1", after_one_check=True)
    result = services.provider_test(provider=provider)
    assert not result.ok
    assert _refusal("127.0.0.1", validators.ADDRESS_LOOPBACK) in result.message
    assert upstream.requests == []


def test_dns_rebinding_to_the_metadata_service_is_refused_for_model_calls(rebind, upstream):
    rebind("169.254.169.254")
    with pytest.raises(services.ProviderError) as caught:
        services.completion(HI, model="victim/m")
    assert _refusal("169.254.169.254", validators.ADDRESS_METADATA) in str(caught.value)
    assert SECRET not in str(caught.value)


def test_dns_rebinding_to_loopback_is_refused_for_async_gateway_calls(rebind, upstream):
    rebind("127.0.0.1")
    with pytest.raises(services.ProviderError) as caught:
        async_to_sync(services.acompletion)(HI, model="victim/m", stream=True)
    assert _refusal("127.0.0.1", validators.ADDRESS_LOOPBACK) in str(caught.value)
    assert upstream.requests == []


def test_dns_rebinding_is_refused_for_calls_routed_through_a_group(rebind, upstream):
    rebind("127.0.0.1")
    services.group_save(name="fast", deployments=[DeploymentSpec("victim", "m")], actor="t")
    with pytest.raises(services.ProviderError):
        services.completion(HI, model="fast")
    with pytest.raises(services.ProviderError):
        async_to_sync(services.acompletion)(HI, model="fast")
    assert upstream.requests == []


def test_one_private_address_among_public_ones_refuses_the_host(rebind, upstream):
    # A resolver answering [public, private] hopes only the first is checked.
    provider = rebind(CHECKED_ADDRESS, "10.0.0.5", after_one_check=True)
    result = services.provider_test(provider=provider)
    assert _refusal("10.0.0.5", validators.ADDRESS_PRIVATE) in result.message
    assert upstream.requests == []


def test_ipv4_mapped_ipv6_answer_for_loopback_is_refused(rebind, upstream):
    rebind("::ffff:127.0.0.1")
    with pytest.raises(services.ProviderError) as caught:
        services.completion(HI, model="victim/m")
    assert "loopback address" in str(caught.value)
    assert upstream.requests == []


def test_connection_goes_to_the_address_that_was_checked_after_one_lookup(
    rebind, upstream, monkeypatch
):
    provider = rebind(CHECKED_ADDRESS)
    # The pinned transport's own lookup: the first answer is the upstream (listed here), any
    # second lookup would get the metadata service. One lookup, one address, used as is.
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    lookups = []

    def resolve(host):
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    monkeypatch.setattr(outbound, "resolve_host", resolve)
    monkeypatch.setattr(
        addresses, "allowed_private_hosts", lambda: [ipaddress.ip_network("127.0.0.1/32")]
    )
    response = services.completion(HI, model=f"{provider.name}/m")
    assert response.choices[0].message.content == upstream.reply_text
    assert lookups == ["rebind.test"]
    # The request still names the host it was meant for.
    assert upstream.last.headers["host"] == f"rebind.test:{upstream.base_url.rsplit(':', 1)[1]}"


def test_proxy_from_the_environment_cannot_bypass_pinning(
    make_provider, upstream, upstream_factory, monkeypatch
):
    # A proxy resolves the name itself, after our check: it must never be used.
    proxy = upstream_factory("proxy")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for kind, suffix in (("openai", "/v1"), ("anthropic", "")):
        make_provider(name=kind, kind=kind, base_url=upstream.base_url + suffix)
        services.completion(HI, model=f"{kind}/m")
        async_to_sync(services.acompletion)(HI, model=f"{kind}/m")
    assert proxy.requests == []
    assert len(upstream.requests) == 4


# --- TLS: the socket goes to the pinned address, the certificate is checked for the name. ---


def _certificate(name: str) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key), all PEM, for `name`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "routing test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append((self.server.sni, self.headers["Host"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_server(tmp_path):
    servers = []

    def start(certificate_name: str) -> tuple[int, ssl.SSLContext]:
        ca, cert, key = _certificate(certificate_name)
        (tmp_path / "cert.pem").write_bytes(cert)
        (tmp_path / "key.pem").write_bytes(key)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        server.seen, server.sni = [], None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

        def remember(sock, name, ctx):
            server.sni = name

        context.sni_callback = remember
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        client_context = ssl.create_default_context(cadata=ca.decode())
        return server, client_context

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_tls_certificate_is_checked_for_the_host_name_not_the_pinned_address(
    dns, settings, tls_server
):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["llm.test"]
    dns["llm.test"] = [["127.0.0.1"]]
    server, trust = tls_server("llm.test")
    port = server.server_address[1]
    with outbound.client(timeout=10, verify=trust) as client:
        response = client.get(f"https://llm.test:{port}/v1/models")
    assert response.text == "ok"
    assert server.seen == [("llm.test", f"llm.test:{port}")]  # SNI and Host: the name


def test_tls_certificate_for_another_name_is_refused_at_the_pinned_address(
    dns, settings, tls_server
):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["llm.test"]
    dns["llm.test"] = [["127.0.0.1"]]
    server, trust = tls_server("other.test")
    with outbound.client(timeout=10, verify=trust) as client, pytest.raises(httpx.ConnectError):
        client.get(f"https://llm.test:{server.server_address[1]}/v1/models")
    assert server.seen == []


def test_loopback_is_reached_only_through_names_that_mean_loopback(dns, settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = []
    dns["ollama.evil.test"] = [["127.0.0.1"]]
    assert outbound.pin("localhost") and outbound.pin("127.0.0.1") and outbound.pin("::1")
    with pytest.raises(outbound.AddressRefused, match="loopback address"):
        outbound.pin("ollama.evil.test")  # a local kind's name that rebinds: refused
    with pytest.raises(outbound.AddressRefused, match="loopback address"):
        outbound.pin("localhost", local=False)  # a caller that knows the kind is remote
    with pytest.raises(outbound.AddressRefused, match="cloud metadata"):
        outbound.pin("169.254.169.254", local=True)  # never, whatever the kind
