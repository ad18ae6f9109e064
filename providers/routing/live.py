"""The per-process cache of what to call, and the cheap check that keeps it fresh.

Every configuration write bumps ConfigState.version. A call must not pay a database round
trip to learn whether that happened, so each process watches for changes cheaply:
- writes made by this process mark the cache dirty directly;
- on SQLite, `PRAGMA data_version` on a private connection changes when any other
  connection commits (microseconds, no query of a table);
- on PostgreSQL, a background thread LISTENs for the NOTIFY each write sends;
- and whatever the backend, the version row is re-read every
  ROUTING_CONFIG_RECHECK_SECONDS as a safety net.
Only when one of those fires is the version row read, and the cache rebuilt only when the
version moved (or this process wrote).

Lock order of configuration writes (PostgreSQL row locks; SQLite takes its one write lock
at BEGIN IMMEDIATE). Every service that changes the configuration (providers, the default,
routing groups, router settings, tokens, health records, key rotation, the imports through
those services) does, inside its transaction:
  1. `lock_config()` first, before it reads for update, inserts, updates or deletes
     anything: the ConfigState row, FOR UPDATE. It is the serialization point: two
     configuration writes never hold row locks at the same time, so they cannot deadlock;
  2. then the rows it changes (provider, routing group, default row, token, ...), in any
     order, plus the rows PostgreSQL locks by itself (KEY SHARE on every row a new foreign
     key points to, such as the default's previous provider);
  3. `bump_version()` last, which updates the row already held.
A write that locked a provider before ConfigState waited for a switch holding ConfigState,
while that switch waited for a key-share lock on the same provider (issue 12: `deadlock
detected` on providers_provider / providers_configstate). The request-log writer is the
only other writer of shared rows: it takes no configuration lock, and updates tokens in
name order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction

from limits.rules import Limits

from .. import crypto
from . import snapshot as _snapshot
from . import watchers
from .snapshot import (
    GROUP_EMPTY,
    KEY_UNDECRYPTABLE,
    MODEL_INVALID,
    MODEL_MISSING,
    NO_DEFAULT,
    PARAMS_CACHED,
    UNKNOWN_PROVIDER,
    DefaultTarget,
    DeploymentEntry,
    GroupEntry,
    GroupTarget,
    ProviderEntry,
    Snapshot,
    Target,
    TokenEntry,
    Unavailable,
    UnknownModel,
)
from .watchers import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

# Imported by name from here by the rest of the app (live.Snapshot, live.UnknownModel...).
__all__ = [
    "GROUP_EMPTY",
    "KEY_UNDECRYPTABLE",
    "MODEL_INVALID",
    "MODEL_MISSING",
    "NOTIFY_CHANNEL",
    "NO_DEFAULT",
    "PARAMS_CACHED",
    "UNKNOWN_PROVIDER",
    "DeploymentEntry",
    "GroupEntry",
    "GroupTarget",
    "ProviderEntry",
    "Snapshot",
    "Target",
    "TokenEntry",
    "Unavailable",
    "UnknownModel",
    "bump_version",
    "drain_group",
    "draining_providers",
    "lock_config",
    "mark_changed",
    "peek",
    "reset",
    "shutdown",
    "snapshot",
]


def _entry(provider) -> ProviderEntry:
    undecryptable = False
    try:
        api_key, headers = provider.get_api_key(), provider.get_headers()
    except crypto.UndecryptableSecret:
        api_key, headers, undecryptable = "", {}, True
    return ProviderEntry(
        name=provider.name,
        kind=provider.kind_info,
        base_url=provider.effective_base_url,
        api_key=api_key,
        api_version=provider.api_version,
        headers=headers,
        timeout=provider.timeout,
        max_retries=provider.max_retries,
        drop_params=provider.drop_params,
        undecryptable=undecryptable,
        models=tuple(provider.discovered_models or ()),
        options=dict(provider.options or {}),
    )


def draining_providers(providers: Iterable[Any]) -> dict[str, int]:
    """Name → pk of the providers that are unhealthy with their "take out of routing groups
    while unhealthy" switch on (issue #6)."""
    return {p.name: p.pk for p in providers if p.drain_when_unhealthy and p.unhealthy_since}


def drain_group[T](entries: list[T], draining: dict[str, int], protected: int | None) -> list[T]:
    """The deployments (anything with a `provider.name`) a group keeps: without those of
    draining providers, but never the provider holding the active default (`protected`, its
    pk: the dashboard flags it instead), and never a group's last deployments: a group that
    only unhealthy providers serve keeps them, since a struggling provider beats a certain
    error. Pure, so that the groups page shows the very rule the router applies."""
    names = {name for name, pk in draining.items() if pk != protected}
    kept = [e for e in entries if e.provider.name not in names]
    return kept or entries


def _drain_unhealthy(
    deployments: dict[int, list[DeploymentEntry]], draining: dict[str, int]
) -> None:
    from ..models import DefaultModel

    default_provider = DefaultModel.objects.filter(id=1).values_list("provider_id", flat=True)
    protected = default_provider.first()
    for group_id, entries in deployments.items():
        deployments[group_id] = drain_group(entries, draining, protected)


def _read_version() -> int:
    from ..models import ConfigState

    return ConfigState.objects.filter(id=1).values_list("version", flat=True).first() or 0


def _build(version: int) -> Snapshot:
    from gateway.models import AccessToken

    from ..models import (
        DefaultModel,
        Deployment,
        GroupFallback,
        Provider,
        RouterSettings,
        RoutingGroup,
    )

    rows = list(Provider.objects.filter(enabled=True))
    providers = {p.name: _entry(p) for p in rows}
    deployments: dict[int, list[DeploymentEntry]] = {}
    for d in Deployment.objects.select_related("provider", "group").order_by("position", "id"):
        entry = providers.get(d.provider.name)
        # A disabled provider (or one whose key cannot be decrypted) serves no group.
        if entry is None or entry.undecryptable:
            continue
        deployments.setdefault(d.group_id, []).append(
            DeploymentEntry(
                d.id, entry, d.model, d.weight, d.rpm, d.tpm, d.timeout, d.group.drop_params
            )
        )
    draining = draining_providers(rows)
    if draining:
        _drain_unhealthy(deployments, draining)
    fallbacks: dict[int, list[str]] = {}
    for group_id, name in GroupFallback.objects.order_by("position", "id").values_list(
        "group_id", "fallback__name"
    ):
        fallbacks.setdefault(group_id, []).append(name)
    groups = {
        g.name: GroupEntry(g.name, tuple(deployments.get(g.id, ())), tuple(fallbacks.get(g.id, ())))
        for g in RoutingGroup.objects.all()
    }
    tokens = {
        t.token_hash: TokenEntry(
            t.name,
            tuple(t.allowed_models or ()),
            t.expires_at,
            t.team.name if t.team else "",
            tuple(t.team.allowed_models or ()) if t.team else (),
            t.limits,
            t.team.limits if t.team else Limits(),
        )
        for t in AccessToken.objects.filter(revoked_at__isnull=True).select_related("team")
    }
    router = RouterSettings.objects.filter(id=1).first() or RouterSettings()
    default = DefaultModel.objects.select_related("provider", "group").filter(id=1).first()
    if default is None:
        default_target = None
    elif default.group_id:
        default_target = DefaultTarget(group=default.group.name)
    else:
        default_target = DefaultTarget(provider=default.provider.name, model=default.model)
    return Snapshot(
        version=version,
        providers=providers,
        default=default_target,
        groups=groups,
        tokens=tokens,
        router_settings={
            "routing_strategy": router.routing_strategy,
            "num_retries": router.num_retries,
            "timeout": router.timeout,
            "cooldown_time": router.cooldown_time,
            "allowed_fails": router.allowed_fails,
        },
    )


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: Snapshot | None = None
        self.checked_at = 0.0
        # dirty: this process wrote, so rebuild whatever the version says (a test database
        # rolled back to an equal version number must not serve a stale snapshot).
        self.dirty = True
        # recheck: another process may have written; re-read the version row.
        self.recheck = False
        self.watcher: Any = None

    def peek(self) -> Snapshot | None:
        """The cached snapshot if it is known to be fresh, without touching the database."""
        snap = self.snapshot
        if snap is None or self.dirty or self.recheck or self.watcher is None:
            return None
        if time.monotonic() - self.checked_at >= settings.ROUTING_CONFIG_RECHECK_SECONDS:
            return None
        if self.watcher.changed():
            # The signal is consumed here, so remember it until the version is re-read.
            self.recheck = True
            return None
        return snap

    def _replace(self, snapshot: Snapshot | None) -> None:
        old, self.snapshot = self.snapshot, snapshot
        if snapshot is not None and _snapshot.observer is not None:
            _snapshot.observer.serving(snapshot)
        if old is not None and old is not snapshot:
            old.retire()

    def get(self) -> Snapshot:
        snap = self.peek()
        if snap is not None:
            return snap
        with self.lock:
            if self.watcher is None:
                self.watcher = watchers.watcher_for(connections["default"])
            forced = self.dirty
            self.dirty = self.recheck = False
            version = _read_version()
            if forced or self.snapshot is None or self.snapshot.version != version:
                self._replace(_build(version))
            self.checked_at = time.monotonic()
            return self.snapshot


_cache = _Cache()


def snapshot() -> Snapshot:
    return _cache.get()


def peek() -> Snapshot | None:
    return _cache.peek()


def mark_changed() -> None:
    _cache.dirty = True


def reset() -> None:
    """Forget the cached snapshot (tests use this between databases). The watcher stays:
    on PostgreSQL it owns a listener thread and connection."""
    with _cache.lock:
        _cache._replace(None)
        _cache.dirty = True


def shutdown() -> None:
    """Stop watching for changes (closes the listener's database connection)."""
    with _cache.lock:
        if _cache.watcher is not None:
            _cache.watcher.stop()
            _cache.watcher = None
        _cache._replace(None)
        _cache.dirty = True


def lock_config() -> None:
    """Step 1 of every configuration write (see the lock order above): lock the ConfigState
    row, creating it if it is missing (a flushed test database). Call it inside the write's
    transaction, before anything else is locked or written."""
    from ..models import ConfigState

    if ConfigState.objects.select_for_update().filter(id=1).exists():
        return
    # ON CONFLICT DO NOTHING: concurrent first writes wait for each other's insert instead
    # of failing, then all lock the same row.
    ConfigState.objects.bulk_create([ConfigState(id=1, version=0)], ignore_conflicts=True)
    ConfigState.objects.select_for_update().filter(id=1).exists()


def bump_version() -> None:
    """Step 3 of every configuration write, inside its transaction, after `lock_config()`."""
    from django.db.models import F

    from ..models import ConfigState

    updated = ConfigState.objects.filter(id=1).update(version=F("version") + 1)
    if not updated:
        ConfigState.objects.create(id=1, version=1)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # NOTIFY is transactional: listeners hear it only once the change is committed.
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    # Dirty now for this thread's own next call, and again after commit for the others.
    mark_changed()
    transaction.on_commit(mark_changed)


def last_built() -> Snapshot | None:
    """The snapshot built last, fresh or not, without touching the database: for code that
    runs inside a model call (which has just read it), where a query may not be allowed."""
    return _cache.snapshot
