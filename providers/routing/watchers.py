"""How a process learns, cheaply, that another one changed the configuration.

- On SQLite, `PRAGMA data_version` on a private connection changes when any other
  connection commits (microseconds, no query of a table).
- On PostgreSQL, a background thread LISTENs for the NOTIFY each write sends.
- Otherwise nothing: the version row's periodic re-read (live.py) is the only signal.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

log = logging.getLogger("providers.routing.live")

NOTIFY_CHANNEL = "routing_config"


def watcher_for(conn: Any) -> Any:
    """A watcher for this database connection's backend: `changed()` and `stop()`."""
    if conn.vendor == "postgresql":
        return _PostgresWatcher(conn.settings_dict)
    if conn.vendor == "sqlite":
        name = str(conn.settings_dict["NAME"])
        if name and ":memory:" not in name and "mode=memory" not in name:
            return _SqliteWatcher(name)
    return _NoWatcher()


class _SqliteWatcher:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, uri=path.startswith("file:"))
        self._lock = threading.Lock()
        self._seen = self._data_version()

    def _data_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def changed(self) -> bool:
        current = self._data_version()
        if current != self._seen:
            self._seen = current
            return True
        return False

    def stop(self) -> None:
        with self._lock:
            self._conn.close()


class _PostgresWatcher:
    def __init__(self, settings_dict: dict) -> None:
        self._settings = settings_dict
        self._event = threading.Event()
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, name="routing-config-listener", daemon=True
        )
        self._thread.start()

    def _dsn(self) -> dict:
        s = self._settings
        return {
            "dbname": s["NAME"],
            "user": s.get("USER") or None,
            "password": s.get("PASSWORD") or None,
            "host": s.get("HOST") or None,
            "port": s.get("PORT") or None,
        }

    def _listen(self) -> None:
        import psycopg

        while not self._stopping.is_set():
            try:
                with psycopg.connect(autocommit=True, **self._dsn()) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._connected.set()
                    # A reconnect may have missed notifications: force one re-read.
                    self._event.set()
                    while not self._stopping.is_set():
                        # A timeout, so that stop() is noticed within a second.
                        for _ in conn.notifies(timeout=1.0):
                            self._event.set()
            except Exception:  # noqa: BLE001 - keep listening through database restarts
                log.warning("Config change listener lost its connection; retrying", exc_info=True)
            self._connected.clear()
            self._stopping.wait(1)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def changed(self) -> bool:
        # Until the listener is connected, every call re-reads the version: never stale.
        if not self._connected.is_set():
            return True
        if self._event.is_set():
            self._event.clear()
            return True
        return False


class _NoWatcher:
    def changed(self) -> bool:
        return False

    def stop(self) -> None:
        pass
