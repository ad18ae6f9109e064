"""Base URLs (providers.validators.validate_base_url): schemes, hosts and the special-purpose
address ranges, for remote and local kinds."""

import pytest

from providers import validators as v
from tests.providers.validators.conftest import url_error

# --- Base URLs that are fine. ---


def test_public_https_url_is_accepted_and_normalised(dns):
    dns["api.example.com"] = ["93.184.216.34"]

    result = v.validate_base_url("HTTPS://API.Example.COM/V1/", local=False)

    assert result == v.BaseURL(
        url="https://api.example.com/V1",
        scheme="https",
        host="api.example.com",
        port=None,
        warnings=(),
    )


def test_port_is_kept(dns):
    dns["llm.example.com"] = ["93.184.216.34"]

    result = v.validate_base_url("https://llm.example.com:8443/", local=False)

    assert (result.url, result.port) == ("https://llm.example.com:8443", 8443)


@pytest.mark.parametrize(
    ("url", "host", "normalised"),
    [
        ("https://8.8.8.8/v1", "8.8.8.8", "https://8.8.8.8/v1"),
        (
            "https://[2606:4700:4700:0:0:0:0:1111]:443/v1",
            "2606:4700:4700::1111",
            "https://[2606:4700:4700::1111]:443/v1",
        ),
    ],
)
def test_public_ip_literal_is_accepted(dns, url, host, normalised):
    result = v.validate_base_url(url, local=False)

    assert (result.host, result.url) == (host, normalised)
    assert dns.lookups == []


def test_unresolvable_name_is_accepted_with_warning():
    result = v.validate_base_url("https://llm.example.org/v1", local=False)

    assert result.url == "https://llm.example.org/v1"
    assert result.warnings == (v.UNRESOLVED_WARNING % {"host": "llm.example.org"},)
    assert "checked again when the app connects" in result.warnings[0]


# --- Schemes. ---


def test_http_is_rejected_for_remote_kinds(dns):
    dns["api.example.com"] = ["93.184.216.34"]

    err = url_error("http://api.example.com/v1")

    assert err.message == v.HTTPS_REQUIRED


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://api.example.com/",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "dict://127.0.0.1:11211/",
        "ws://api.example.com/",
        "javascript://api.example.com/%0aalert(1)",
    ],
)
def test_other_schemes_are_rejected(url):
    err = url_error(url)

    assert err.message == v.SCHEME_UNSUPPORTED
    assert "use https://" in err.messages[0]


@pytest.mark.parametrize(
    "url", ["api.openai.com/v1", "localhost:11434", "https:/api.openai.com", "//api.openai.com"]
)
def test_url_without_scheme_is_rejected(url):
    assert url_error(url).message == v.SCHEME_MISSING


# --- Userinfo. ---


@pytest.mark.parametrize(
    "url",
    [
        "https://alice@api.example.com/v1",
        "https://alice:s3cr3t-pw@api.example.com/v1",
        "https://:s3cr3t-pw@api.example.com/v1",
    ],
)
def test_userinfo_is_rejected_and_not_echoed(url):
    err = url_error(url)

    assert err.message == v.USERINFO
    assert "alice" not in err.messages[0]
    assert "s3cr3t" not in err.messages[0]


def test_userinfo_disguising_metadata_host_is_rejected():
    err = url_error("https://api.openai.com@169.254.169.254/latest/meta-data/")

    assert err.message == v.USERINFO


# --- Loopback. ---


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "https://127.9.9.9:8080/", "https://[::1]/"])
def test_loopback_ip_is_rejected_for_remote_kinds(url):
    assert url_error(url).message == v.ADDRESS_LOOPBACK


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "ollama.localhost"])
def test_localhost_name_is_rejected_for_remote_kinds_without_lookup(dns, host):
    err = url_error(f"https://{host}:11434/v1")

    assert err.message == v.ADDRESS_LOOPBACK
    assert dns.lookups == []


def test_name_resolving_to_loopback_is_rejected(dns):
    dns["127.0.0.1.nip.io"] = ["127.0.0.1"]

    err = url_error("https://127.0.0.1.nip.io/v1")

    assert err.message == v.ADDRESS_LOOPBACK
    assert "127.0.0.1.nip.io (resolves to 127.0.0.1)" in err.messages[0]


# --- Private, shared and other non-public ranges. ---


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/",
        "https://172.16.5.4/",
        "https://192.168.1.1/",
        "https://[fc00::1]/",
        "https://[fd12:3456::1]/",
        "https://[fec0::1]/",  # deprecated site-local
        "https://198.18.0.1/",  # benchmarking
    ],
)
def test_private_ip_literal_is_rejected(url):
    err = url_error(url)

    assert err.message == v.ADDRESS_PRIVATE
    assert "ROUTING_ALLOWED_PRIVATE_HOSTS" in err.messages[0]


@pytest.mark.parametrize("url", ["https://100.64.0.1/", "https://100.127.255.254/"])
def test_carrier_grade_nat_is_rejected(url):
    assert url_error(url).message == v.ADDRESS_PRIVATE


def test_name_resolving_to_private_address_is_rejected(dns):
    dns["internal.example.com"] = ["10.1.2.3"]

    err = url_error("https://internal.example.com/v1")

    assert err.message == v.ADDRESS_PRIVATE
    assert "internal.example.com (resolves to 10.1.2.3)" in err.messages[0]


def test_name_with_any_forbidden_address_is_rejected(dns):
    # DNS rebinding setups return a public address alongside the one they are after.
    dns["mixed.example.com"] = ["93.184.216.34", "2606:4700::1", "192.168.0.10"]

    assert url_error("https://mixed.example.com/").message == v.ADDRESS_PRIVATE


# --- Link-local and cloud metadata. ---


@pytest.mark.parametrize("url", ["https://169.254.1.1/", "https://[fe80::1]/"])
def test_link_local_is_rejected(url):
    assert url_error(url).message == v.ADDRESS_LINK_LOCAL


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://168.63.129.16/",
    ],
)
def test_metadata_ip_is_rejected(url):
    err = url_error(url, local=True)

    assert err.message == v.ADDRESS_METADATA
    assert err.code == "address_metadata"


@pytest.mark.parametrize("host", ["metadata.google.internal", "metadata", "instance-data"])
def test_metadata_hostname_is_rejected_without_lookup(dns, host):
    assert url_error(f"http://{host}/computeMetadata/v1/").message == v.ADDRESS_METADATA
    assert dns.lookups == []


def test_name_resolving_to_metadata_is_rejected(dns):
    dns["evil.example.com"] = ["169.254.169.254"]

    assert url_error("https://evil.example.com/").message == v.ADDRESS_METADATA


# --- Numeric host spellings. ---


def test_metadata_ip_in_decimal_is_rejected():
    err = url_error("http://2852039166/latest/meta-data/")

    assert err.message == v.HOST_NUMERIC_NOT_CANONICAL
    assert "dotted-decimal" in err.messages[0]


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # 127.0.0.1 as one decimal number
        "0x7f000001",
        "0x7f.0.0.1",
        "0X7F.0.0.1",
        "0177.0.0.1",
        "127.000.000.001",
        "127.1",
        "127.0.1",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "169.254.43518",
        "1.2.3.4.5",
        "256.0.0.1",
        "api.0x",
        "127..1",
    ],
)
def test_non_canonical_numeric_host_is_rejected(host):
    err = url_error(f"http://{host}/")

    assert err.message == v.HOST_NUMERIC_NOT_CANONICAL


@pytest.mark.parametrize(
    "url", ["https://１２７.０.０.１/", "https://ⓛocalhost/", "https://аpi.example.com/"]
)
def test_unicode_lookalike_host_is_rejected(url):
    assert url_error(url).message == v.URL_NOT_ASCII


# --- Multicast, unspecified, reserved. ---


@pytest.mark.parametrize("url", ["https://224.0.0.1/", "https://239.1.2.3/", "https://[ff02::1]/"])
def test_multicast_is_rejected(url):
    assert url_error(url).message == v.ADDRESS_MULTICAST


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("url", ["http://0.0.0.0:11434/", "http://[::]:11434/"])
def test_unspecified_address_is_rejected_with_hint(url, local):
    err = url_error(url, local=local)

    assert err.message == v.ADDRESS_UNSPECIFIED
    assert "use 127.0.0.1" in err.messages[0]


@pytest.mark.parametrize(
    "url",
    ["https://255.255.255.255/", "https://240.0.0.1/", "https://0.1.2.3/", "https://[::7f00:1]/"],
)
def test_reserved_and_broadcast_addresses_are_rejected(url):
    assert url_error(url).message == v.ADDRESS_RESERVED


# --- IPv6 forms of IPv4 addresses. ---


@pytest.mark.parametrize("url", ["https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/"])
def test_ipv4_mapped_ipv6_loopback_is_rejected(url):
    err = url_error(url)

    assert err.message == v.ADDRESS_LOOPBACK
    assert "IPv6 form of 127.0.0.1" in err.messages[0]


@pytest.mark.parametrize("url", ["http://[::ffff:a9fe:a9fe]/", "http://[::ffff:169.254.169.254]/"])
def test_ipv4_mapped_ipv6_metadata_is_rejected(url):
    assert url_error(url).message == v.ADDRESS_METADATA


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[64:ff9b::a9fe:a9fe]/", v.ADDRESS_METADATA),
        ("https://[64:ff9b::127.0.0.1]/", v.ADDRESS_LOOPBACK),
        ("https://[64:ff9b::a00:1]/", v.ADDRESS_PRIVATE),
    ],
)
def test_nat64_embedding_forbidden_ipv4_is_rejected(url, message):
    assert url_error(url).message == message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[2002:a9fe:a9fe::]/", v.ADDRESS_METADATA),
        ("https://[2002:7f00:1::]/", v.ADDRESS_LOOPBACK),
        ("https://[2002:c0a8:101::1]/", v.ADDRESS_PRIVATE),
    ],
)
def test_6to4_embedding_forbidden_ipv4_is_rejected(url, message):
    assert url_error(url).message == message


def test_nat64_embedding_public_ipv4_is_accepted():
    assert (
        v.validate_base_url("https://[64:ff9b::808:808]/", local=False).host == "64:ff9b::808:808"
    )


def test_name_resolving_to_mapped_loopback_is_rejected(dns):
    dns["sneaky.example.com"] = ["::ffff:127.0.0.1"]

    assert url_error("https://sneaky.example.com/").message == v.ADDRESS_LOOPBACK


@pytest.mark.parametrize("url", ["http://[fe80::1%25eth0]/", "http://[::1%251]:11434/"])
def test_ipv6_zone_id_is_rejected(url):
    assert url_error(url, local=True).message == v.IPV6_INVALID


@pytest.mark.parametrize(
    "url", ["https://[::1/", "https://[not-an-ip]/", "https://[::ffff:0177.0.0.1]/"]
)
def test_malformed_ipv6_literal_is_rejected(url):
    assert url_error(url).message == v.IPV6_INVALID


def test_unbracketed_ipv6_is_rejected():
    assert url_error("http://::1:11434/", local=True).message == v.HOST_INVALID


# --- Characters and structure. ---


def test_backslash_is_rejected():
    # Browsers read this as host 169.254.169.254; some servers as api.example.com.
    err = url_error("https://api.example.com\\@169.254.169.254/")

    assert err.message == v.URL_BACKSLASH


@pytest.mark.parametrize(
    "url",
    [
        " https://api.example.com/v1",
        "https://api.example.com/v1\n",
        "https://api.example.com/v1\r\nX-Injected: 1",
        "https://api.exa mple.com/",
        "https://api.example.com/\tv1",
        "https://api.example.com\x00.evil.com/",
        "https://api.example.com/\x7f",
        "https://api.example\u200b.com/",
        "https://api.example.com/\u00a0",
        "https://api.example.com/\u202ev1",
    ],
)
def test_whitespace_and_control_characters_are_rejected(url):
    assert url_error(url).message == v.URL_WHITESPACE


@pytest.mark.parametrize(
    "url", ["https://api.example.com/v1#frag", "https://evil.com#@api.example.com/", "https://x/#"]
)
def test_fragment_is_rejected(url):
    assert url_error(url).message == v.URL_FRAGMENT


@pytest.mark.parametrize(
    "url",
    ["https://api.example.com/v1?api_key=x", "https://api.example.com/?", "https://evil.com?@a"],
)
def test_query_string_is_rejected(url):
    err = url_error(url)

    assert err.message == v.URL_QUERY
    assert "query string" in err.messages[0]


@pytest.mark.parametrize("url", ["https://", "https:///v1", "https://:443/v1", "http://:11434"])
def test_empty_host_is_rejected(url):
    assert url_error(url, local=True).message == v.HOST_REQUIRED


def test_empty_url_is_rejected():
    assert url_error("").message == v.URL_REQUIRED


def test_overlong_url_is_rejected():
    url = "https://api.example.com/" + "a" * (v.MAX_URL_LENGTH - 23)

    assert url_error(url).message == v.URL_TOO_LONG


def test_url_at_length_limit_is_accepted():
    url = "https://api.example.com/" + "a" * (v.MAX_URL_LENGTH - 24)

    assert v.validate_base_url(url, local=False).url == url


@pytest.mark.parametrize("port", ["0", "65536", "99999999", "8o", "-1", ""])
def test_invalid_port_is_rejected(port):
    assert url_error(f"https://api.example.com:{port}/").message == v.PORT_INVALID


@pytest.mark.parametrize(
    "host",
    [
        "api..example.com",
        "-api.example.com",
        "api-.example.com",
        "127.0.0.%31",
        "api.example.com%2f",
        "a" * 64 + ".example.com",
        "api.example.com;evil.com",
        "[::1]x",
    ],
)
def test_invalid_host_is_rejected(host):
    assert url_error(f"https://{host}/").message in (v.HOST_INVALID, v.IPV6_INVALID)


def test_trailing_dot_is_rejected():
    assert url_error("https://localhost./").message == v.HOST_TRAILING_DOT


# --- Local kinds. ---


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:11434",
        "http://127.0.0.1:1234/v1",
        "http://127.5.5.5/",
        "http://[::1]:8000/v1",
    ],
)
def test_local_kind_may_use_http_loopback(dns, url):
    result = v.validate_base_url(url, local=True)

    assert result.scheme == "http"
    assert result.warnings == ()
    assert dns.lookups == []


def test_local_kind_may_use_http_name_resolving_to_loopback(dns):
    dns["ollama.localhost"] = ["127.0.0.1", "::1"]

    assert v.validate_base_url("http://ollama.localhost:11434", local=True).warnings == ()


def test_local_kind_http_to_public_host_is_rejected(dns):
    dns["ollama.example.com"] = ["93.184.216.34"]

    assert url_error("http://ollama.example.com/", local=True).message == v.HTTPS_REQUIRED


def test_local_kind_https_to_public_host_is_accepted(dns):
    dns["ollama.example.com"] = ["93.184.216.34"]

    assert (
        v.validate_base_url("https://ollama.example.com/", local=True).host == "ollama.example.com"
    )


def test_local_kind_http_to_unresolvable_name_is_rejected():
    # Without an address nothing shows the host is on this machine, so http is not allowed.
    assert url_error("http://ollama:11434", local=True).message == v.HTTPS_REQUIRED


def test_local_kind_still_needs_listing_for_lan_address():
    assert url_error("http://192.168.1.20:11434", local=True).message == v.ADDRESS_PRIVATE
