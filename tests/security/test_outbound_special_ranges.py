"""Every non-global range of IANA's special-purpose registries, and every cloud metadata
address and name, is refused both when a base URL is saved (validators) and when the
server connects (outbound.pin, which every provider call goes through), whatever the
interpreter's own ipaddress tables say (issue 12: Python 3.12.1 counts 192.0.0.0/24, where
Oracle Cloud's metadata service lives, as global)."""

import ipaddress
import socket

import httpx
import pytest
from django.core.exceptions import ValidationError

from providers import addresses, validators
from providers.routing import outbound

pytestmark = pytest.mark.django_db

# One address inside each entry of addresses.SPECIAL_PURPOSE_RANGES (the most specific entry
# holding it is that one), and the code it is refused with for a remote kind.
SAMPLES = {
    "0.0.0.0/8": ("0.1.2.3", "address_reserved"),
    "0.0.0.0/32": ("0.0.0.0", "address_unspecified"),
    "10.0.0.0/8": ("10.1.2.3", "address_private"),
    "100.64.0.0/10": ("100.64.0.1", "address_private"),
    "127.0.0.0/8": ("127.0.0.2", "address_loopback"),
    "169.254.0.0/16": ("169.254.1.1", "address_link_local"),
    "172.16.0.0/12": ("172.16.5.4", "address_private"),
    "192.0.0.0/24": ("192.0.0.100", "address_private"),
    "192.0.0.0/29": ("192.0.0.1", "address_private"),
    "192.0.0.8/32": ("192.0.0.8", "address_private"),
    "192.0.0.170/32": ("192.0.0.170", "address_private"),
    "192.0.0.171/32": ("192.0.0.171", "address_private"),
    "192.0.2.0/24": ("192.0.2.1", "address_private"),
    "192.88.99.0/24": ("192.88.99.1", "address_reserved"),
    "192.168.0.0/16": ("192.168.1.1", "address_private"),
    "198.18.0.0/15": ("198.19.0.1", "address_private"),
    "198.51.100.0/24": ("198.51.100.7", "address_private"),
    "203.0.113.0/24": ("203.0.113.7", "address_private"),
    "224.0.0.0/4": ("239.1.1.1", "address_multicast"),
    "240.0.0.0/4": ("240.0.0.1", "address_reserved"),
    "255.255.255.255/32": ("255.255.255.255", "address_reserved"),
    "::/0": ("4000::1", "address_reserved"),
    "::/128": ("::", "address_unspecified"),
    "::1/128": ("::1", "address_loopback"),
    "64:ff9b:1::/48": ("64:ff9b:1::1", "address_private"),
    "100::/64": ("100::1", "address_reserved"),
    "100:0:0:1::/64": ("100:0:0:1::1", "address_reserved"),
    "2001::/23": ("2001:100::1", "address_private"),
    "2001::/32": ("2001::1", "address_private"),
    "2001:2::/48": ("2001:2::1", "address_private"),
    "2001:db8::/32": ("2001:db8::1", "address_private"),
    "3fff::/20": ("3fff::1", "address_private"),
    "5f00::/16": ("5f00::1", "address_private"),
    "fc00::/7": ("fd12:3456::1", "address_private"),
    "fe80::/10": ("fe80::1", "address_link_local"),
    "fec0::/10": ("fec0::1", "address_private"),
    "ff00::/8": ("ff02::1", "address_multicast"),
    "2000::/3": ("2606:4700:4700::1111", None),
}
MESSAGES = {
    "address_reserved": validators.ADDRESS_RESERVED,
    "address_unspecified": validators.ADDRESS_UNSPECIFIED,
    "address_private": validators.ADDRESS_PRIVATE,
    "address_loopback": validators.ADDRESS_LOOPBACK,
    "address_link_local": validators.ADDRESS_LINK_LOCAL,
    "address_multicast": validators.ADDRESS_MULTICAST,
    "address_metadata": validators.ADDRESS_METADATA,
}
NEVER_LISTABLE = {"address_reserved", "address_unspecified", "address_link_local"}
NEVER_LISTABLE |= {"address_multicast", "address_metadata"}
RANGES = [
    pytest.param(cidr, *SAMPLES[cidr], id=cidr) for cidr, _, _ in addresses.SPECIAL_PURPOSE_RANGES
]
METADATA = sorted(addresses.METADATA_SERVICES)


@pytest.fixture(autouse=True)
def nothing_listed(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = []


@pytest.fixture
def dns(monkeypatch):
    """{name: address}: what the system resolver answers for those test names."""
    table: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in table:
            return real(host, port, *args, **kwargs)
        a = table[name]
        family = socket.AF_INET6 if ":" in a else socket.AF_INET
        sockaddr = (a, int(port or 0), 0, 0) if ":" in a else (a, int(port or 0))
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def interpreter_says_global(monkeypatch):
    """An interpreter whose ipaddress tables call every address public (as 3.12.1 does for
    192.0.0.0/24): the checks must not depend on them."""
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for flag, value in (
            ("is_global", True),
            ("is_private", False),
            ("is_reserved", False),
            ("is_link_local", False),
            ("is_multicast", False),
            ("is_unspecified", False),
            ("is_site_local", False),
        ):
            if hasattr(cls, flag):
                monkeypatch.setattr(cls, flag, property(lambda self, v=value: v))


def _url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/v1"


def _saved(url: str, *, local: bool = False) -> ValidationError | None:
    try:
        validators.validate_base_url(url, local=local)
    except ValidationError as exc:
        return exc
    return None


def _connected(host: str, *, local: bool | None = False) -> str | None:
    try:
        outbound.pin(host, local=local)
    except outbound.AddressRefused as exc:
        return str(exc)
    return None


def _reason(code: str) -> str:
    """The part of a refusal's message that names the reason (after the address)."""
    return MESSAGES[code].split("%(address)s", 1)[1][:60]


def test_every_range_of_the_table_has_a_sample_here():
    assert sorted(SAMPLES) == sorted(cidr for cidr, _, _ in addresses.SPECIAL_PURPOSE_RANGES)
    for cidr, (address, _) in SAMPLES.items():
        assert ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


@pytest.mark.usefixtures("interpreter_says_global")
@pytest.mark.parametrize(("cidr", "address", "code"), RANGES)
def test_each_special_range_is_refused_at_save_time(cidr, address, code):
    err = _saved(_url(address))
    if code is None:
        assert err is None
        return
    assert err is not None and (err.code, err.message) == (code, MESSAGES[code])
    assert address in err.messages[0]


@pytest.mark.usefixtures("interpreter_says_global")
@pytest.mark.parametrize(("cidr", "address", "code"), RANGES)
def test_each_special_range_is_refused_at_connect_time(dns, cidr, address, code):
    dns["special.test"] = address
    for host in ("special.test", address):
        refused = _connected(host)
        if code is None:
            assert refused is None
            continue
        assert refused is not None and _reason(code) in refused, refused


@pytest.mark.parametrize(("cidr", "address", "code"), RANGES)
def test_listing_a_network_opens_only_the_private_ranges(settings, dns, cidr, address, code):
    if code is None:
        return
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [cidr]
    dns["special.test"] = address
    err, refused = _saved(_url(address)), _connected("special.test")
    if code in NEVER_LISTABLE:
        assert err is not None and err.code == code
        assert refused is not None and _reason(code) in refused
    else:
        assert (err, refused) == (None, None)


def test_oracle_cloud_metadata_is_refused_although_the_interpreter_calls_it_global(dns):
    dns["oci.example.com"] = "192.0.0.192"
    err = _saved("https://192.0.0.192/opc/v2/instance/")

    assert err is not None and err.code == "address_metadata"
    assert _saved("https://oci.example.com/v1").code == "address_metadata"
    with pytest.raises(httpx.ConnectError) as exc_info:
        outbound.client(timeout=5).get("https://oci.example.com/opc/v2/instance/")
    assert _reason("address_metadata") in outbound.refusal(exc_info.value)


@pytest.mark.usefixtures("interpreter_says_global")
@pytest.mark.parametrize("address", METADATA)
def test_metadata_addresses_are_refused_listed_or_not_local_or_not(settings, dns, address):
    network = ipaddress.ip_network(address).supernet(new_prefix=8 if "." in address else 16)
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [str(network), "meta.test"]
    dns["meta.test"] = address
    for local in (False, True):
        for url in (_url(address), "https://meta.test/v1"):
            err = _saved(url, local=local)
            assert err is not None and err.code == "address_metadata", url
        for host in ("meta.test", address):
            assert _reason("address_metadata") in _connected(host, local=local)


@pytest.mark.parametrize("host", sorted(addresses.METADATA_HOSTNAMES))
def test_metadata_names_are_refused_without_asking_dns(dns, host):
    # Resolving to a public address, as Equinix's does: the name alone is the refusal.
    dns[host] = "8.8.8.8"
    err = _saved(f"https://{host}/v1")

    assert err is not None and err.code == "address_metadata"
    assert _reason("address_metadata") in _connected(host)
    assert _reason("address_metadata") in _connected(host + ".")
