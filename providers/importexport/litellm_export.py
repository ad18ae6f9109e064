"""LiteLLM proxy `config.yaml` export: the configuration as LiteLLM would load it.

The file holds no secret: API keys and custom header values are `os.environ/NAME`
references, and their values travel separately (an env file written with mode 0600).
litellm_import.py reads such a file back.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from enum import Enum
from typing import Any

import yaml
from django.core.exceptions import ValidationError

from .. import crypto
from ..models import DefaultModel, Provider, RoutingGroup
from ..routing import live
from ..services.groups import router_settings_get
from . import litellm_teams

ENV_REF = "os.environ/"
# This app's own settings: an os.environ/ reference never reads them (the import refuses it,
# the export never writes one), or a config file could send the server's signing key, its
# encryption keys or its database password to a provider as an API key.
RESERVED_ENV_NAMES = ("SECRET_KEY", "DATABASE_URL")
RESERVED_ENV_PREFIXES = ("ROUTING_", "DJANGO_")


def is_reserved_env_name(name: str) -> bool:
    name = name.strip().upper()
    return name in RESERVED_ENV_NAMES or name.startswith(RESERVED_ENV_PREFIXES)


HEADER = (
    "# LiteLLM proxy config, exported by Routing Admin.\n"
    "# No secrets here: API keys and custom header values are os.environ/NAME references;\n"
    "# `python manage.py routing export --env-file FILE` writes their values (mode 0600).\n"
    '# "<provider>/*" entries reach any model of a provider, as "<provider>/<model id>" does in\n'
    '# Routing Admin; other model names are routing groups, and "default" is the active default\n'
    "# model (a default routing group is router_settings.model_group_alias.default).\n"
    "# routing_admin.teams holds the teams, their models and limits in LiteLLM's team fields\n"
    "# (LiteLLM's proxy ignores the section; import-litellm reads it). Tokens are not exported.\n"
)
ROUTER_FIELDS = ("routing_strategy", "num_retries", "timeout", "cooldown_time", "allowed_fails")

EXPORT_UNDECRYPTABLE = (
    "The secrets of provider {name!r} cannot be decrypted with ROUTING_ENCRYPTION_KEYS, so "
    "they cannot be written to the env file; put the old key back in the list first."
)
ENV_FILE_EXISTS = (
    "{path} already exists and is readable by others (or is not a regular file); remove it "
    "or choose another name: the env file holds API keys and must be private (mode 0600)."
)


def _env_name(*parts: str, used: set[str]) -> str:
    name = re.sub(r"[^A-Z0-9]", "_", "_".join(parts).upper())
    name = "_" + name if name[0].isdigit() or is_reserved_env_name(name) else name
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
        drop_params=provider.drop_params,
        options=dict(provider.options or {}),
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
                d.id, entry, d.model, d.weight, d.rpm, d.tpm, d.timeout, group.drop_params
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
    """The LiteLLM proxy config of every enabled provider, group and the default, the teams
    with their limits (litellm_teams.py), and (with include_secrets) the values of the
    environment variables it references."""
    env: dict[str, str] = {}
    used: set[str] = set()
    providers = list(Provider.objects.filter(enabled=True).order_by("name"))
    entries = {p.pk: _export_entry(p, used, env if include_secrets else None) for p in providers}
    model_list = []
    for p in providers:
        item = _item(f"{p.name}/*", entries[p.pk], entries[p.pk].params("*"))
        if p.display_name:
            item["model_info"]["display_name"] = p.display_name
        model_list.append(item)
    group_items, serving = _group_items(entries)
    model_list += group_items
    router = _router_settings(serving)
    default = DefaultModel.objects.select_related("provider", "group").filter(id=1).first()
    if default is not None and default.group_id and default.group in serving:
        router["model_group_alias"] = {"default": default.group.name}
    elif default is not None and default.provider_id in entries:
        entry = entries[default.provider_id]
        model_list.append(_item("default", entry, entry.params(default.model)))
    config: dict[str, Any] = {"model_list": model_list, "router_settings": router}
    if teams := litellm_teams.export_teams():
        config[litellm_teams.SECTION] = {litellm_teams.TEAMS: teams}
    return config, env


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
