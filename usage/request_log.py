"""The request log's writer: records are queued in memory and written in batches by one
background thread, so a model call never waits for the database. A normal shutdown (atexit)
writes what is still queued; `flush()` does it on demand.

The queue is bounded (ROUTING_REQUEST_LOG_MAX_PENDING records): during a long database
outage under load, memory stays flat. A record that finds the queue full is dropped and
counted (`dropped`, on /healthz), never allowed to slow or fail the call it describes."""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections, transaction

log = logging.getLogger(__name__)

# Set by the gateway for the duration of a request: which token made the call.
current_token: contextvars.ContextVar[str] = contextvars.ContextVar(
    "routing_token", default="in-process"
)
# Which endpoint a call came through ("/v1/chat/completions"...): set from the request's path
# by observability/asgi.py, or by a view that knows better. Metrics and traces read it; it
# is no column of the log.
current_endpoint: contextvars.ContextVar[str] = contextvars.ContextVar(
    "routing_endpoint", default="in-process"
)
# Told of every record and of the queue's troubles (observability/setup.py): None unless
# /metrics or traces are configured, so that a call pays nothing for them otherwise.
observer: Any = None
# Keys of a record that are no columns: read by the observer and the writer, not stored.
NOT_STORED = ("spend_counted", "metric_labels")

BATCH = 500

_queue: queue.Queue[dict[str, Any]] = queue.Queue()
_lock = threading.Lock()
_thread: threading.Thread | None = None
_wake = threading.Event()
_stopping = threading.Event()
# Batches the writer could not write (and queued again): /healthz reports it.
_failed_writes = 0
# Records given up because the queue was full: /healthz reports it. _bound_lock makes the
# "is there room" check and the put one step, so the bound holds under concurrent calls.
_dropped = 0
_bound_lock = threading.Lock()
# Set once records are being dropped, so that the log says so once per outage, not per call.
_dropping = threading.Event()
# Held while a batch is between the queue and the database: a flush at shutdown waits for the
# background writer's batch instead of exiting with it half written.
_writing = threading.Lock()
# Records taken from the queue and not yet written or queued again: still pending, so that
# /healthz never says 0 while a batch is on its way to the database.
_in_flight = 0


def record(*, endpoint: str = "", **fields: Any) -> None:
    fields.setdefault("token_name", current_token.get())
    if observer is not None:
        observer.recorded(fields, endpoint or current_endpoint.get())
    _keep([fields])
    if observer is not None:
        observer.pending(_queue.qsize() + _in_flight)
    # Tests turn the thread off and call flush(), so rows land in the test's transaction.
    if getattr(settings, "ROUTING_REQUEST_LOG_BACKGROUND", True):
        _ensure_thread()


def discard() -> None:
    while items := _drain():
        _landed(items)


def stop() -> None:
    """End the background writer (it starts again on the next record); what is still
    queued stays queued for flush(). For tests that must not leave the thread behind."""
    global _thread
    with _lock:
        thread, _thread = _thread, None
        if thread is not None and thread.is_alive():
            _stopping.set()
            _wake.set()
            thread.join()
            _stopping.clear()


def max_pending() -> int:
    return settings.ROUTING_REQUEST_LOG_MAX_PENDING


def _keep(items: list[dict[str, Any]]) -> None:
    """Queue records while there is room; count the rest as dropped."""
    global _dropped
    with _bound_lock:
        kept = max(0, min(max_pending() - _queue.qsize(), len(items)))
        for item in items[:kept]:
            _queue.put_nowait(item)
        lost = len(items) - kept
        _dropped += lost
    if lost and observer is not None:
        observer.dropped(lost)
    if lost and not _dropping.is_set():
        _dropping.set()
        log.warning(
            "The request-log queue is full (%d records waiting, the database is not taking "
            "them): new records are dropped and counted in /healthz request_log.dropped",
            _queue.qsize(),
        )


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="request-log-writer", daemon=True)
            _thread.start()


def _drain() -> list[dict[str, Any]]:
    global _in_flight
    items = []
    with _bound_lock:
        while len(items) < BATCH:
            try:
                items.append(_queue.get_nowait())
            except queue.Empty:
                break
        _in_flight += len(items)
    return items


def _landed(items: list[dict[str, Any]]) -> None:
    """Drained records are written, or queued again: no longer in flight."""
    global _in_flight
    with _bound_lock:
        _in_flight -= len(items)


def _price(item: dict[str, Any]) -> float | None:
    """Priced here, in the writer, not on the call path: LiteLLM's lookup is not free."""
    from .pricing import cost

    litellm_model = item.pop("litellm_model", "")
    if not litellm_model:
        return item.get("cost")
    return cost(litellm_model, item.get("prompt_tokens"), item.get("completion_tokens")) or None


def write(items: list[dict[str, Any]]) -> None:
    """Write records, their roll-ups and their tokens' last use, all or nothing: a batch
    that fails is queued again whole, so it is never counted twice."""
    from gateway.models import AccessToken
    from limits.ledger import ledger_add

    from .models import RequestLog
    from .services import rollup_add

    rows, last_used, spent = [], {}, []
    for item in items:
        item.setdefault("token_name", "in-process")
        item["cost"] = _price(item)
        # Budgets counted in the database counted this call's cost already (limits.counters).
        # (Read, not popped: a batch that fails is written again from the same records.)
        counted = item.get("spend_counted", False)
        if not counted and item["cost"]:
            spent.append(item)
        rows.append(RequestLog(**{k: v for k, v in item.items() if k not in NOT_STORED}))
        name = item["token_name"]
        if name != "in-process":
            last_used[name] = max(last_used.get(name, item["at"]), item["at"])
    with transaction.atomic():
        RequestLog.objects.bulk_create(rows)
        rollup_add(records=items)
        ledger_add(records=spent)
        # A token's "last used" rides along with the batch: no write on the request path.
        # In name order: two processes' writers lock the same tokens in the same order.
        for name, at in sorted(last_used.items()):
            AccessToken.objects.filter(name=name).update(last_used_at=at)
    if observer is not None:
        observer.written(items)


def flush() -> int:
    """Write everything queued now, on the calling thread; returns how many were written."""
    written = 0
    with _writing:
        while items := _drain():
            try:
                write(items)
            finally:
                _landed(items)
            written += len(items)
    return written


def status() -> dict[str, int]:
    """For /healthz: records waiting to be written, batches that failed to be, and records
    dropped because the queue was full (since the process started)."""
    with _bound_lock:
        pending = _queue.qsize() + _in_flight
    return {"pending": pending, "failed_writes": _failed_writes, "dropped": _dropped}


def write_round() -> None:
    """One round of the background writer: write a batch; when the database refuses it,
    keep it queued for the next round (as far as the bound allows)."""
    global _failed_writes
    items: list[dict[str, Any]] = []
    try:
        with _writing:
            items = _drain()
            if items:
                write(items)
                _landed(items)
                _dropping.clear()
    except Exception:  # noqa: BLE001 - keep the records; try again next round
        log.warning("Could not write the request log; will retry", exc_info=True)
        _keep(items)
        _landed(items)
        _failed_writes += 1
        if observer is not None:
            observer.write_failed()
    finally:
        close_old_connections()
        if observer is not None:
            observer.pending(status()["pending"])


def _run() -> None:
    while not _stopping.is_set():
        _wake.wait(settings.ROUTING_REQUEST_LOG_INTERVAL_SECONDS)
        _wake.clear()
        write_round()
    # Stopping: this thread's database connection goes with it.
    connections.close_all()


@atexit.register
def flush_at_exit() -> None:
    """Write what is still queued, or log how many records are lost (atexit, and uvicorn's
    lifespan shutdown)."""
    try:
        flush()
    except Exception:  # noqa: BLE001
        log.error("Request log records lost at shutdown: %d", _queue.qsize(), exc_info=True)
