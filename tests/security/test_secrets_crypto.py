"""Stored secrets: separate from SECRET_KEY, and tamper-evident (a flipped byte is an error,
never a different key sent to a provider)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from providers import crypto, services
from providers.models import Provider
from providers.services.connection import KEY_UNDECRYPTABLE
from tests.conftest import SECRET

HEADER = "org-" + "Hq2Jk3Lm4Np5Rs6Tv7Wx"


@pytest.fixture
def acme(make_provider, upstream):
    return make_provider(name="acme", base_url=upstream.base_url + "/v1", headers={"X-Org": HEADER})


def _flip(token: str, position: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[position % len(raw)] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode()


def test_rotating_secret_key_leaves_every_stored_secret_usable(
    settings, client, login_as, acme, upstream
):
    settings.SECRET_KEY = "a-completely-new-secret-key-" + "x" * 40
    result = services.provider_test(provider=Provider.objects.get(name="acme"))
    assert result.ok, result.message
    sent = {name.lower(): value for name, value in upstream.last.headers.items()}
    assert sent["authorization"] == f"Bearer {SECRET}" and sent["x-org"] == HEADER
    login_as("viewer")  # a session signed with the new SECRET_KEY
    assert client.get(reverse("provider_detail", args=["acme"])).status_code == 200


def test_secret_key_alone_cannot_decrypt_or_forge_a_stored_secret(settings, acme):
    derived = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest())
    stored = Provider.objects.get(name="acme").api_key_ciphertext
    with pytest.raises(Exception):  # noqa: B017 - any failure: it must not decrypt
        Fernet(derived).decrypt(stored.encode())
    forged = Fernet(derived).encrypt(b"sk-attacker-chosen-key-000000").decode()
    with pytest.raises(crypto.UndecryptableSecret):
        crypto.decrypt(forged)


@pytest.mark.parametrize("position", [0, 9, 30, 60, -1])
def test_flipped_byte_in_stored_key_is_refused_and_nothing_is_sent(acme, upstream, position):
    Provider.objects.filter(pk=acme.pk).update(
        api_key_ciphertext=_flip(acme.api_key_ciphertext, position)
    )
    result = services.provider_test(provider=Provider.objects.get(pk=acme.pk))
    assert not result.ok and result.message == KEY_UNDECRYPTABLE
    assert upstream.requests == []


def test_flipped_byte_in_stored_headers_is_an_error_not_garbage(acme, upstream):
    Provider.objects.filter(pk=acme.pk).update(
        headers_ciphertext=_flip(acme.headers_ciphertext, 40)
    )
    provider = Provider.objects.get(pk=acme.pk)
    with pytest.raises(crypto.UndecryptableSecret):
        provider.get_headers()
    assert services.provider_test(provider=provider).message == KEY_UNDECRYPTABLE
    assert upstream.requests == []


@pytest.mark.parametrize("cut", [1, 16, 32])
def test_truncated_ciphertext_is_an_error_not_garbage(cut):
    token = crypto.encrypt(SECRET)
    with pytest.raises(crypto.UndecryptableSecret) as info:
        crypto.decrypt(token[:-cut])
    assert SECRET not in str(info.value)


def test_tampered_key_is_shown_as_undecryptable_not_as_a_key(client, login_as, acme):
    Provider.objects.filter(pk=acme.pk).update(
        api_key_ciphertext=_flip(acme.api_key_ciphertext, 50)
    )
    login_as("viewer")
    html = client.get(reverse("provider_detail", args=["acme"])).content.decode()
    assert "undecryptable" in html.lower()
    assert SECRET not in html
