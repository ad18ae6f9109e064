"""Encryption of stored secrets with MultiFernet, and nothing else.

Keys come from ROUTING_ENCRYPTION_KEYS (comma-separated Fernet keys): the first one
encrypts, every one decrypts, so a new key can be put in front and the old ones retired
after `routing rotate-key`. The key is deliberately separate from SECRET_KEY, so that
rotating the session-signing key never makes stored secrets unreadable.
"""

from functools import cache, lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.views.decorators.debug import sensitive_variables

ENV_VAR = "ROUTING_ENCRYPTION_KEYS"
HOW_TO_MAKE_A_KEY = (
    'Generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())" (the run command `bin/run` writes one to .env '
    "for you on first start)."
)
KEYS_MISSING = f"{ENV_VAR} is not set: stored API keys cannot be encrypted. " + HOW_TO_MAKE_A_KEY
KEY_MALFORMED = (
    f"{ENV_VAR} entry number {{position}} is not a valid Fernet key "
    "(it must be 32 bytes, url-safe base64 encoded: 44 characters ending in '='). "
    + HOW_TO_MAKE_A_KEY
)
UNDECRYPTABLE = (
    f"This secret cannot be decrypted with any key in {ENV_VAR}: the key it was encrypted "
    "with is missing. Put that key back in the list (any position after the first)."
)


class KeyConfigError(ValueError):
    pass


class UndecryptableSecret(Exception):
    def __init__(self) -> None:
        super().__init__(UNDECRYPTABLE)


def parse_keys(value: str | None) -> tuple[str, ...]:
    """Validate the environment value; the message names the variable, never a key."""
    keys = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    if not keys:
        raise KeyConfigError(KEYS_MISSING)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise KeyConfigError(KEY_MALFORMED.format(position=position)) from None
    return keys


@cache
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    from django.conf import settings

    return _multifernet(tuple(settings.ROUTING_ENCRYPTION_KEYS))


@sensitive_variables("plaintext")
def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        # Also raised for a flipped byte: Fernet authenticates, so tampering is an error,
        # never garbage.
        raise UndecryptableSecret() from None


def is_decryptable(token: str) -> bool:
    from django.conf import settings

    return _decryptable(token, tuple(settings.ROUTING_ENCRYPTION_KEYS))


@lru_cache(maxsize=4096)
def _decryptable(token: str, keys: tuple[str, ...]) -> bool:
    # Pages list every provider's key state: remembered per ciphertext and key list, so a
    # list of a thousand providers does not decrypt a thousand keys on every view.
    try:
        _multifernet(keys).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def needs_rotation(token: str) -> bool:
    """True when the token is not encrypted under the first (current) key."""
    from django.conf import settings

    primary = Fernet(settings.ROUTING_ENCRYPTION_KEYS[0])
    try:
        primary.decrypt(token.encode())
    except InvalidToken:
        return True
    return False


def rotate(token: str) -> str:
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret() from None
