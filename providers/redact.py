"""Masking and redaction of secrets in anything shown to a person or written to a log."""

import re

# Key-shaped tokens that an upstream error body might echo even when we don't know them
# (e.g. a key from another header).
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|sk-ant-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,})")
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{8,})")


def mask(secret: str) -> str:
    """Enough to tell keys apart, never enough to help guess one: 'sk-proj-abcdef…' ->
    'sk-…abcd' (provider keys are 30 to 200 characters). The last 4 characters only from 12
    characters on, the first 3 as well only from 20 on, so at least 8, then 13, stay hidden;
    shorter secrets reveal nothing."""
    if not secret:
        return ""
    if len(secret) < 12:
        return "…"
    if len(secret) < 20:
        return f"…{secret[-4:]}"
    return f"{secret[:3]}…{secret[-4:]}"


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    text = _KEYLIKE.sub(lambda m: mask(m.group(1)), text)
    return _BEARER.sub(lambda m: m.group(1) + mask(m.group(2)), text)
