"""Masking and redaction of secrets in anything shown to a person or written to a log."""

import base64
import re

# Key-shaped tokens that an upstream error body might echo even when we don't know them
# (e.g. a key from another header).
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|sk-ant-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,})")
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{8,})")
# Shorter secrets are masked verbatim only: their encodings would match ordinary text.
MIN_ENCODED_LENGTH = 8
# The rest of a base64 run (standard or URL-safe alphabet, possibly percent-encoded) from
# a position. Matched forwards only, from where a secret's core was found: a pattern with a
# leading run would backtrack quadratically over a long base64 body.
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-")
_B64_ESCAPES = ("%2B", "%2F", "%3D")
_B64_REST = re.compile(r"(?:[A-Za-z0-9+/_=-]|%2[BF]|%3D)*", re.IGNORECASE)


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


def _spelled(text: str) -> str:
    """A pattern for `text` with any of its characters percent-encoded (as in a URL or a
    form body: `%2B`, `%2b`, `+` for a space) or JSON-escaped (`\\/`, `\\u002b`, as some
    servers write their error bodies); matched case-insensitively."""
    parts = []
    for char in text:
        options = [re.escape(char), "".join(f"%{byte:02X}" for byte in char.encode())]
        if char == " ":
            options.append(r"\+")
        if not char.isalnum():
            options.append(re.escape(f"\\u{ord(char):04x}"))
        if char == "/":
            options.append(r"\\/")
        parts.append("(?:" + "|".join(options) + ")")
    return "".join(parts)


def _base64_cores(secret: str) -> set[str]:
    """What base64 of any text holding `secret` contains whatever surrounds it: for each of
    the three alignments, the encoding of the secret's whole 3-byte groups (so "user:key"
    of Basic auth is found as surely as the key alone), standard and URL-safe."""
    raw = secret.encode()
    cores = set()
    for skip in range(3):
        groups = (len(raw) - skip) // 3
        if groups * 4 < MIN_ENCODED_LENGTH:
            continue
        core = base64.b64encode(raw[skip : skip + 3 * groups]).decode()
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def _run_start(text: str, start: int, floor: int) -> int:
    """Where the base64 run that reaches `start` begins (not before `floor`)."""
    while start > floor:
        if text[start - 1] in _B64_ALPHABET:
            start -= 1
        elif start - 3 >= floor and text[start - 3 : start].upper() in _B64_ESCAPES:
            start -= 3
        else:
            break
    return start


def _mask_base64_runs(text: str, core: re.Pattern, replacement: str) -> str:
    """Replace every whole base64 run holding `core` by `replacement`."""
    out, done = [], 0
    for found in core.finditer(text):
        if found.start() < done:
            continue
        start = _run_start(text, found.start(), done)
        end = _B64_REST.match(text, found.end()).end()
        out += [text[done:start], replacement]
        done = end
    out.append(text[done:])
    return "".join(out)


def _mask_encoded(text: str, secret: str) -> str:
    """The secret in any letter case, percent-encoding or JSON escaping, and inside base64
    (the whole base64 run is masked)."""
    hint = mask(secret)
    text = re.sub(_spelled(secret), lambda m: hint, text, flags=re.IGNORECASE)
    for core in sorted(_base64_cores(secret), key=len, reverse=True):
        text = _mask_base64_runs(text, re.compile(_spelled(core), re.IGNORECASE), hint)
    return text


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, mask(secret))
        if len(secret) >= MIN_ENCODED_LENGTH:
            text = _mask_encoded(text, secret)
    text = _KEYLIKE.sub(lambda m: mask(m.group(1)), text)
    return _BEARER.sub(lambda m: m.group(1) + mask(m.group(2)), text)
