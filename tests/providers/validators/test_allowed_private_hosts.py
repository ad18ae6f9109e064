"""ROUTING_ALLOWED_PRIVATE_HOSTS: what listing a host, an IP or a network allows, and what
it never does."""

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from providers import validators as v
from tests.providers.validators.conftest import url_error

# --- ROUTING_ALLOWED_PRIVATE_HOSTS. ---


def test_listed_private_host_allows_http(settings, dns):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["llm.internal"]
    dns["llm.internal"] = ["10.0.0.5"]

    result = v.validate_base_url("http://llm.internal:8000/v1", local=False)

    assert result.url == "http://llm.internal:8000/v1"


def test_listed_name_is_case_insensitive(settings, dns):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["LLM.Internal"]
    dns["llm.internal"] = ["10.0.0.5"]

    assert v.validate_base_url("http://llm.INTERNAL/", local=False).host == "llm.internal"


@pytest.mark.parametrize("listed", [["10.0.0.0/8"], ["10.1.2.3"], [" 10.1.2.0/24 "]])
def test_listed_network_allows_private_ip_literal_over_http(settings, listed):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = listed

    assert v.validate_base_url("http://10.1.2.3:4000/", local=False).host == "10.1.2.3"


def test_listed_ipv6_network_allows_ula_literal(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["fd00:1234::/32"]

    assert v.validate_base_url("http://[fd00:1234::9]/", local=False).host == "fd00:1234::9"


def test_listed_loopback_lets_a_remote_kind_use_it(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]

    assert v.validate_base_url("http://127.0.0.1:9000/v1", local=False).port == 9000


def test_name_is_allowed_when_every_address_is_in_listed_networks(settings, dns):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["10.0.0.0/8", "192.168.0.0/16"]
    dns["gpu-box.lan"] = ["10.0.0.7", "192.168.1.7"]

    assert v.validate_base_url("http://gpu-box.lan/", local=False).warnings == ()


def test_name_with_an_address_outside_listed_networks_is_rejected(settings, dns):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["10.0.0.0/8"]
    dns["gpu-box.lan"] = ["10.0.0.7", "172.16.0.7"]

    err = url_error("http://gpu-box.lan/")

    assert err.message == v.ADDRESS_PRIVATE
    assert "172.16.0.7" in err.messages[0]


def test_listing_another_host_does_not_allow_this_one(settings, dns):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["llm.internal", "10.0.0.0/8"]
    dns["other.internal"] = ["192.168.9.9"]

    assert url_error("https://other.internal/").message == v.ADDRESS_PRIVATE


@pytest.mark.parametrize(
    "listed", [["169.254.169.254"], ["169.254.0.0/16"], ["0.0.0.0/0"], ["fd00:ec2::/32"]]
)
@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"]
)
def test_metadata_rejected_even_when_listed(settings, listed, url):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = listed

    assert url_error(url).message == v.ADDRESS_METADATA


def test_listed_name_resolving_to_metadata_is_rejected(settings, dns):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["llm.internal"]
    dns["llm.internal"] = ["10.0.0.5", "169.254.169.254"]

    assert url_error("http://llm.internal/").message == v.ADDRESS_METADATA


def test_metadata_hostname_rejected_even_when_listed(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["metadata.google.internal"]

    assert url_error("http://metadata.google.internal/").message == v.ADDRESS_METADATA


def test_link_local_rejected_even_when_listed(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["169.254.0.0/16", "fe80::/10"]

    assert url_error("http://169.254.10.10/").message == v.ADDRESS_LINK_LOCAL
    assert url_error("http://[fe80::10]/").message == v.ADDRESS_LINK_LOCAL


def test_listed_unresolvable_name_allows_http_with_warning(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["vllm"]

    result = v.validate_base_url("http://vllm:8000/v1", local=False)

    assert result.warnings == (v.UNRESOLVED_WARNING % {"host": "vllm"},)


def test_setting_is_read_at_call_time(settings):
    with pytest.raises(ValidationError):
        v.validate_base_url("http://10.0.0.5/", local=False)

    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["10.0.0.5"]

    assert v.validate_base_url("http://10.0.0.5/", local=False).host == "10.0.0.5"


def test_allowed_private_hosts_parses_names_ips_and_networks(settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = ["LLM.Internal", "10.0.0.5", "10.0.0.0/8", "[fd00::1]"]

    assert v.allowed_private_hosts() == [
        "llm.internal",
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::1/128"),
    ]


def test_missing_setting_lists_nothing(settings):
    del settings.ROUTING_ALLOWED_PRIVATE_HOSTS

    assert v.allowed_private_hosts() == []


@pytest.mark.parametrize(
    "listed", ["10.0.0.0/8", ["10.0.0.0/33"], ["not a host"], ["0177.0.0.1"], [10]]
)
def test_malformed_allowed_private_hosts_is_improperly_configured(settings, listed):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = listed

    with pytest.raises(ImproperlyConfigured, match="ROUTING_ALLOWED_PRIVATE_HOSTS"):
        v.allowed_private_hosts()
