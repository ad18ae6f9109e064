"""What the validator tests share: no host listed in ROUTING_ALLOWED_PRIVATE_HOSTS, and a
fake DNS in which only the names a test adds resolve."""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError

from providers import addresses
from providers import validators as v

# Bound before the autouse fixture replaces it, so resolve_host itself can be tested.
real_resolve_host = v.resolve_host


@pytest.fixture(autouse=True)
def nothing_listed(settings):
    # The environment may list hosts; each test starts from a deployment that lists none.
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = []
    return settings


class FakeDns:
    """Names a test adds resolve to its addresses; any other name does not resolve."""

    def __init__(self):
        self.records: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def __setitem__(self, host, addresses):
        self.records[host] = addresses

    def resolve(self, host):
        self.lookups.append(host)
        if host not in self.records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.records[host]]


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    fake = FakeDns()
    monkeypatch.setattr(addresses, "resolve_host", fake.resolve)
    return fake


def error(func, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        func(*args, **kwargs)
    return excinfo.value


def url_error(url, *, local=False) -> ValidationError:
    return error(v.validate_base_url, url, local=local)
