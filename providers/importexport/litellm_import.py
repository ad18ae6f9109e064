"""Importing a LiteLLM proxy config: the plan applied through the same services as the
dashboard, in one transaction: if any entry is invalid, nothing is imported. Teams and
their limits come from the file's routing_admin section (litellm_teams.py).

litellm_read.py reads the file and each entry, litellm_plan.py decides what the entries
add up to, and this module applies that; litellm_export.py writes such files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from .. import crypto
from ..models import DefaultModel, Provider, RoutingGroup
from ..services import audit
from ..services.groups import (
    DeploymentSpec,
    group_save,
    router_settings_get,
    router_settings_update,
)
from ..services.providers import KEEP, default_model_set, provider_create, provider_update
from .litellm_plan import Plan, ProviderPlan, build_plan, differences
from .litellm_read import NOT_A_CONFIG, Conn, Entry
from .litellm_teams import apply_team, team_errors

# A provider's settings a file may give beside its connection; those it does not give are kept.
PROVIDER_SETTINGS = ("timeout", "max_retries", "display_name", "drop_params")
ALIAS_UNKNOWN_GROUP = (
    "router_settings.model_group_alias.default names {name!r}, which is not a routing group."
)


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


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            ("" if f == "__all__" else f"{f}: ") + " ".join(m) for f, m in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def _provider_changes(existing: Provider, plan: ProviderPlan) -> list[str]:
    try:
        key, headers = existing.get_api_key(), tuple(sorted(existing.get_headers().items()))
    except crypto.UndecryptableSecret:
        key, headers = None, None
    options = tuple(sorted((existing.options or {}).items()))
    current = Conn(existing.kind, existing.base_url, key, existing.api_version, headers, options)
    changes = differences(current, plan.conn)
    for attr in PROVIDER_SETTINGS:
        if getattr(plan, attr) is not None and getattr(existing, attr) != getattr(plan, attr):
            changes.append(attr.replace("_", " "))
    if not existing.enabled:
        changes.append("enabled")
    return changes


def _apply_provider(plan: ProviderPlan, report: ImportReport, actor: audit.Actor) -> None:
    existing = Provider.objects.filter(name=plan.name).first()
    fields: dict[str, Any] = {
        "kind": plan.conn.kind,
        "base_url": plan.conn.base_url,
        "api_version": plan.conn.api_version,
        "options": dict(plan.conn.options),
        "enabled": True,
    }
    fields.update({a: getattr(plan, a) for a in PROVIDER_SETTINGS if getattr(plan, a) is not None})
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
        # Settings name the host too (a region): a new one needs the secrets again.
        secrets_kept = not {"key", "headers", "base URL", "kind", "settings"} & set(changes)
        provider = provider_update(
            provider=existing,
            api_key=KEEP if secrets_kept else plan.conn.api_key,
            headers=KEEP if secrets_kept else headers,
            actor=actor,
            **fields,
        )
        report.updated.append(f"provider {plan.name} ({', '.join(changes)})")
    report.warnings.extend(f"Provider {plan.name}: {w}" for w in provider.validation_warnings)


def _group_order(plan: Plan) -> list[str]:
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


def _specs(entries: list[Entry]) -> list[DeploymentSpec]:
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


def _group_drops_params(name: str, plan: Plan) -> bool:
    """Whether the group's own switch is on: a deployment drops parameters its provider's
    switch does not already drop (the export writes either one into each deployment)."""
    return any(
        e.params["drop_params"]
        and not getattr(plan.providers.get(e.name), "drop_params", None)
        and not Provider.objects.filter(name=e.name, drop_params=True).exists()
        for e in plan.groups[name]
    )


def _apply_group(name: str, plan: Plan, report: ImportReport, actor: audit.Actor) -> None:
    specs, fallbacks = _specs(plan.groups[name]), plan.fallbacks.get(name, [])
    drop_params = _group_drops_params(name, plan)
    existing = RoutingGroup.objects.filter(name=name).first()
    if existing is not None:
        current = [
            DeploymentSpec(d.provider.name, d.model, d.weight, d.rpm, d.tpm, d.timeout)
            for d in existing.deployments.select_related("provider")
        ]
        current_fallbacks = [link.fallback.name for link in existing.fallback_links.all()]
        if (current, current_fallbacks, existing.drop_params) == (specs, fallbacks, drop_params):
            report.unchanged.append(f"group {name}")
            return
    group_save(
        name=name,
        deployments=specs,
        fallbacks=fallbacks,
        drop_params=drop_params,
        description=existing.description if existing else "",
        group=existing,
        actor=actor,
    )
    summary = ", ".join(s.label for s in specs)
    (report.updated if existing else report.created).append(f"group {name} ({summary})")


def _apply_router(plan: Plan, report: ImportReport, actor: audit.Actor) -> None:
    current = router_settings_get()
    changed = sorted(k for k, v in plan.router.items() if getattr(current, k) != v)
    if not changed:
        report.unchanged.append("router settings")
        return
    router_settings_update(actor=actor, **plan.router)
    report.updated.append(f"router settings ({', '.join(changed)})")


def _apply_default(plan: Plan, report: ImportReport, actor: audit.Actor) -> None:
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


def _apply(plan: Plan, report: ImportReport, actor: audit.Actor) -> None:
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
    # Last: a team's models name the groups and providers above.
    for team in plan.teams:
        try:
            apply_team(team, report, actor)
        except ValidationError as exc:
            report.errors.append(f"Team {team.name}: {team_errors(exc)}")


@sensitive_variables("data", "environ")
def import_config(
    *, data: dict, environ: Mapping[str, str], dry_run: bool, actor: audit.Actor
) -> ImportReport:
    """Create or update providers, groups, router settings, the default and teams from a
    LiteLLM config. All or nothing: with any error (or a dry run) every change is rolled back, so
    the report of a dry run is exactly what the import would do."""
    report = ImportReport(dry_run=dry_run)
    if not isinstance(data, dict):
        report.errors.append(NOT_A_CONFIG)
        return report
    plan = build_plan(data, environ, report.errors, report.warnings)
    with transaction.atomic():
        _apply(plan, report, actor)
        if report.errors or dry_run:
            transaction.set_rollback(True)
    return report
