"""Checks for values that end up in the requests this server makes: base URLs, names, headers.

Forms, models and the command line share these. Whether a base URL's host may be connected to
at all (the SSRF checks) is decided in addresses.py; its messages and functions are
importable from here too.
"""

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from django.core.exceptions import ValidationError

# The address (SSRF) checks live in addresses.py; callers and tests import them from here too.
from .addresses import (  # noqa: F401
    ADDRESS_LINK_LOCAL,
    ADDRESS_LOOPBACK,
    ADDRESS_METADATA,
    ADDRESS_MULTICAST,
    ADDRESS_PRIVATE,
    ADDRESS_RESERVED,
    ADDRESS_UNSPECIFIED,
    ALLOWED_HOSTS_BAD_ENTRY,
    ALLOWED_HOSTS_NOT_A_LIST,
    METADATA_ADDRESSES,
    METADATA_HOSTNAMES,
    NUMERIC_LABEL_RE,
    UNRESOLVED_WARNING,
    IPAddress,
    IPNetwork,
    allowed_private_hosts,
    check_address,
    check_base_url_host,
    is_host_name,
    resolve_host,
)

MAX_URL_LENGTH = 2000
MAX_MODEL_ID_LENGTH = 200
MAX_PROVIDER_NAME_LENGTH = 63

# --- Messages. Each says what is wrong and how to fix it; tests assert on these. ---

URL_REQUIRED = "Enter a base URL, e.g. https://api.openai.com/v1."
URL_TOO_LONG = (
    "Base URL is longer than %(max)d characters; use the provider's API base URL, "
    "e.g. https://api.openai.com/v1."
)
URL_WHITESPACE = (
    "Base URL contains spaces, line breaks or other invisible characters; "
    "remove them and paste the URL again."
)
URL_NOT_ASCII = (
    "Base URL contains non-ASCII characters; write international host names in their "
    "xn-- (punycode) form and percent-encode other characters."
)
URL_BACKSLASH = "Base URL contains a backslash (\\); use forward slashes (/) only."
URL_FRAGMENT = "Base URL must not contain a fragment (#...); remove everything from the # on."
URL_QUERY = (
    "Base URL must not contain a query string (?...): a base URL is only scheme, host, "
    "optional port and path. Remove everything from the ? on; API keys go in the API key "
    "field and extra parameters in headers."
)
SCHEME_MISSING = (
    "Base URL must start with https:// (or http:// for a local provider), "
    "e.g. https://api.openai.com/v1."
)
SCHEME_UNSUPPORTED = (
    "Base URL scheme %(scheme)s:// is not supported; use https:// "
    "(or http:// for a local provider)."
)
HTTPS_REQUIRED = (
    "Base URL must use https:// (plain http is only allowed for local providers on this "
    "machine or hosts listed in ROUTING_ALLOWED_PRIVATE_HOSTS)."
)
USERINFO = (
    "Base URL must not contain a user name or password (the part before @); remove it "
    "and put the API key in the API key field instead."
)
HOST_REQUIRED = (
    "Base URL has no host; write it as https://host/path, e.g. https://api.openai.com/v1."
)
HOST_INVALID = (
    "Base URL host is not a valid host name; use letters, digits, hyphens and dots "
    "(e.g. api.openai.com), and put IPv6 addresses in brackets (e.g. http://[::1]:11434)."
)
HOST_TRAILING_DOT = (
    "Base URL host %(host)s ends with a dot; remove the trailing dot "
    "(e.g. api.openai.com rather than api.openai.com.)."
)
HOST_NUMERIC_NOT_CANONICAL = (
    "Base URL host %(host)s looks like an IP address in a non-standard spelling; write IPv4 "
    "addresses in dotted-decimal: four numbers from 0 to 255 without leading zeros "
    "(e.g. 192.0.2.10)."
)
IPV6_INVALID = (
    "The bracketed host in the base URL is not a valid IPv6 address (zone IDs such as "
    "%eth0 are not supported); write it like http://[::1]:11434."
)
PORT_INVALID = (
    "Base URL port must be a number from 1 to 65535, e.g. https://llm.example.com:8443/v1."
)

MODEL_ID_REQUIRED = "Enter a model ID, e.g. gpt-4o-mini or llama3.1:8b."
MODEL_ID_TOO_LONG = (
    "Model ID is longer than %(max)d characters; use the model name exactly as the provider "
    "lists it, e.g. gpt-4o-mini."
)
MODEL_ID_INVALID = (
    "Model ID must start with a letter or digit and contain only letters, digits and . _ : / - "
    "(no spaces), e.g. gpt-4o-mini or meta-llama/Llama-3.1-8B-Instruct."
)
MODEL_ID_DOTDOT = (
    "Model ID must not contain '..'; use the model name exactly as the provider lists it, "
    "e.g. llama3.1:8b."
)

PROVIDER_NAME_REQUIRED = "Enter a provider name, e.g. openai-prod."
PROVIDER_NAME_TOO_LONG = (
    "Provider name is longer than %(max)d characters; use a short name, e.g. openai-prod."
)
PROVIDER_NAME_INVALID = (
    "Provider name may only contain lower-case letters, digits, - and _, and must start with "
    "a letter or digit, e.g. openai-prod."
)

HEADER_NAME_REQUIRED = "Enter a header name, e.g. X-Org-Id."
HEADER_NAME_INVALID = (
    "Header name may only contain letters, digits and !#$%&'*+-.^_`|~ (no spaces or colons); "
    "enter just the name, e.g. X-Org-Id, and put the value in the value field."
)
HEADER_NAME_FORBIDDEN = (
    "The %(name)s header is managed by the HTTP client and cannot be configured; remove it."
)
HEADER_VALUE_INVALID = (
    "The value for header %(name)s contains a line break, NUL or other control character; "
    "enter it again as a single line."
)
HEADER_VALUE_NOT_ASCII = (
    "The value for header %(name)s contains non-ASCII characters, which HTTP headers cannot "
    "carry reliably; use plain ASCII text."
)

# --- What is forbidden. ---

# Header names the HTTP client owns: letting a user set them allows request smuggling or
# sending the request (and its API key) to a different virtual host.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_OCTET_RE = re.compile(r"0|[1-9][0-9]{0,2}")
_MODEL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
_PROVIDER_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
# Control, format and unassigned characters, and Unicode line and paragraph separators.
_BREAKING = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class BaseURL:
    url: str
    scheme: str
    host: str
    port: int | None
    warnings: tuple[str, ...] = ()


def _invalid(message: str, code: str, **params: object) -> ValidationError:
    return ValidationError(message, code=code, params=params or None)


# --- Base URLs. ---


def validate_base_url(value: str, *, local: bool) -> BaseURL:
    """Check a provider base URL; `local` is True for kinds that run on this machine."""
    _check_url_text(value)
    scheme, authority, path = _split_url(value)
    host, ip, port = _parse_authority(authority)
    http_ok, warnings = check_base_url_host(host, ip, local=local)
    if scheme == "http" and not http_ok:
        raise _invalid(HTTPS_REQUIRED, "https_required")
    netloc = f"[{host}]" if ip is not None and ip.version == 6 else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return BaseURL(
        url=f"{scheme}://{netloc}{path.rstrip('/')}",
        scheme=scheme,
        host=host,
        port=port,
        warnings=warnings,
    )


def _check_url_text(value: str) -> None:
    if not value:
        raise _invalid(URL_REQUIRED, "required")
    if len(value) > MAX_URL_LENGTH:
        raise _invalid(URL_TOO_LONG, "url_too_long", max=MAX_URL_LENGTH)
    # Category C covers control, format (zero-width, bidi) and unassigned characters.
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in value):
        raise _invalid(URL_WHITESPACE, "url_whitespace")
    # Non-ASCII hosts get IDNA-mapped by clients (fullwidth digits become an IP address).
    if not value.isascii():
        raise _invalid(URL_NOT_ASCII, "url_not_ascii")
    # Browsers read \ as /, other parsers do not: the two would disagree on the host.
    if "\\" in value:
        raise _invalid(URL_BACKSLASH, "url_backslash")
    if "#" in value:
        raise _invalid(URL_FRAGMENT, "url_fragment")
    if "?" in value:
        raise _invalid(URL_QUERY, "url_query")


def _split_url(value: str) -> tuple[str, str, str]:
    match = _SCHEME_RE.match(value)
    if match is None:
        raise _invalid(SCHEME_MISSING, "url_scheme")
    scheme = match.group(1).lower()
    if scheme not in ("http", "https"):
        raise _invalid(SCHEME_UNSUPPORTED, "url_scheme", scheme=scheme)
    authority, slash, path = value[match.end() :].partition("/")
    return scheme, authority, slash + path


def _parse_authority(authority: str) -> tuple[str, IPAddress | None, int | None]:
    # Checked first and never echoed: the part before @ is usually a secret.
    if "@" in authority:
        raise _invalid(USERINFO, "url_userinfo")
    if authority.startswith("["):
        literal, bracket, rest = authority[1:].partition("]")
        if not bracket or "%" in literal:
            raise _invalid(IPV6_INVALID, "url_host")
        try:
            ip: IPAddress | None = ipaddress.IPv6Address(literal)
        except ValueError:
            raise _invalid(IPV6_INVALID, "url_host") from None
        host = str(ip)
        if rest and not rest.startswith(":"):
            raise _invalid(HOST_INVALID, "url_host")
    else:
        if authority.count(":") > 1:
            raise _invalid(HOST_INVALID, "url_host")
        host, colon, port_text = authority.partition(":")
        host = host.lower()
        rest = colon + port_text
        if not host:
            raise _invalid(HOST_REQUIRED, "url_host_required")
        ip = _parse_host_name(host)
    port = _parse_port(rest[1:]) if rest else None
    return host, ip, port


def _parse_host_name(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address `host` spells, or None for a host name."""
    if host.endswith("."):
        raise _invalid(HOST_TRAILING_DOT, "url_host", host=host)
    labels = host.split(".")
    if NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        # Only the one spelling everybody agrees on: 0x7f.1, 0177.0.0.1 and 2130706433 all
        # reach 127.0.0.1 through some parser.
        if len(labels) != 4 or not all(
            _OCTET_RE.fullmatch(label) and int(label) <= 255 for label in labels
        ):
            raise _invalid(HOST_NUMERIC_NOT_CANONICAL, "url_host_numeric", host=host)
        return ipaddress.IPv4Address(host)
    if not is_host_name(host):
        raise _invalid(HOST_INVALID, "url_host")
    return None


def _parse_port(text: str) -> int:
    if not _PORT_RE.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise _invalid(PORT_INVALID, "url_port")
    return int(text)


# --- Model IDs, provider names, headers. ---


def validate_model_id(value: str) -> str:
    if not value:
        raise _invalid(MODEL_ID_REQUIRED, "required")
    if len(value) > MAX_MODEL_ID_LENGTH:
        raise _invalid(MODEL_ID_TOO_LONG, "model_id_too_long", max=MAX_MODEL_ID_LENGTH)
    if not _MODEL_ID_RE.fullmatch(value):
        raise _invalid(MODEL_ID_INVALID, "model_id_invalid")
    # Some providers put the model ID in the URL path.
    if ".." in value:
        raise _invalid(MODEL_ID_DOTDOT, "model_id_dotdot")
    return value


def _validate_slug(value: str, *, required: str, too_long: str, invalid: str) -> str:
    if not value:
        raise _invalid(required, "required")
    if len(value) > MAX_PROVIDER_NAME_LENGTH:
        raise _invalid(too_long, "name_too_long", max=MAX_PROVIDER_NAME_LENGTH)
    if not _PROVIDER_NAME_RE.fullmatch(value):
        raise _invalid(invalid, "name_invalid")
    return value


def validate_provider_name(value: str) -> str:
    return _validate_slug(
        value,
        required=PROVIDER_NAME_REQUIRED,
        too_long=PROVIDER_NAME_TOO_LONG,
        invalid=PROVIDER_NAME_INVALID,
    )


def provider_name_from(text: str) -> str:
    """The address name a display name gives (`Together` -> `together`, `Custom Provider`
    -> `custom-provider`, `api.example.com` -> `api-example-com`): lower case, accents
    dropped, every run of other characters one `-`. "" when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower()).strip("-_")
    return slug[:MAX_PROVIDER_NAME_LENGTH].rstrip("-_")


# Groups and tokens follow the provider-name rule, with messages that name what they are.
GROUP_NAME_REQUIRED = "Enter a group name, e.g. fast."
GROUP_NAME_TOO_LONG = "Group name is longer than %(max)d characters; use a short name, e.g. fast."
GROUP_NAME_INVALID = (
    "Group name may only contain lower-case letters, digits, - and _, and must start with "
    "a letter or digit, e.g. fast."
)
TOKEN_NAME_REQUIRED = "Enter a token name, e.g. billing-service."
TOKEN_NAME_TOO_LONG = (
    "Token name is longer than %(max)d characters; use a short name, e.g. billing-service."
)
TOKEN_NAME_INVALID = (
    "Token name may only contain lower-case letters, digits, - and _, and must start with "
    "a letter or digit, e.g. billing-service."
)


TEAM_NAME_REQUIRED = "Enter a team name, e.g. search."
TEAM_NAME_TOO_LONG = "Team name is longer than %(max)d characters; use a short name, e.g. search."
TEAM_NAME_INVALID = (
    "Team name may only contain lower-case letters, digits, - and _, and must start with "
    "a letter or digit, e.g. search."
)


def validate_group_name(value: str) -> str:
    return _validate_slug(
        value,
        required=GROUP_NAME_REQUIRED,
        too_long=GROUP_NAME_TOO_LONG,
        invalid=GROUP_NAME_INVALID,
    )


def validate_token_name(value: str) -> str:
    return _validate_slug(
        value,
        required=TOKEN_NAME_REQUIRED,
        too_long=TOKEN_NAME_TOO_LONG,
        invalid=TOKEN_NAME_INVALID,
    )


def validate_team_name(value: str) -> str:
    return _validate_slug(
        value,
        required=TEAM_NAME_REQUIRED,
        too_long=TEAM_NAME_TOO_LONG,
        invalid=TEAM_NAME_INVALID,
    )


def validate_header(name: str, value: str) -> tuple[str, str]:
    """Check one extra request header; returns the stripped name and value.

    No message quotes the value (it is usually a secret), nor a name that failed the token
    check (people paste "Authorization: Bearer sk-..." into the name field).
    """
    name, value = name.strip(), value.strip()
    if not name:
        raise _invalid(HEADER_NAME_REQUIRED, "required")
    if not _TOKEN_RE.fullmatch(name):
        raise _invalid(HEADER_NAME_INVALID, "header_name_invalid")
    if name.lower() in FORBIDDEN_HEADERS:
        raise _invalid(HEADER_NAME_FORBIDDEN, "header_name_forbidden", name=name)
    # Tab is the one control character a field value may hold (RFC 7230 section 3.2).
    if any(ch != "\t" and unicodedata.category(ch) in _BREAKING for ch in value):
        raise _invalid(HEADER_VALUE_INVALID, "header_value_invalid", name=name)
    if not value.isascii():
        raise _invalid(HEADER_VALUE_NOT_ASCII, "header_value_not_ascii", name=name)
    return name, value


# The same rules as HTML `pattern` attributes (the browser anchors them and compiles them
# with the `v` flag, hence the escaped "/" and "-"), so a form catches a mistake before the
# round trip; the server checks again all the same.
MODEL_ID_PATTERN = r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._:\/\-]*"
NAME_PATTERN = r"[a-z0-9][a-z0-9_\-]*"


def model_id_attrs() -> dict[str, str]:
    """What a Model field's <input> carries: its pattern, length and a plain-text title."""
    return {
        "pattern": MODEL_ID_PATTERN,
        "maxlength": str(MAX_MODEL_ID_LENGTH),
        "title": "Letters, digits and ._:/- , starting with a letter or digit; no '..'.",
        "autocomplete": "off",
        "spellcheck": "false",
    }


def name_attrs() -> dict[str, str]:
    """A provider, group or token name's <input>: lower-case letters, digits, '-' and '_'."""
    return {
        "pattern": NAME_PATTERN,
        "title": "Lower-case letters, digits, '-' and '_', starting with a letter or digit.",
        "autocomplete": "off",
        "spellcheck": "false",
    }
