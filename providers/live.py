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
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from . import crypto, kinds
from .validators import validate_model_id

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "routing_config"

NO_DEFAULT = (
    "No default model is set. Set one with `python manage.py routing default set PROVIDER MODEL` "
    "or on the dashboard, or pass model='<provider>/<model id>'."
)
UNKNOWN_PROVIDER = (
    "No enabled provider is named {name!r}. Address a model as '<provider name>/<model id>'; "
    "`python manage.py routing provider list` shows the providers."
)
MODEL_MISSING = "Model {model!r} names no model ID: use '<provider name>/<model id>'."
MODEL_INVALID = "Model {model!r} is not a valid model ID: {reason}"
# Per provider, the LiteLLM parameters of this many model IDs are kept; others are rebuilt.
PARAMS_CACHED = 256
KEY_UNDECRYPTABLE = (
    "The API key of provider {name!r} cannot be decrypted with the configured "
    "ROUTING_ENCRYPTION_KEYS; put the key it was encrypted with back in the list."
)


GROUP_EMPTY = (
    "Routing group {name!r} has no enabled deployment: every provider it uses is disabled, "
    "or it has none. Add a deployment or enable a provider."
)


class UnknownModel(LookupError):
    """The requested model names nothing that is configured."""


class Unavailable(LookupError):
    """The model is configured, but nothing can serve it right now."""


@dataclass
class ProviderEntry:
    name: str
    kind: kinds.ProviderKind
    base_url: str
    # Never in a repr: an error report or a log line may print this entry.
    api_key: str = field(repr=False)
    api_version: str
    headers: dict[str, str] = field(repr=False)
    timeout: float
    max_retries: int
    undecryptable: bool = False
    models: tuple[str, ...] = ()
    _params: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key, *self.headers.values())

    def params(self, model: str) -> dict[str, Any]:
        if self.undecryptable:
            raise UnknownModel(KEY_UNDECRYPTABLE.format(name=self.name))
        built = self._params.get(model)
        if built is None:
            built = self.kind.litellm_params(
                model=model,
                base_url=self.base_url,
                api_key=self.api_key,
                api_version=self.api_version,
                headers=self.headers,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
            if len(self._params) < PARAMS_CACHED:
                self._params[model] = built
        return built


@dataclass(frozen=True)
class Target:
    provider: ProviderEntry
    model: str

    @property
    def params(self) -> dict[str, Any]:
        return self.provider.params(self.model)


@dataclass(frozen=True)
class DeploymentEntry:
    id: int
    provider: ProviderEntry
    model: str
    weight: int
    rpm: int | None
    tpm: int | None
    timeout: float | None

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"

    def router_params(self) -> dict[str, Any]:
        params = dict(self.provider.params(self.model))
        # The Router retries and falls back itself; per-call retries would multiply them.
        params.pop("num_retries", None)
        params["max_retries"] = 0
        if self.timeout:
            params["timeout"] = self.timeout
        params["weight"] = self.weight
        for name in ("rpm", "tpm"):
            if getattr(self, name):
                params[name] = getattr(self, name)
        return params


@dataclass(frozen=True)
class GroupEntry:
    name: str
    deployments: tuple[DeploymentEntry, ...]
    fallbacks: tuple[str, ...]


@dataclass(frozen=True)
class GroupTarget:
    group: GroupEntry
    snapshot: Snapshot

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for d in self.group.deployments for s in d.provider.secrets)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    allowed_models: tuple[str, ...]
    expires_at: Any  # datetime | None

    def allows(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


@dataclass
class Snapshot:
    version: int
    providers: dict[str, ProviderEntry] = field(repr=False)
    # ("model", provider, model id) or ("group", name), or None
    default: tuple[str, ...] | None
    groups: dict[str, GroupEntry] = field(default_factory=dict)
    router_settings: dict[str, Any] = field(default_factory=dict)
    # Live (not revoked) gateway tokens by SHA-256: authenticating costs no query.
    tokens: dict[str, TokenEntry] = field(default_factory=dict, repr=False)
    _router: Any = field(default=None, repr=False)
    _router_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def resolve(self, model: str | None) -> Target | GroupTarget:
        if model in (None, "", "default"):
            if self.default is None:
                raise UnknownModel(NO_DEFAULT)
            if self.default[0] == "group":
                return self._group(self.default[1])
            _, provider_name, model_id = self.default
        elif "/" not in model and model in self.groups:
            return self._group(model)
        else:
            provider_name, _, model_id = model.partition("/")
            if not model_id:
                raise UnknownModel(MODEL_MISSING.format(model=model))
        entry = self.providers.get(provider_name)
        if entry is None:
            raise UnknownModel(UNKNOWN_PROVIDER.format(name=provider_name))
        if model_id not in entry._params:
            # A caller's model ID becomes part of the provider's URL for some kinds (Azure's
            # deployments, Gemini's models): "../" or "?" must never reach it.
            try:
                validate_model_id(model_id)
            except ValidationError as exc:
                message = MODEL_INVALID.format(model=model, reason=" ".join(exc.messages))
                raise UnknownModel(message) from None
        return Target(provider=entry, model=model_id)

    def _group(self, name: str) -> GroupTarget:
        group = self.groups[name]
        if not group.deployments:
            raise Unavailable(GROUP_EMPTY.format(name=name))
        return GroupTarget(group=group, snapshot=self)

    def deployment_label(self, deployment_id: Any) -> str:
        for group in self.groups.values():
            for deployment in group.deployments:
                if str(deployment.id) == str(deployment_id):
                    return deployment.label
        return ""

    def router(self) -> Any:
        """One LiteLLM Router for every group, built on first use and kept until the
        configuration version changes (a new snapshot)."""
        if self._router is None:
            with self._router_lock:
                if self._router is None:
                    self._router = self._build_router()
        return self._router

    def _build_router(self) -> Any:
        from .llm import litellm

        serving = {name for name, g in self.groups.items() if g.deployments}
        model_list = [
            {
                "model_name": group.name,
                "litellm_params": deployment.router_params(),
                "model_info": {"id": str(deployment.id), "deployment": deployment.label},
            }
            for group in self.groups.values()
            for deployment in group.deployments
        ]
        fallbacks = [
            {group.name: [f for f in group.fallbacks if f in serving]}
            for group in self.groups.values()
            if any(f in serving for f in group.fallbacks)
        ]
        return litellm().Router(model_list=model_list, fallbacks=fallbacks, **self.router_settings)


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
        undecryptable=undecryptable,
        models=tuple(provider.discovered_models or ()),
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
    from .models import DefaultModel

    default_provider = DefaultModel.objects.filter(id=1).values_list("provider_id", flat=True)
    protected = default_provider.first()
    for group_id, entries in deployments.items():
        deployments[group_id] = drain_group(entries, draining, protected)


def _read_version() -> int:
    from .models import ConfigState

    return ConfigState.objects.filter(id=1).values_list("version", flat=True).first() or 0


def _build(version: int) -> Snapshot:
    from .models import (
        AccessToken,
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
    for d in Deployment.objects.select_related("provider").order_by("position", "id"):
        entry = providers.get(d.provider.name)
        # A disabled provider (or one whose key cannot be decrypted) serves no group.
        if entry is None or entry.undecryptable:
            continue
        deployments.setdefault(d.group_id, []).append(
            DeploymentEntry(d.id, entry, d.model, d.weight, d.rpm, d.tpm, d.timeout)
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
        t.token_hash: TokenEntry(t.name, tuple(t.allowed_models or ()), t.expires_at)
        for t in AccessToken.objects.filter(revoked_at__isnull=True)
    }
    router = RouterSettings.objects.filter(id=1).first() or RouterSettings()
    default = DefaultModel.objects.select_related("provider", "group").filter(id=1).first()
    if default is None:
        default_target = None
    elif default.group_id:
        default_target = ("group", default.group.name)
    else:
        default_target = ("model", default.provider.name, default.model)
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

    def _make_watcher(self) -> Any:
        conn = connections["default"]
        if conn.vendor == "postgresql":
            return _PostgresWatcher(conn.settings_dict)
        if conn.vendor == "sqlite":
            name = str(conn.settings_dict["NAME"])
            if name and ":memory:" not in name and "mode=memory" not in name:
                return _SqliteWatcher(name)
        return _NoWatcher()

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

    def get(self) -> Snapshot:
        snap = self.peek()
        if snap is not None:
            return snap
        with self.lock:
            if self.watcher is None:
                self.watcher = self._make_watcher()
            forced = self.dirty
            self.dirty = self.recheck = False
            version = _read_version()
            if forced or self.snapshot is None or self.snapshot.version != version:
                self.snapshot = _build(version)
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
        _cache.snapshot = None
        _cache.dirty = True


def shutdown() -> None:
    """Stop watching for changes (closes the listener's database connection)."""
    with _cache.lock:
        if _cache.watcher is not None:
            _cache.watcher.stop()
            _cache.watcher = None
        _cache.snapshot = None
        _cache.dirty = True


def bump_version() -> None:
    """Call inside the transaction of every configuration write."""
    from django.db.models import F

    from .models import ConfigState

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
