"""Planning a LiteLLM config import: which providers the entries need (one per distinct
connection, named by the file or after an existing provider, else derived from the URL),
which groups, fallbacks, router settings and default. Errors are collected, not raised.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .. import crypto
from ..models import Provider
from .litellm_export import ROUTER_FIELDS
from .litellm_read import Conn, Entry, InvalidEntry, parse_entry
from .litellm_teams import SECTION, TeamPlan, plan_teams

NO_MODEL_LIST = "model_list must be a list of entries, each with model_name and litellm_params."
PROVIDER_CONFLICT = (
    "provider {name!r} gets different settings ({fields}) than in {first}; one provider has "
    "one base URL, key, API version, headers, timeout and retry count."
)
DEFAULT_TWICE = (
    "there is more than one 'default' entry: the default is one provider model (or a routing "
    "group, named in router_settings.model_group_alias.default)."
)
DEFAULT_AND_ALIAS = "the file has a 'default' entry and model_group_alias.default; keep one."
ROUTER_NOT_MAPPING = "router_settings must be a mapping."
ROUTER_UNSUPPORTED = "router_settings {keys} are not supported by Routing Admin; remove them."
FALLBACKS_INVALID = "router_settings.fallbacks must be a list of {group: [fallback, ...]} mappings."
FALLBACK_UNKNOWN_GROUP = (
    "router_settings.fallbacks names {name!r}, which is not a routing group in model_list."
)
ALIAS_INVALID = (
    "router_settings.model_group_alias supports only default: <routing group name> (got {keys})."
)
SECTION_IGNORED = "Ignored the {name!r} section: it configures the LiteLLM proxy, not routing."

_ROUTER_KEYS = {*ROUTER_FIELDS, "fallbacks", "model_group_alias"}
_GENERIC_HOST_LABELS = {"api", "www"}


@dataclass
class ProviderPlan:
    name: str
    conn: Conn
    labels: list[str]
    timeout: float | None = None
    max_retries: int | None = None
    display_name: str | None = None
    drop_params: bool | None = None


@dataclass
class Plan:
    providers: dict[str, ProviderPlan] = field(default_factory=dict)
    groups: dict[str, list[Entry]] = field(default_factory=dict)
    broken_groups: set[str] = field(default_factory=set)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    router: dict[str, Any] = field(default_factory=dict)
    default: Entry | str | None = None
    teams: list[TeamPlan] = field(default_factory=list)


def _existing_identities() -> dict[tuple, str]:
    found = {}
    for provider in Provider.objects.order_by("name"):
        try:
            key, headers = provider.get_api_key(), provider.get_headers()
        except crypto.UndecryptableSecret:
            continue
        headers = tuple(sorted(headers.items()))
        options = tuple(sorted((provider.options or {}).items()))
        conn = Conn(provider.kind, provider.base_url, key, provider.api_version, headers, options)
        found.setdefault(conn.identity, provider.name)
    return found


def _derived_name(conn: Conn, taken: set[str]) -> str:
    base = conn.kind.replace("_", "-")
    host = urlsplit(conn.effective_base_url).hostname or ""
    if conn.base_url and host:
        try:
            ipaddress.ip_address(host)
            label = host
        except ValueError:
            labels = host.split(".")
            label = next((x for x in labels[:-1] if x not in _GENERIC_HOST_LABELS), labels[0])
        label = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        base = f"{base}-{label}" if label and label != base else base
    base = base[:56].strip("-") or "provider"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def differences(a: Conn, b: Conn) -> list[str]:
    names = ("kind", "base URL", "key", "API version", "headers", "settings")
    return [name for name, x, y in zip(names, a.identity, b.identity, strict=True) if x != y]


def _add_provider(plan: Plan, name: str, entry: Entry) -> str | None:
    """Attach an entry to provider `name`; the error if the two disagree."""
    current = plan.providers.get(name)
    if current is None:
        plan.providers[name] = current = ProviderPlan(name, entry.conn, [entry.label])
    elif current.conn.identity != entry.conn.identity:
        fields = ", ".join(differences(current.conn, entry.conn))
        return PROVIDER_CONFLICT.format(name=name, fields=fields, first=current.labels[0])
    else:
        current.labels.append(entry.label)
    if entry.display_name is not None and current.display_name is None:
        current.display_name = entry.display_name.strip()
    if entry.role == "group":
        return None
    retries = entry.params["max_retries"]
    retries = entry.params["num_retries"] if retries is None else retries
    for attr, value in (
        ("timeout", entry.params["timeout"]),
        ("max_retries", retries),
        ("drop_params", entry.params["drop_params"]),
    ):
        if value is None:
            continue
        if getattr(current, attr) not in (None, value):
            return PROVIDER_CONFLICT.format(name=name, fields=attr, first=current.labels[0])
        setattr(current, attr, value)
    return None


def _plan_providers(plan: Plan, entries: list[Entry], errors: list[str]) -> None:
    by_identity: dict[tuple, str] = {}
    for entry in entries:
        if entry.name:
            if problem := _add_provider(plan, entry.name, entry):
                errors.append(f"{entry.label}: {problem}")
                plan.broken_groups.add(entry.model_name)
            else:
                by_identity.setdefault(entry.conn.identity, entry.name)
    unnamed = [e for e in entries if not e.name]
    existing = _existing_identities() if unnamed else {}
    taken = set(plan.providers) | set(Provider.objects.values_list("name", flat=True))
    for entry in unnamed:
        identity = entry.conn.identity
        name = by_identity.get(identity) or existing.get(identity)
        if name is None:
            name = _derived_name(entry.conn, taken)
            taken.add(name)
        by_identity[identity] = entry.name = name
        if problem := _add_provider(plan, name, entry):
            errors.append(f"{entry.label}: {problem}")


def _plan_router(plan: Plan, router: Any, errors: list[str]) -> None:
    if router is None:
        return
    if not isinstance(router, dict):
        errors.append(ROUTER_NOT_MAPPING)
        return
    if unknown := sorted(set(router) - _ROUTER_KEYS):
        errors.append(ROUTER_UNSUPPORTED.format(keys=", ".join(unknown)))
    plan.router = {k: router[k] for k in ROUTER_FIELDS if k in router}
    fallbacks = router.get("fallbacks") or []
    valid = isinstance(fallbacks, list) and all(
        isinstance(item, dict)
        and all(isinstance(v, list) and all(isinstance(f, str) for f in v) for v in item.values())
        for item in fallbacks
    )
    if not valid:
        errors.append(FALLBACKS_INVALID)
        fallbacks = []
    for item in fallbacks:
        for group, targets in item.items():
            if group not in plan.groups and group not in plan.broken_groups:
                errors.append(FALLBACK_UNKNOWN_GROUP.format(name=group))
            plan.fallbacks.setdefault(group, []).extend(targets)
    alias = router.get("model_group_alias") or {}
    if (
        not isinstance(alias, dict)
        or set(alias) - {"default"}
        or not all(isinstance(v, str) for v in alias.values())
    ):
        errors.append(ALIAS_INVALID.format(keys=", ".join(map(str, alias)) or "-"))
    elif "default" in alias:
        if plan.default is not None:
            errors.append(DEFAULT_AND_ALIAS)
        plan.default = alias["default"]


def build_plan(
    data: dict, environ: Mapping[str, str], errors: list[str], warnings: list[str]
) -> Plan:
    plan = Plan()
    raw_entries = data.get("model_list")
    if not isinstance(raw_entries, list):
        errors.append(NO_MODEL_LIST)
        raw_entries = []
    for name in sorted(set(data) - {"model_list", "router_settings", SECTION}):
        warnings.append(SECTION_IGNORED.format(name=name))
    entries = []
    for n, raw in enumerate(raw_entries, start=1):
        try:
            entry = parse_entry(n, raw, environ, warnings)
        except InvalidEntry as exc:
            model_name = raw.get("model_name") if isinstance(raw, dict) else None
            errors.append(f"Entry {n}{f' ({model_name})' if model_name else ''}: {exc}")
            if isinstance(model_name, str):
                plan.broken_groups.add(model_name.strip())
            continue
        entries.append(entry)
        if entry.role == "group":
            plan.groups.setdefault(entry.model_name, []).append(entry)
        elif entry.role == "default":
            if plan.default is not None:
                errors.append(f"{entry.label}: {DEFAULT_TWICE}")
            plan.default = entry
    _plan_providers(plan, entries, errors)
    _plan_router(plan, data.get("router_settings"), errors)
    plan.teams = plan_teams(data, errors, warnings)
    return plan
