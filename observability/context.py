"""What the ASGI wrapper (observability/asgi.py) knows of the request being served: read by
the metrics and traces of the calls it makes. A context variable holding a mutable object:
Django serves a request in tasks of its own, which copy the context, so they see this very
object, and the time of the first chunk sent is seen by the code that logs the call."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class RequestState:
    started_at: float
    first_byte_at: float = 0.0


current_request: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "routing_request_state", default=None
)
