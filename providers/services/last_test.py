"""A row's last test, as its page shows it: the one way a provider's connection test and a
group's test call are written down (last_test_ok, _latency_ms, _at, _message)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ..models import LastTest


class Outcome(Protocol):
    ok: bool
    message: str
    latency_ms: float | None


def last_test_fields(result: Outcome, *, at: datetime) -> dict[str, object]:
    """The LastTest fields for one outcome; its message is already redacted by the test."""
    return {
        "last_test_ok": result.ok,
        "last_test_latency_ms": result.latency_ms,
        "last_test_at": at,
        "last_test_message": result.message[: LastTest.MESSAGE_LENGTH],
    }
