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

# Alibaba's metadata service and AWS's IPv6 one sit outside link-local, and Azure's WireServer
# is a public address reachable only from inside Azure, so ranges alone do not catch them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
# Names that only mean something inside a cloud; outside one they do not resolve and would be
# accepted with a warning, so they are refused by name as well.
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
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
        raise _invalid(ADDRESS_METADATA, "address_metadata", address=address)
    if target.is_link_local:
        raise _invalid(ADDRESS_LINK_LOCAL, "address_link_local", address=address)
    if target.is_unspecified:
        raise _invalid(ADDRESS_UNSPECIFIED, "address_unspecified", address=address)
    if target.is_multicast:
        raise _invalid(ADDRESS_MULTICAST, "address_multicast", address=address)
    allowed = (host is not None and host.lower() in listed) or _in_networks(ip, target, listed)
    if target.is_loopback:
        if local or allowed:
            return
        raise _invalid(ADDRESS_LOOPBACK, "address_loopback", address=address)
    # ::/8 is "reserved" and holds ::1 and the IPv4-compatible forms, hence after loopback.
    if target.is_reserved or target in _THIS_NETWORK:
        raise _invalid(ADDRESS_RESERVED, "address_reserved", address=address)
    if allowed:
        return
    # Python counts deprecated site-local fec0::/10 as global.
    if not target.is_global or getattr(target, "is_site_local", False):
        raise _invalid(ADDRESS_PRIVATE, "address_private", address=address)


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
    return (local and target.is_loopback) or _in_networks(ip, target, listed)


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
