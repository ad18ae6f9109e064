"""Where this server may connect: the SSRF checks behind every base URL and outbound call.

The server calls provider base URLs with stored API keys, so whoever can save a base URL can
make the server send requests (with secrets) to an address of their choosing. SSRF is the
main threat; every check here refuses what it cannot prove harmless. validators.py checks a
base URL's spelling and asks this module about its host; outbound.py asks again, address by
address, when it connects.
"""

import ipaddress
import re
import socket

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# --- Messages. Each says what is wrong and how to fix it; tests assert on these. ---

ADDRESS_METADATA = (
    "%(address)s is a cloud metadata service, which could hand out this server's cloud "
    "credentials, so it is never allowed; use the provider's real API URL."
)
ADDRESS_LINK_LOCAL = (
    "%(address)s is a link-local address (169.254.0.0/16 or fe80::/10), which is never "
    "allowed because cloud metadata services live there; use the provider's real API URL."
)
ADDRESS_UNSPECIFIED = (
    "%(address)s is the unspecified address (0.0.0.0 or ::), not a real destination; "
    "to reach a server on this machine use 127.0.0.1 (or ::1)."
)
ADDRESS_MULTICAST = (
    "%(address)s is a multicast address, which cannot serve an API; "
    "use the provider's own host name or IP address."
)
ADDRESS_RESERVED = (
    "%(address)s is a reserved or broadcast address, which cannot serve an API; "
    "use the provider's own host name or IP address."
)
ADDRESS_LOOPBACK = (
    "%(address)s is a loopback address (this server itself), which only local provider "
    "kinds (Ollama, LM Studio, vLLM) may use; pick a local kind, use the provider's public "
    "https:// URL, or ask an administrator to list the host in ROUTING_ALLOWED_PRIVATE_HOSTS."
)
ADDRESS_PRIVATE = (
    "%(address)s is a private or otherwise non-public network address; use the provider's "
    "public https:// URL, or ask an administrator to add the host or its network to "
    "ROUTING_ALLOWED_PRIVATE_HOSTS."
)
UNRESOLVED_WARNING = (
    "%(host)s could not be resolved right now; the URL was accepted and the address will be "
    "checked again when the app connects."
)
ALLOWED_HOSTS_NOT_A_LIST = (
    "ROUTING_ALLOWED_PRIVATE_HOSTS must be a list of strings, e.g. ['10.0.0.0/8', 'llm.internal']."
)
ALLOWED_HOSTS_BAD_ENTRY = (
    "ROUTING_ALLOWED_PRIVATE_HOSTS entry %r is not a host name, IP address or CIDR network; "
    "use entries like 'llm.internal', '10.0.0.5' or '10.0.0.0/8'."
)

# --- What is forbidden. ---

# The non-global ranges of IANA's IPv4 and IPv6 Special-Purpose Address Registries
# (RFC 6890 and later; "Globally Reachable" False or N/A), plus the multicast blocks and
# IPv6's deprecated site-local range. One table, read here and nowhere else: the
# interpreter's is_global/is_private tables are not consulted, since they differ between
# Python releases (3.12.1 counts 192.0.0.0/24, home of Oracle Cloud's metadata service, as
# global). The most specific entry wins; what is in no entry (or in "global") is public.
# How each kind is treated: "unspecified", "link_local", "multicast" and "reserved" are never
# allowed, "loopback" is for local kinds, "private" for hosts listed in
# ROUTING_ALLOWED_PRIVATE_HOSTS. The few globally reachable assignments inside 192.0.0.0/24
# and 2001::/23 (anycast services) stay refused with their block: no API lives there.
# Entries follow iana.org/assignments/iana-ipv4-special-registry and
# iana-ipv6-special-registry as of RFC 9602, 9637 and 9780; a new entry goes here.
SPECIAL_PURPOSE_RANGES: tuple[tuple[str, str, str], ...] = (
    # IPv4
    ("0.0.0.0/8", '"This network"', "reserved"),
    ("0.0.0.0/32", '"This host on this network"', "unspecified"),
    ("10.0.0.0/8", "Private-Use", "private"),
    ("100.64.0.0/10", "Shared Address Space", "private"),
    ("127.0.0.0/8", "Loopback", "loopback"),
    ("169.254.0.0/16", "Link Local", "link_local"),
    ("172.16.0.0/12", "Private-Use", "private"),
    ("192.0.0.0/24", "IETF Protocol Assignments", "private"),
    ("192.0.0.0/29", "IPv4 Service Continuity Prefix", "private"),
    ("192.0.0.8/32", "IPv4 dummy address", "private"),
    ("192.0.0.170/32", "NAT64/DNS64 Discovery", "private"),
    ("192.0.0.171/32", "NAT64/DNS64 Discovery", "private"),
    ("192.0.2.0/24", "Documentation (TEST-NET-1)", "private"),
    ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "reserved"),
    ("192.168.0.0/16", "Private-Use", "private"),
    ("198.18.0.0/15", "Benchmarking", "private"),
    ("198.51.100.0/24", "Documentation (TEST-NET-2)", "private"),
    ("203.0.113.0/24", "Documentation (TEST-NET-3)", "private"),
    ("224.0.0.0/4", "Multicast (IPv4 Multicast Address Space)", "multicast"),
    ("240.0.0.0/4", "Reserved", "reserved"),
    ("255.255.255.255/32", "Limited Broadcast", "reserved"),
    # IPv6. ::ffff:0:0/96 (IPv4-mapped), 64:ff9b::/96 (IPv4-IPv6 Translat.) and 2002::/16
    # (6to4) are checked as the IPv4 address they embed (_embedded_ipv4).
    ("::/0", "Reserved by IETF (IPv6 Address Space)", "reserved"),
    ("2000::/3", "Global Unicast (IPv6 Address Space)", "global"),
    ("::/128", "Unspecified Address", "unspecified"),
    ("::1/128", "Loopback Address", "loopback"),
    ("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "private"),
    ("100::/64", "Discard-Only Address Block", "reserved"),
    ("100:0:0:1::/64", "Dummy IPv6 Prefix", "reserved"),
    ("2001::/23", "IETF Protocol Assignments", "private"),
    ("2001::/32", "TEREDO", "private"),
    ("2001:2::/48", "Benchmarking", "private"),
    ("2001:db8::/32", "Documentation", "private"),
    ("3fff::/20", "Documentation", "private"),
    ("5f00::/16", "Segment Routing (SRv6) SIDs", "private"),
    ("fc00::/7", "Unique-Local", "private"),
    ("fe80::/10", "Link-Local Unicast", "link_local"),
    ("fec0::/10", "Site-Local (deprecated, RFC 3879)", "private"),
    ("ff00::/8", "Multicast (IPv6 Multicast Address Space)", "multicast"),
)
_SPECIAL = sorted(
    ((ipaddress.ip_network(cidr), name, kind) for cidr, name, kind in SPECIAL_PURPOSE_RANGES),
    key=lambda entry: -entry[0].prefixlen,
)


def special_purpose(ip: IPAddress) -> tuple[str, str] | None:
    """(kind, "name (network)") of the most specific special-purpose range holding `ip`."""
    for network, name, kind in _SPECIAL:
        if ip.version == network.version and ip in network:
            return None if kind == "global" else (kind, f"{name}, {network}")
    return None


# Cloud metadata services, never allowed whatever is listed: the ones outside link-local
# (Alibaba, Oracle, the IPv6 endpoints, Azure's WireServer: a public address reachable only
# from inside Azure) are not caught by the ranges at all, and a listed ULA or CGNAT network
# must not open them.
METADATA_SERVICES: dict[str, str] = {
    "169.254.169.254": "AWS, Azure, GCP, DigitalOcean, Hetzner, Huawei, OpenStack, Oracle, "
    "Vultr, IBM, Linode",
    "169.254.170.2": "AWS ECS task credentials",
    "169.254.170.23": "AWS EKS Pod Identity",
    "fd00:ec2::254": "AWS IPv6",
    "fd00:ec2::23": "AWS EKS Pod Identity IPv6",
    "192.0.0.192": "Oracle Cloud",
    "fd00:c1::a9fe:a9fe": "Oracle Cloud IPv6",
    "100.100.100.200": "Alibaba Cloud",
    "168.63.129.16": "Azure WireServer",
    "fd20:ce::254": "GCP IPv6",
    "169.254.0.23": "Tencent Cloud",
    "169.254.42.42": "Scaleway",
    "fd00:42::42": "Scaleway IPv6",
    "fd00:a9fe:a9fe::1": "Linode IPv6",
}
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in METADATA_SERVICES)
# Names that only mean something inside a cloud; outside one they do not resolve and would be
# accepted with a warning (or, for Equinix's, resolve to a public address), so they are
# refused by name as well.
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "api.metadata.cloud.ibm.com",
        "metadata.platformequinix.com",
        "metadata.packet.net",
    }
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Underscores are not valid in DNS names but Docker Compose service names use them.
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# URL parsers treat a host whose last label is a number as an IPv4 address in any base.
NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0x[0-9a-f]*")


def _invalid(message: str, code: str, **params: object) -> ValidationError:
    return ValidationError(message, code=code, params=params or None)


# --- Host names. ---


def is_host_name(host: str) -> bool:
    labels = host.split(".")
    return (
        len(host) <= 253
        and not NUMERIC_LABEL_RE.fullmatch(labels[-1])
        and all(_LABEL_RE.fullmatch(label) for label in labels)
    )


def resolve_host(host: str) -> list[IPAddress]:
    """Every address `host` resolves to, in resolver order; OSError when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        # The IDNA codec refuses some names before any lookup; to callers that is "no such name".
        raise OSError(f"cannot resolve {host!r}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = _without_scope(ipaddress.ip_address(info[4][0]))
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise OSError(f"{host!r} resolved to no addresses")
    return addresses


def unmapped(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) as the IPv4 address it carries; any
    other address as it is."""
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped else ip


def is_loopback_host(host: str) -> bool:
    """Loopback by its very spelling: localhost, *.localhost, or a loopback IP literal
    (brackets allowed). Nothing is resolved."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def network_list(entries) -> tuple[tuple[IPNetwork, ...], tuple[str, ...]]:
    """Entries that are IPs or CIDR networks (a bare IP is a /32): the networks, and the
    entries that are neither, for whoever reports them."""
    networks, bad = [], []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except (TypeError, ValueError):
            bad.append(entry)
    return tuple(networks), tuple(bad)


def allowed_private_hosts() -> list[str | IPNetwork]:
    """ROUTING_ALLOWED_PRIVATE_HOSTS as lower-cased names and networks (a bare IP is a /32)."""
    entries = getattr(settings, "ROUTING_ALLOWED_PRIVATE_HOSTS", [])
    if not isinstance(entries, list | tuple | set | frozenset):
        # A bare string would otherwise be read character by character.
        raise ImproperlyConfigured(ALLOWED_HOSTS_NOT_A_LIST)
    parsed: list[str | IPNetwork] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ImproperlyConfigured(ALLOWED_HOSTS_BAD_ENTRY % (entry,))
        text = entry.strip().lower().removeprefix("[").removesuffix("]")
        try:
            parsed.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            if not is_host_name(text):
                raise ImproperlyConfigured(ALLOWED_HOSTS_BAD_ENTRY % (entry,)) from None
            parsed.append(text)
    return parsed


# --- Addresses. ---


def check_address(ip: IPAddress | str, *, local: bool, host: str | None = None) -> None:
    """Refuse an address this server must not connect to.

    `host` is the name `ip` was resolved from, if any: a name listed in
    ROUTING_ALLOWED_PRIVATE_HOSTS may use private addresses, and it makes messages clearer.
    """
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    _check_address(ip, local=local, host=host, listed=allowed_private_hosts())


def _check_address(
    ip: IPAddress, *, local: bool, host: str | None, listed: list[str | IPNetwork]
) -> None:
    ip = _without_scope(ip)
    embedded = _embedded_ipv4(ip)
    target = ip if embedded is None else embedded
    address = str(ip) if embedded is None else f"{ip} (IPv6 form of {embedded})"
    if host is not None:
        address = f"{host} (resolves to {address})"
    # Listing cannot unlock these: there is no legitimate API behind them.
    if target in METADATA_ADDRESSES:
        service = METADATA_SERVICES[str(target)]
        raise _invalid(ADDRESS_METADATA, "address_metadata", address=address, service=service)
    special = special_purpose(target)
    if special is None:
        return
    kind, where = special
    if kind in _NEVER:
        message, code = _NEVER[kind]
        raise _invalid(message, code, address=address, range=where)
    allowed = (host is not None and host.lower() in listed) or _in_networks(ip, target, listed)
    if allowed or (kind == "loopback" and local):
        return
    if kind == "loopback":
        raise _invalid(ADDRESS_LOOPBACK, "address_loopback", address=address)
    raise _invalid(ADDRESS_PRIVATE, "address_private", address=address, range=where)


_NEVER = {
    "link_local": (ADDRESS_LINK_LOCAL, "address_link_local"),
    "unspecified": (ADDRESS_UNSPECIFIED, "address_unspecified"),
    "multicast": (ADDRESS_MULTICAST, "address_multicast"),
    "reserved": (ADDRESS_RESERVED, "address_reserved"),
}


def _without_scope(ip: IPAddress) -> IPAddress:
    # A zone ID makes fd00:ec2::254%eth0 compare unequal to fd00:ec2::254.
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(int(ip))
    return ip


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a mapped, NAT64 or 6to4 IPv6 address actually reaches."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _in_networks(ip: IPAddress, target: IPAddress, listed: list[str | IPNetwork]) -> bool:
    return any(ip in entry or target in entry for entry in listed if not isinstance(entry, str))


def _http_allowed(ip: IPAddress, *, local: bool, listed: list[str | IPNetwork]) -> bool:
    embedded = _embedded_ipv4(ip)
    target = ip if embedded is None else embedded
    special = special_purpose(target)
    loopback = special is not None and special[0] == "loopback"
    return (local and loopback) or _in_networks(ip, target, listed)


# --- The host of a base URL. ---


def check_base_url_host(
    host: str, ip: IPAddress | None, *, local: bool
) -> tuple[bool, tuple[str, ...]]:
    """Check where a base URL points (`ip` is set when its host is an IP address literal).

    Returns whether plain http is allowed there, and warnings.
    """
    listed = allowed_private_hosts()
    if ip is not None:
        _check_address(ip, local=local, host=None, listed=listed)
        return _http_allowed(ip, local=local, listed=listed), ()
    return _check_host_name(host, local=local, listed=listed)


def _check_host_name(
    host: str, *, local: bool, listed: list[str | IPNetwork]
) -> tuple[bool, tuple[str, ...]]:
    """Check a host name's addresses; returns whether http is allowed, and warnings."""
    if host in METADATA_HOSTNAMES:
        raise _invalid(ADDRESS_METADATA, "address_metadata", address=host)
    name_listed = host in listed
    if host == "localhost" and (local or name_listed):
        return True, ()
    # RFC 6761 reserves *.localhost for loopback; remote kinds may not rely on DNS to say so.
    if (host == "localhost" or host.endswith(".localhost")) and not (local or name_listed):
        raise _invalid(ADDRESS_LOOPBACK, "address_loopback", address=host)
    try:
        addresses = resolve_host(host)
    except OSError:
        return name_listed, (UNRESOLVED_WARNING % {"host": host},)
    for ip in addresses:
        _check_address(ip, local=local, host=host, listed=listed)
    http_ok = name_listed or all(_http_allowed(ip, local=local, listed=listed) for ip in addresses)
    return http_ok, ()
