import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from providers import crypto

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_and_ciphertext_is_not_plaintext():
    token = crypto.encrypt("sk-secret-value-123456")
    assert "sk-secret-value" not in token
    assert crypto.decrypt(token) == "sk-secret-value-123456"


def test_flipped_byte_is_an_error_not_garbage():
    token = bytearray(crypto.encrypt("sk-secret-value-123456").encode())
    token[40] = ord("A") if token[40] != ord("A") else ord("B")
    with pytest.raises(crypto.UndecryptableSecret):
        crypto.decrypt(token.decode())


def test_secret_key_rotation_leaves_secrets_readable(settings):
    token = crypto.encrypt("sk-secret-value-123456")
    settings.SECRET_KEY = "a-completely-different-secret-key"
    assert crypto.decrypt(token) == "sk-secret-value-123456"


def test_old_key_still_decrypts_after_new_key_put_first(settings):
    token = crypto.encrypt("sk-secret-value-123456")
    settings.ROUTING_ENCRYPTION_KEYS = (
        Fernet.generate_key().decode(),
        *settings.ROUTING_ENCRYPTION_KEYS,
    )
    assert crypto.decrypt(token) == "sk-secret-value-123456"
    assert crypto.needs_rotation(token)
    assert not crypto.needs_rotation(crypto.rotate(token))


def test_unknown_key_is_undecryptable_and_message_names_the_variable(settings):
    token = crypto.encrypt("sk-secret-value-123456")
    settings.ROUTING_ENCRYPTION_KEYS = (Fernet.generate_key().decode(),)
    with pytest.raises(crypto.UndecryptableSecret) as info:
        crypto.decrypt(token)
    assert "ROUTING_ENCRYPTION_KEYS" in str(info.value)
    assert "sk-secret" not in str(info.value)


@pytest.mark.parametrize("value", [None, "", "  ", " , "])
def test_missing_keys_are_refused(value):
    with pytest.raises(crypto.KeyConfigError, match="ROUTING_ENCRYPTION_KEYS is not set"):
        crypto.parse_keys(value)


@pytest.mark.parametrize("value", ["not-a-key", "c2hvcnQ=", Fernet.generate_key().decode() + ",x"])
def test_malformed_keys_are_refused_without_echoing_them(value):
    with pytest.raises(crypto.KeyConfigError) as info:
        crypto.parse_keys(value)
    assert "ROUTING_ENCRYPTION_KEYS" in str(info.value)
    assert "Fernet.generate_key" in str(info.value)  # says how to make one
    assert value.split(",")[-1] not in str(info.value)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # Explicit (possibly empty) values stop python-dotenv from filling them from a local .env.
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "routing_admin.settings", **env}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        cwd=ROOT,
    )


def test_app_refuses_to_start_without_encryption_key():
    result = _manage("check", SECRET_KEY="x" * 50, ROUTING_ENCRYPTION_KEYS="")
    assert result.returncode != 0
    assert "ROUTING_ENCRYPTION_KEYS is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_app_refuses_to_start_with_malformed_encryption_key():
    result = _manage("check", SECRET_KEY="x" * 50, ROUTING_ENCRYPTION_KEYS="nope")
    assert result.returncode != 0
    assert "ROUTING_ENCRYPTION_KEYS entry number 1 is not a valid Fernet key" in result.stderr


def test_app_refuses_to_start_without_secret_key():
    result = _manage("check", SECRET_KEY="", ROUTING_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
