"""Concurrent-request slots are leases: a call in flight holds one for LEASE_SECONDS, and
this process's keeper thread renews the ones it still holds every RENEW_SECONDS. A worker
that dies stops renewing: its slots free themselves within LEASE_SECONDS, on every machine.

The keeper also frees the slots of calls that lost their ticket without settling it (a
streamed answer whose body was never read): a ticket collected by the garbage collector
hands its lease here (`abandon`), and the keeper releases it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from django.db import connections

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
RENEW_SECONDS = 10.0

_lock = threading.Lock()
_round = threading.Lock()
_wake = threading.Event()
# lease id -> (where: the Redis URL, "" for the database; the slot keys it holds)
_held: dict[str, tuple[str, tuple[str, ...]]] = {}
_orphans: list[tuple[str, tuple[str, ...], str]] = []
_thread: threading.Thread | None = None


def hold(lease: str, where: str, keys: Sequence[str]) -> None:
    with _lock:
        _held[lease] = (where, tuple(keys))
    _ensure_thread()


def drop(lease: str) -> None:
    with _lock:
        _held.pop(lease, None)


def abandon(lease: str) -> None:
    """Release a lease from the keeper's thread (any thread may call this, a finalizer too)."""
    with _lock:
        found = _held.pop(lease, None)
        if found is not None:
            _orphans.append((found[0], found[1], lease))
    _wake.set()


def held() -> int:
    with _lock:
        return len(_held)


def _ensure_thread() -> None:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="limit-leases", daemon=True)
            _thread.start()


def _by_place(items) -> dict[str, list[tuple[str, str]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for where, keys, lease in items:
        grouped.setdefault(where, []).extend((key, lease) for key in keys)
    return grouped


def keep_round() -> None:
    """Renew what is held and release what was abandoned (the keeper calls this). One round
    at a time: when it returns, whatever was abandoned before the call is released."""
    with _round:
        _keep_round()


def _keep_round() -> None:
    from . import db_backend, redis_backend

    with _lock:
        orphans, _orphans[:] = list(_orphans), []
        current = [(where, keys, lease) for lease, (where, keys) in _held.items()]
    lease_ms = int(LEASE_SECONDS * 1000)
    try:
        for where, pairs in _by_place(orphans).items():
            if where:
                redis_backend.release(where, pairs)
            else:
                db_backend.release([lease for _, lease in pairs])
        for where, pairs in _by_place(current).items():
            if where:
                redis_backend.renew(where, pairs, lease_ms)
            else:
                db_backend.renew([lease for _, lease in pairs], LEASE_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the leases run out by themselves meanwhile
        log.warning("Could not renew or release concurrency leases: %s", type(exc).__name__)
    finally:
        connections.close_all()  # this thread's only: it sleeps until the next round


def _run() -> None:
    while True:
        _wake.wait(RENEW_SECONDS)
        _wake.clear()
        keep_round()
