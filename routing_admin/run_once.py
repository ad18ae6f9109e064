"""Scheduled work that runs once however many machines' crons start it (issue 16).

`routing health-check` and `routing prune-requests` run inside `exclusively(name)`. On
PostgreSQL, the lock is a session advisory lock on a connection of its own (Django's own can be
closed under a job by `close_old_connections()` or an error, which would drop the lock without
a word); every machine sharing the database sees it. On SQLite, which one machine uses, it is
an flock() on a file beside the database. Either way the operating system or the database
frees it when the holder dies, crash included, so no stale lock needs clearing.

The lock keeps two runs from overlapping; it does not space them out: crons a minute apart
both run, one after the other.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connections

ALREADY_RUNNING = (
    "{name} is already running (on this machine or another that shares the database): "
    "skipped this run."
)


def _advisory_key(name: str) -> int:
    # Stable across processes and machines (Python's hash() is salted per process).
    return zlib.crc32(f"routing-admin:{name}".encode())


def _lock_file(name: str) -> Path:
    db_name = str(connections["default"].settings_dict["NAME"])
    if db_name and not db_name.startswith((":memory:", "file:")):
        return Path(f"{db_name}.{name}.lock")
    # An in-memory database (tests): one lock per database name, in the temporary directory.
    digest = hashlib.sha256(db_name.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"routing-admin-{digest}.{name}.lock"


@contextmanager
def _postgresql(name: str) -> Iterator[bool]:
    own = connections.create_connection("default")
    try:
        with own.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_advisory_key(name)])
            held = cursor.fetchone()[0]
        yield held
        if held:
            with own.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_advisory_key(name)])
    finally:
        own.close()


@contextmanager
def _file(name: str) -> Iterator[bool]:
    with open(_lock_file(name), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def exclusively(name: str) -> Iterator[bool]:
    """True inside while this process alone runs `name`; False when another one does (the
    caller then skips its run)."""
    vendor = connections["default"].vendor
    lock = _postgresql if vendor == "postgresql" else _file
    with lock(name) as held:
        yield held
