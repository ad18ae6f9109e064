"""The connect-time checks: check_address for each resolved address, and resolve_host."""

import ipaddress
import socket

import pytest

from providers import addresses
from providers import validators as v
from tests.providers.validators.conftest import error, real_resolve_host

# --- check_address, for connect time. ---


@pytest.mark.parametrize(
    "ip", ["93.184.216.34", "2606:4700:4700::1111", ipaddress.ip_address("8.8.8.8")]
)
def test_check_address_accepts_public_addresses(ip):
    assert v.check_address(ip, local=False) is None


@pytest.mark.parametrize(
    ("ip", "code"),
    [
        ("169.254.169.254", "address_metadata"),
        ("fd00:ec2::254%eth0", "address_metadata"),
        ("fe80::1", "address_link_local"),
        ("0.0.0.0", "address_unspecified"),
        ("224.0.0.251", "address_multicast"),
        ("255.255.255.255", "address_reserved"),
        ("127.0.0.1", "address_loopback"),
        ("::ffff:10.0.0.1", "address_private"),
        ("100.64.1.1", "address_private"),
    ],
)
def test_check_address_rejects_forbidden_address_at_connect_time(ip, code):
    assert error(v.check_address, ip, local=False).code == code


def test_check_address_allows_loopback_for_local_kinds_only():
    v.check_address("127.0.0.1", local=True)
    v.check_address("::1", local=True)

    assert error(v.check_address, "::1", local=False).message == v.ADDRESS_LOOPBACK


def test_check_address_honours_a_name_listed_in_settings(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["llm.internal"]

    v.check_address("10.0.0.5", local=False, host="LLM.internal")

    err = error(v.check_address, "10.0.0.5", local=False, host="other.internal")
    assert "other.internal (resolves to 10.0.0.5)" in err.messages[0]


# --- resolve_host. ---


def test_resolve_host_returns_each_address_once(monkeypatch):
    def getaddrinfo(host, port, type=0):
        assert host == "api.example.com"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800:220:1::1", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    assert real_resolve_host("api.example.com") == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1::1"),
    ]


@pytest.mark.parametrize(
    "failure", [socket.gaierror(-2, "Name or service not known"), UnicodeError()]
)
def test_resolve_host_raises_oserror_when_name_does_not_resolve(monkeypatch, failure):
    def getaddrinfo(host, port, type=0):
        raise failure

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    with pytest.raises(OSError):
        real_resolve_host("nowhere.invalid")


# --- The small rules the settings checks, the login throttle and the first-run page share. ---


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST", "ollama.localhost", "127.0.0.1", "127.9.9.9", "[::1]", "::1"],
)
def test_loopback_hosts_by_spelling(host):
    assert addresses.is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["localhost.example.com", "10.0.0.1", "[::2]", "example.com", "", "127.0.0.1.nip.io"]
)
def test_other_hosts_are_not_loopback_by_spelling(host, dns):
    assert not addresses.is_loopback_host(host)
    assert dns.lookups == []  # nothing is resolved


def test_an_ipv4_mapped_address_is_read_as_its_ipv4_address():
    mapped = ipaddress.ip_address("::ffff:127.0.0.1")
    assert addresses.unmapped(mapped) == ipaddress.ip_address("127.0.0.1")
    assert addresses.unmapped(mapped).is_loopback
    other = ipaddress.ip_address("2001:db8::1")
    assert addresses.unmapped(other) is other


def test_network_list_parses_ips_and_networks_and_returns_the_rest():
    entries = ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "proxy", "1.2.3"]
    networks, bad = addresses.network_list(entries)
    assert [str(n) for n in networks] == ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]
    assert bad == ("proxy", "1.2.3")
