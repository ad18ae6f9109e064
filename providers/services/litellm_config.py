"""LiteLLM proxy `config.yaml`: export the configuration as one, import one back.

The file holds no secret: API keys and custom header values are `os.environ/NAME`
references, and their values travel separately (an env file written with mode 0600). The
import goes through the same services as the dashboard, in one transaction: if any entry is
invalid, nothing is imported.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from .. import crypto, kinds, live
from ..models import DefaultModel, Provider, RoutingGroup
from ..validators import validate_provider_name
from . import audit
from .groups import DeploymentSpec, group_save, router_settings_get, router_settings_update
from .providers import KEEP, default_model_set, provider_create, provider_update

ENV_REF = "os.environ/"
HEADER = (
    "# LiteLLM proxy config, exported by Routing Admin.\n"
    "# No secrets here: API keys and custom header values are os.environ/NAME references;\n"
    "# `python manage.py routing export --env-file FILE` writes their values (mode 0600).\n"
    '# "<provider>/*" entries reach any model of a provider, as "<provider>/<model id>" does in\n'
    '# Routing Admin; other model names are routing groups, and "default" is the active default\n'
    "# model (a default routing group is router_settings.model_group_alias.default).\n"
)
ROUTER_FIELDS = ("routing_strategy", "num_retries", "timeout", "cooldown_time", "allowed_fails")
# LiteLLM spellings of a kind's prefix that the registry does not use itself.
PREFIX_ALIASES = {"ollama": "ollama_chat"}
MAX_CONFIG_BYTES = 512 * 1024

EXPORT_UNDECRYPTABLE = (
    "The secrets of provider {name!r} cannot be decrypted with ROUTING_ENCRYPTION_KEYS, so "
    "they cannot be written to the env file; put the old key back in the list first."
)
ENV_FILE_EXISTS = (
    "{path} already exists and is readable by others (or is not a regular file); remove it "
    "or choose another name: the env file holds API keys and must be private (mode 0600)."
)
NOT_YAML = "The file is not valid YAML ({problem} at line {line}, column {column})."
NOT_A_CONFIG = "The file is not a LiteLLM config: expected a mapping with a model_list."
NO_MODEL_LIST = "model_list must be a list of entries, each with model_name and litellm_params."
ENTRY_NOT_MAPPING = "not a mapping with model_name and litellm_params."
ENTRY_UNKNOWN_KEYS = "unsupported keys {keys}; an entry has model_name, litellm_params, model_info."
MODEL_NAME_MISSING = "model_name is missing or not text."
PARAMS_MISSING = "litellm_params is missing or not a mapping."
PARAMS_UNSUPPORTED = (
    "litellm_params {keys} are not supported by Routing Admin; remove them, or configure them "
    "in LiteLLM itself."
)
ENV_MISSING = "environment variable {var} is not set (the file reads {where} from it)."
NOT_TEXT = "{where} must be text."
NOT_A_NUMBER = "litellm_params.{key} must be a number."
UNKNOWN_KIND = "model_info.kind {kind!r} is not a provider kind; choose one of: {choices}."
UNKNOWN_PREFIX = (
    "litellm_params.model {model!r} does not start with a provider prefix Routing Admin knows "
    "({prefixes}), e.g. openai/gpt-4o-mini."
)
PREFIX_MISMATCH = (
    "litellm_params.model {model!r} does not start with {prefix}/, as kind {kind} does."
)
NAME_MISMATCH = (
    "model_name {model_name!r} names provider {name!r} but model_info.provider says {other!r}."
)
MODEL_MISMATCH = (
    "model_name {model_name!r} must name the same model as litellm_params.model ({model!r}): "
    "Routing Admin addresses a provider's models as <provider>/<model id>, without aliases."
)
GROUP_NAME_INVALID = (
    "model_name {name!r} cannot be a routing group name: use lower-case letters, digits, - and "
    "_, starting with a letter or digit, at most 63 characters (callers use this name, so it "
    "is not renamed for you)."
)
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
ALIAS_UNKNOWN_GROUP = (
    "router_settings.model_group_alias.default names {name!r}, which is not a routing group."
)
SECTION_IGNORED = "Ignored the {name!r} section: it configures the LiteLLM proxy, not routing."
INFO_IGNORED = "{label}: ignored model_info {keys}."
PARAM_IGNORED = "{label}: ignored {keys}: they apply to routing groups only."

_ENTRY_KEYS = {"model_name", "litellm_params", "model_info"}
_PARAM_KEYS = {
    "model",
    "api_base",
    "api_key",
    "api_version",
    "extra_headers",
    "timeout",
    "max_retries",
    "num_retries",
    "weight",
    "rpm",
    "tpm",
}
_DEPLOYMENT_KEYS = ("weight", "rpm", "tpm")
_ROUTER_KEYS = {*ROUTER_FIELDS, "fallbacks", "model_group_alias"}
_GENERIC_HOST_LABELS = {"api", "www"}


class _Invalid(Exception):
    """One entry cannot be imported; the message says why (and never holds a secret)."""


# --- Export ------------------------------------------------------------------------------


def _env_name(*parts: str, used: set[str]) -> str:
    name = re.sub(r"[^A-Z0-9]", "_", "_".join(parts).upper())
    name = "_" + name if name[0].isdigit() else name
    candidate, n = name, 2
    # Provider names "a-b" and "a_b" would otherwise share a variable.
    while candidate in used:
        candidate, n = f"{name}_{n}", n + 1
    used.add(candidate)
    return candidate


def _export_entry(provider: Provider, used: set[str], env: dict[str, str] | None):
    """The provider as live.py builds it, with os.environ references in place of secrets."""
    key_var = _env_name(provider.name, "API_KEY", used=used) if provider.api_key_ciphertext else ""
    header_vars = {
        name: _env_name(provider.name, "HEADER", name, used=used) for name in provider.header_names
    }
    if env is not None:
        try:
            if key_var:
                env[key_var] = provider.get_api_key()
            values = provider.get_headers()
        except crypto.UndecryptableSecret:
            raise ValidationError(EXPORT_UNDECRYPTABLE.format(name=provider.name)) from None
        env.update({var: values.get(name, "") for name, var in header_vars.items()})
    return live.ProviderEntry(
        name=provider.name,
        kind=provider.kind_info,
        base_url=provider.effective_base_url,
        api_key=ENV_REF + key_var if key_var else "",
        api_version=provider.api_version,
        headers={name: ENV_REF + var for name, var in header_vars.items()},
        timeout=provider.timeout,
        max_retries=provider.max_retries,
    )


def _item(model_name: str, entry: live.ProviderEntry, params: dict[str, Any]) -> dict[str, Any]:
    params = dict(params)
    if not entry.api_key:
        # The kind's local placeholder (or "no-key"): not a secret, and the importer restores it.
        params.pop("api_key", None)
    return {
        "model_name": model_name,
        "litellm_params": params,
        "model_info": {"provider": entry.name, "kind": entry.kind.slug},
    }


def _group_items(entries: dict[int, live.ProviderEntry]) -> tuple[list[dict], list[RoutingGroup]]:
    items, serving = [], []
    for group in RoutingGroup.objects.prefetch_related("deployments", "fallback_links__fallback"):
        # A disabled provider serves no group, as in live.py.
        deployments = [d for d in group.deployments.all() if d.provider_id in entries]
        if deployments:
            serving.append(group)
        for d in deployments:
            entry = entries[d.provider_id]
            deployment = live.DeploymentEntry(
                d.id, entry, d.model, d.weight, d.rpm, d.tpm, d.timeout
            )
            items.append(_item(group.name, entry, deployment.router_params()))
    return items, serving


def _router_settings(serving: list[RoutingGroup]) -> dict[str, Any]:
    settings = router_settings_get()
    # An unsaved default row holds choices enums, which YAML cannot represent.
    router: dict[str, Any] = {
        name: value.value if isinstance(value := getattr(settings, name), Enum) else value
        for name in ROUTER_FIELDS
    }
    names = {g.name for g in serving}
    router["fallbacks"] = []
    for group in serving:
        fallbacks = [f.fallback.name for f in group.fallback_links.all()]
        if fallbacks := [name for name in fallbacks if name in names]:
            router["fallbacks"].append({group.name: fallbacks})
    return router


def export_config(*, include_secrets: bool = False) -> tuple[dict, dict[str, str]]:
    """The LiteLLM proxy config of every enabled provider, group and the default, and (with
    include_secrets) the values of the environment variables it references."""
    env: dict[str, str] = {}
    used: set[str] = set()
    entries = {
        p.pk: _export_entry(p, used, env if include_secrets else None)
        for p in Provider.objects.filter(enabled=True).order_by("name")
    }
    model_list = [_item(f"{e.name}/*", e, e.params("*")) for e in entries.values()]
    group_items, serving = _group_items(entries)
    model_list += group_items
    router = _router_settings(serving)
    default = DefaultModel.objects.select_related("provider", "group").filter(id=1).first()
    if default is not None and default.group_id and default.group in serving:
        router["model_group_alias"] = {"default": default.group.name}
    elif default is not None and default.provider_id in entries:
        entry = entries[default.provider_id]
        model_list.append(_item("default", entry, entry.params(default.model)))
    return {"model_list": model_list, "router_settings": router}, env


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Entries of one provider share dicts; &id001 anchors would only confuse readers.
        return True


def render_yaml(config: dict) -> str:
    return HEADER + yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def _env_value(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:+=@,~-]*", value):
        return value
    # Single quotes: python-dotenv reads them literally except \\ and \'.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_env(env: Mapping[str, str]) -> str:
    lines = ["# Secrets for the exported LiteLLM config. Keep this file private.\n"]
    lines += [f"{name}={_env_value(value)}\n" for name, value in env.items()]
    return "".join(lines)


def write_env_file(path: str, env: Mapping[str, str]) -> None:
    """Write the env file with mode 0600; an existing file is replaced only if it is a
    regular file that already has no permissions for group and others."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            fd = os.open(path, flags, 0o600)
        except OSError:
            raise ValidationError(ENV_FILE_EXISTS.format(path=path)) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode) or mode & 0o077:
            os.close(fd)
            raise ValidationError(ENV_FILE_EXISTS.format(path=path)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.truncate(0)
        out.write(render_env(env))


# --- Reading files -----------------------------------------------------------------------


def parse_yaml(text: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # Never str(exc): it quotes the offending line, which may hold a key.
        mark = exc.problem_mark
        raise ValidationError(
            NOT_YAML.format(
                problem=exc.problem or "syntax error",
                line=mark.line + 1 if mark else "?",
                column=mark.column + 1 if mark else "?",
            )
        ) from None
    except yaml.YAMLError:
        raise ValidationError(
            NOT_YAML.format(problem="syntax error", line="?", column="?")
        ) from None
    if not isinstance(data, dict) or "model_list" not in data:
        raise ValidationError(NOT_A_CONFIG)
    return data


def parse_env(text: str) -> dict[str, str]:
    """Values from .env text. No ${VAR} interpolation: it would read this server's own
    environment (its SECRET_KEY, say) into a key that is then sent to a provider."""
    from dotenv import dotenv_values

    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {name: value for name, value in values.items() if value is not None}


# --- Import: reading entries ---------------------------------------------------------------


@dataclass
class ImportReport:
    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


@dataclass(frozen=True)
class _Conn:
    """How to reach a provider: entries with equal connections share one provider."""

    kind: str
    base_url: str  # "" when it is the kind's default
    api_key: str
    api_version: str
    headers: tuple[tuple[str, str], ...]

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or kinds.KINDS[self.kind].default_base_url).rstrip("/")

    @property
    def identity(self) -> tuple:
        return (self.kind, self.effective_base_url, self.api_key, self.api_version, self.headers)


@dataclass
class _Entry:
    label: str
    model_name: str
    role: str  # "group", "provider" (<provider>/...) or "default"
    name: str | None  # the provider's name, when the file gives one
    conn: _Conn
    model: str
    params: dict[str, Any]


def _resolve(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith(ENV_REF):
        var = value.removeprefix(ENV_REF)
        resolved = environ.get(var)
        if not resolved:
            raise _Invalid(ENV_MISSING.format(var=var, where=where))
        return resolved
    return value


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if value is None:
        return ""
    if isinstance(value, datetime.date):
        # YAML reads an unquoted api_version such as 2024-10-21 as a date.
        return value.isoformat()
    if not isinstance(value, str):
        raise _Invalid(NOT_TEXT.format(where=f"litellm_params.{key}"))
    return value.strip()


def _number(params: dict[str, Any], key: str, kind: type) -> Any:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(NOT_A_NUMBER.format(key=key))
    if kind is int and value != int(value):
        raise _Invalid(NOT_A_NUMBER.format(key=key))
    return kind(value)


def _litellm_base(kind: kinds.ProviderKind, base_url: str) -> str:
    params = kind.litellm_params(
        model="m",
        base_url=base_url,
        api_key="",
        api_version="",
        headers={},
        timeout=1.0,
        max_retries=0,
    )
    return params["api_base"].rstrip("/")


def _kind_and_model(model: Any, slug: Any, api_base: str) -> tuple[kinds.ProviderKind, str]:
    if not isinstance(model, str) or not model.strip():
        raise _Invalid(NOT_TEXT.format(where="litellm_params.model"))
    prefix, _, model_id = model.strip().partition("/")
    prefix = PREFIX_ALIASES.get(prefix, prefix)
    if slug is not None:
        if slug not in kinds.KINDS:
            raise _Invalid(UNKNOWN_KIND.format(kind=slug, choices=", ".join(kinds.KINDS)))
        kind = kinds.KINDS[slug]
        if prefix != kind.litellm_prefix or not model_id:
            raise _Invalid(
                PREFIX_MISMATCH.format(model=model, prefix=kind.litellm_prefix, kind=slug)
            )
        return kind, model_id
    candidates = [k for k in kinds.KINDS.values() if k.litellm_prefix == prefix]
    if not candidates or not model_id:
        known = sorted({k.litellm_prefix for k in kinds.KINDS.values()} | set(PREFIX_ALIASES))
        raise _Invalid(UNKNOWN_PREFIX.format(model=model, prefixes=", ".join(known)))
    # Kinds sharing a prefix (openai, openai_compatible): the one whose default base URL this
    # is, else the one that has no default.
    for kind in candidates:
        if kind.default_base_url and (
            not api_base or api_base.rstrip("/") == _litellm_base(kind, kind.default_base_url)
        ):
            return kind, model_id
    return next((k for k in candidates if k.base_url_required), candidates[0]), model_id


def _conn(kind: kinds.ProviderKind, params: dict[str, Any]) -> _Conn:
    api_base = _text(params, "api_base").rstrip("/")
    if kind.default_base_url and api_base == _litellm_base(kind, kind.default_base_url):
        api_base = ""
    api_key = _text(params, "api_key")
    if api_key == kind.placeholder_api_key:
        api_key = ""
    headers = params.get("extra_headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _Invalid(NOT_TEXT.format(where="each litellm_params.extra_headers value"))
    return _Conn(
        kind=kind.slug,
        base_url=api_base,
        api_key=api_key,
        api_version=_text(params, "api_version"),
        headers=tuple(sorted((str(k).strip(), v.strip()) for k, v in headers.items())),
    )


def _role(model_name: str, info_name: Any, model_id: str) -> tuple[str, str | None]:
    if info_name is not None and not isinstance(info_name, str):
        raise _Invalid(NOT_TEXT.format(where="model_info.provider"))
    if model_name == "default":
        return "default", info_name
    if "/" not in model_name:
        return "group", info_name
    name, _, rest = model_name.partition("/")
    if info_name and info_name != name:
        raise _Invalid(NAME_MISMATCH.format(model_name=model_name, name=name, other=info_name))
    if rest != model_id:
        raise _Invalid(MODEL_MISMATCH.format(model_name=model_name, model=model_id))
    return "provider", name


def _parse_entry(n: int, raw: Any, environ: Mapping[str, str], warnings: list[str]) -> _Entry:
    if not isinstance(raw, dict):
        raise _Invalid(ENTRY_NOT_MAPPING)
    if unknown := sorted(set(raw) - _ENTRY_KEYS):
        raise _Invalid(ENTRY_UNKNOWN_KEYS.format(keys=", ".join(unknown)))
    model_name, params, info = (raw.get(k) for k in ("model_name", "litellm_params", "model_info"))
    if not isinstance(model_name, str) or not model_name.strip():
        raise _Invalid(MODEL_NAME_MISSING)
    model_name = model_name.strip()
    if not isinstance(params, dict):
        raise _Invalid(PARAMS_MISSING)
    info = info if isinstance(info, dict) else {}
    if unknown := sorted(set(params) - _PARAM_KEYS):
        raise _Invalid(PARAMS_UNSUPPORTED.format(keys=", ".join(unknown)))
    label = f"Entry {n} ({model_name})"
    if ignored := sorted(set(info) - {"provider", "kind"}):
        warnings.append(INFO_IGNORED.format(label=label, keys=", ".join(ignored)))
    params = {k: _resolve(v, f"litellm_params.{k}", environ) for k, v in params.items()}
    if isinstance(params.get("extra_headers"), dict):
        params["extra_headers"] = {
            k: _resolve(v, f"header {k}", environ) for k, v in params["extra_headers"].items()
        }
    kind, model_id = _kind_and_model(
        params.get("model"), info.get("kind"), _text(params, "api_base")
    )
    role, name = _role(model_name, info.get("provider"), model_id)
    if role == "group":
        try:
            validate_provider_name(model_name)
        except ValidationError:
            raise _Invalid(GROUP_NAME_INVALID.format(name=model_name)) from None
    if role != "group" and (ignored := [k for k in _DEPLOYMENT_KEYS if k in params]):
        warnings.append(PARAM_IGNORED.format(label=label, keys=", ".join(ignored)))
    for key, number in (("timeout", float), ("max_retries", int), ("num_retries", int)):
        params[key] = _number(params, key, number)
    for key in _DEPLOYMENT_KEYS:
        params[key] = _number(params, key, int)
    return _Entry(label, model_name, role, name, _conn(kind, params), model_id, params)


# --- Import: the plan ---------------------------------------------------------------------


@dataclass
class _ProviderPlan:
    name: str
    conn: _Conn
    labels: list[str]
    timeout: float | None = None
    max_retries: int | None = None


@dataclass
class _Plan:
    providers: dict[str, _ProviderPlan] = field(default_factory=dict)
    groups: dict[str, list[_Entry]] = field(default_factory=dict)
    broken_groups: set[str] = field(default_factory=set)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    router: dict[str, Any] = field(default_factory=dict)
    default: _Entry | str | None = None


def _existing_identities() -> dict[tuple, str]:
    found = {}
    for provider in Provider.objects.order_by("name"):
        try:
            key, headers = provider.get_api_key(), provider.get_headers()
        except crypto.UndecryptableSecret:
            continue
        headers = tuple(sorted(headers.items()))
        conn = _Conn(provider.kind, provider.base_url, key, provider.api_version, headers)
        found.setdefault(conn.identity, provider.name)
    return found


def _derived_name(conn: _Conn, taken: set[str]) -> str:
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


def _differences(a: _Conn, b: _Conn) -> list[str]:
    names = ("kind", "base URL", "key", "API version", "headers")
    return [name for name, x, y in zip(names, a.identity, b.identity, strict=True) if x != y]


def _add_provider(plan: _Plan, name: str, entry: _Entry) -> str | None:
    """Attach an entry to provider `name`; the error if the two disagree."""
    current = plan.providers.get(name)
    if current is None:
        plan.providers[name] = current = _ProviderPlan(name, entry.conn, [entry.label])
    elif current.conn.identity != entry.conn.identity:
        fields = ", ".join(_differences(current.conn, entry.conn))
        return PROVIDER_CONFLICT.format(name=name, fields=fields, first=current.labels[0])
    else:
        current.labels.append(entry.label)
    if entry.role == "group":
        return None
    retries = entry.params["max_retries"]
    retries = entry.params["num_retries"] if retries is None else retries
    for attr, value in (("timeout", entry.params["timeout"]), ("max_retries", retries)):
        if value is None:
            continue
        if getattr(current, attr) not in (None, value):
            return PROVIDER_CONFLICT.format(name=name, fields=attr, first=current.labels[0])
        setattr(current, attr, value)
    return None


def _plan_providers(plan: _Plan, entries: list[_Entry], errors: list[str]) -> None:
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


def _plan_router(plan: _Plan, router: Any, errors: list[str]) -> None:
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


def _plan(data: dict, environ: Mapping[str, str], report: ImportReport) -> _Plan:
    plan = _Plan()
    raw_entries = data.get("model_list")
    if not isinstance(raw_entries, list):
        report.errors.append(NO_MODEL_LIST)
        raw_entries = []
    for name in sorted(set(data) - {"model_list", "router_settings"}):
        report.warnings.append(SECTION_IGNORED.format(name=name))
    entries = []
    for n, raw in enumerate(raw_entries, start=1):
        try:
            entry = _parse_entry(n, raw, environ, report.warnings)
        except _Invalid as exc:
            model_name = raw.get("model_name") if isinstance(raw, dict) else None
            report.errors.append(f"Entry {n}{f' ({model_name})' if model_name else ''}: {exc}")
            if isinstance(model_name, str):
                plan.broken_groups.add(model_name.strip())
            continue
        entries.append(entry)
        if entry.role == "group":
            plan.groups.setdefault(entry.model_name, []).append(entry)
        elif entry.role == "default":
            if plan.default is not None:
                report.errors.append(f"{entry.label}: {DEFAULT_TWICE}")
            plan.default = entry
    _plan_providers(plan, entries, report.errors)
    _plan_router(plan, data.get("router_settings"), report.errors)
    return plan


# --- Import: applying the plan through the services --------------------------------------


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            ("" if f == "__all__" else f"{f}: ") + " ".join(m) for f, m in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def _provider_changes(existing: Provider, plan: _ProviderPlan) -> list[str]:
    try:
        key, headers = existing.get_api_key(), tuple(sorted(existing.get_headers().items()))
    except crypto.UndecryptableSecret:
        key, headers = None, None
    current = _Conn(existing.kind, existing.base_url, key, existing.api_version, headers)
    changes = _differences(current, plan.conn)
    for attr in ("timeout", "max_retries"):
        if getattr(plan, attr) is not None and getattr(existing, attr) != getattr(plan, attr):
            changes.append(attr.replace("_", " "))
    if not existing.enabled:
        changes.append("enabled")
    return changes


def _apply_provider(plan: _ProviderPlan, report: ImportReport, actor: audit.Actor) -> None:
    existing = Provider.objects.filter(name=plan.name).first()
    fields: dict[str, Any] = {
        "kind": plan.conn.kind,
        "base_url": plan.conn.base_url,
        "api_version": plan.conn.api_version,
        "enabled": True,
    }
    fields.update(
        {a: getattr(plan, a) for a in ("timeout", "max_retries") if getattr(plan, a) is not None}
    )
    headers = dict(plan.conn.headers)
    if existing is None:
        provider = provider_create(
            name=plan.name, api_key=plan.conn.api_key, headers=headers, actor=actor, **fields
        )
        report.created.append(f"provider {plan.name} ({plan.conn.kind})")
    else:
        changes = _provider_changes(existing, plan)
        if not changes:
            report.unchanged.append(f"provider {plan.name}")
            return
        if existing.effective_base_url.rstrip("/") == plan.conn.effective_base_url:
            # Keep the stored spelling of an equivalent URL (blank for the kind's default).
            fields["base_url"] = existing.base_url
        secrets_kept = not {"key", "headers", "base URL", "kind"} & set(changes)
        provider = provider_update(
            provider=existing,
            api_key=KEEP if secrets_kept else plan.conn.api_key,
            headers=KEEP if secrets_kept else headers,
            actor=actor,
            **fields,
        )
        report.updated.append(f"provider {plan.name} ({', '.join(changes)})")
    report.warnings.extend(f"Provider {plan.name}: {w}" for w in provider.validation_warnings)


def _group_order(plan: _Plan) -> list[str]:
    """Groups after the groups they fall back to, so that those exist when saved."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name in path or name not in plan.groups:
            return
        for fallback in plan.fallbacks.get(name, []):
            visit(fallback, (*path, name))
        order.append(name)

    for name in plan.groups:
        visit(name, ())
    return order


def _specs(entries: list[_Entry]) -> list[DeploymentSpec]:
    timeouts = dict(
        Provider.objects.filter(name__in=[e.name for e in entries]).values_list("name", "timeout")
    )
    return [
        DeploymentSpec(
            provider=e.name,
            model=e.model,
            weight=1 if e.params["weight"] is None else e.params["weight"],
            rpm=e.params["rpm"],
            tpm=e.params["tpm"],
            # The provider's own timeout is what a deployment without one uses anyway.
            timeout=None if e.params["timeout"] == timeouts.get(e.name) else e.params["timeout"],
        )
        for e in entries
    ]


def _apply_group(name: str, plan: _Plan, report: ImportReport, actor: audit.Actor) -> None:
    specs, fallbacks = _specs(plan.groups[name]), plan.fallbacks.get(name, [])
    existing = RoutingGroup.objects.filter(name=name).first()
    if existing is not None:
        current = [
            DeploymentSpec(d.provider.name, d.model, d.weight, d.rpm, d.tpm, d.timeout)
            for d in existing.deployments.select_related("provider")
        ]
        current_fallbacks = [link.fallback.name for link in existing.fallback_links.all()]
        if (current, current_fallbacks) == (specs, fallbacks):
            report.unchanged.append(f"group {name}")
            return
    group_save(
        name=name,
        deployments=specs,
        fallbacks=fallbacks,
        description=existing.description if existing else "",
        group=existing,
        actor=actor,
    )
    summary = ", ".join(s.label for s in specs)
    (report.updated if existing else report.created).append(f"group {name} ({summary})")


def _apply_router(plan: _Plan, report: ImportReport, actor: audit.Actor) -> None:
    current = router_settings_get()
    changed = sorted(k for k, v in plan.router.items() if getattr(current, k) != v)
    if not changed:
        report.unchanged.append("router settings")
        return
    router_settings_update(actor=actor, **plan.router)
    report.updated.append(f"router settings ({', '.join(changed)})")


def _apply_default(plan: _Plan, report: ImportReport, actor: audit.Actor) -> None:
    current = DefaultModel.objects.select_related("provider", "group").filter(id=1).first()
    if isinstance(plan.default, str):
        label = plan.default
        target = {"group": RoutingGroup.objects.filter(name=plan.default).first()}
        if target["group"] is None:
            raise ValidationError(ALIAS_UNKNOWN_GROUP.format(name=plan.default))
    else:
        label = f"{plan.default.name}/{plan.default.model}"
        target = {
            "provider": Provider.objects.get(name=plan.default.name),
            "model": plan.default.model,
        }
    if current is not None and str(current) == label:
        report.unchanged.append(f"default model {label}")
        return
    default_model_set(actor=actor, **target)
    (report.updated if current else report.created).append(f"default model {label}")


def _apply(plan: _Plan, report: ImportReport, actor: audit.Actor) -> None:
    failed = set()
    for provider in plan.providers.values():
        try:
            _apply_provider(provider, report, actor)
        except ValidationError as exc:
            failed.add(provider.name)
            entries = ", ".join(provider.labels)
            report.errors.append(f"Provider {provider.name} ({entries}): {_messages(exc)}")
    steps: list[tuple[str, Any]] = [
        (f"Group {name}", lambda name=name: _apply_group(name, plan, report, actor))
        for name in _group_order(plan)
        if name not in plan.broken_groups and not {e.name for e in plan.groups[name]} & failed
    ]
    steps.append(("router_settings", lambda: _apply_router(plan, report, actor)))
    default_provider = getattr(plan.default, "name", None)
    if plan.default is not None and default_provider not in failed:
        label = plan.default.label if default_provider else "model_group_alias.default"
        steps.append((label, lambda: _apply_default(plan, report, actor)))
    for label, step in steps:
        try:
            step()
        except ValidationError as exc:
            report.errors.append(f"{label}: {_messages(exc)}")


def import_config(
    *, data: dict, environ: Mapping[str, str], dry_run: bool, actor: audit.Actor
) -> ImportReport:
    """Create or update providers, groups, router settings and the default from a LiteLLM
    config. All or nothing: with any error (or a dry run) every change is rolled back, so
    the report of a dry run is exactly what the import would do."""
    report = ImportReport(dry_run=dry_run)
    if not isinstance(data, dict):
        report.errors.append(NOT_A_CONFIG)
        return report
    plan = _plan(data, environ, report)
    with transaction.atomic():
        _apply(plan, report, actor)
        if report.errors or dry_run:
            transaction.set_rollback(True)
    return report
