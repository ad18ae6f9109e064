"""Writes to routing groups and router settings."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import (
    DefaultModel,
    Deployment,
    GroupFallback,
    Provider,
    RouterSettings,
    RoutingGroup,
)
from ..routing import live
from ..validators import validate_group_name, validate_model_id
from . import audit
from .calls import ProviderError, Unavailable, UnknownModel, answered_by, completion
from .last_test import last_test_fields

RESERVED_NAME = "'default' is reserved for the active default model; choose another name."
UNKNOWN_PROVIDER = "Deployment {n}: there is no provider named {name!r}."
UNKNOWN_FALLBACK = "Fallback {name!r} is not a routing group. Create it first."
SELF_FALLBACK = "A group cannot fall back to itself."
FALLBACK_LOOP = "These fallbacks would loop: {path}. Remove one of them."
DUPLICATE_DEPLOYMENT = "Deployment {n} repeats {label}; list each provider model once."
GROUP_IS_DEFAULT = "Group {name!r} is the active default. Switch the default first."
GROUP_IS_FALLBACK = "Groups {users} fall back to {name!r}. Remove it from their fallbacks first."
STALE_GROUP = (
    "Someone else changed group {name!r} while you were editing it. Reload the page to see "
    "their change, then make yours again."
)


@dataclass(frozen=True)
class DeploymentSpec:
    provider: str
    model: str
    weight: int = 1
    rpm: int | None = None
    tpm: int | None = None
    timeout: float | None = None

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


def _find_loop(start: str, edges: dict[str, list[str]]) -> list[str] | None:
    """A fallback path that returns to `start`, if any (depth-first over the new graph)."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, []):
            if nxt == start:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def _check_fallbacks(name: str, fallbacks: list[str]) -> dict[str, RoutingGroup]:
    found = {g.name: g for g in RoutingGroup.objects.filter(name__in=fallbacks)}
    errors = []
    for fallback in fallbacks:
        if fallback == name:
            errors.append(SELF_FALLBACK)
        elif fallback not in found:
            errors.append(UNKNOWN_FALLBACK.format(name=fallback))
    if errors:
        raise ValidationError({"fallbacks": errors})
    edges: dict[str, list[str]] = {}
    for group_name, fallback_name in GroupFallback.objects.values_list(
        "group__name", "fallback__name"
    ):
        edges.setdefault(group_name, []).append(fallback_name)
    edges[name] = list(fallbacks)
    loop = _find_loop(name, edges)
    if loop:
        raise ValidationError({"fallbacks": [FALLBACK_LOOP.format(path=" → ".join(loop))]})
    return found


def _check_deployments(specs: list[DeploymentSpec]) -> dict[str, Provider]:
    providers = {p.name: p for p in Provider.objects.filter(name__in=[s.provider for s in specs])}
    errors, seen = [], set()
    for n, spec in enumerate(specs, start=1):
        provider = providers.get(spec.provider)
        if provider is None:
            errors.append(UNKNOWN_PROVIDER.format(n=n, name=spec.provider))
            continue
        if spec.label in seen:
            errors.append(DUPLICATE_DEPLOYMENT.format(n=n, label=spec.label))
        seen.add(spec.label)
        try:
            validate_model_id(spec.model)
            provider.kind_info.check_model(base_url=provider.effective_base_url, model=spec.model)
        except ValidationError as exc:
            errors.extend(f"Deployment {n}: {m}" for m in exc.messages)
    if errors:
        raise ValidationError({"deployments": errors})
    return providers


@transaction.atomic
def group_save(
    *,
    name: str,
    deployments: list[DeploymentSpec],
    fallbacks: list[str] | None = None,
    description: str = "",
    drop_params: bool | None = None,
    group: RoutingGroup | None = None,
    expected_version: int | None = None,
    actor: audit.Actor = None,
) -> RoutingGroup:
    """Create a group, or replace an existing group's whole definition (`drop_params=None`
    keeps the group's switch as it is)."""
    name, fallbacks = name.strip(), [f.strip() for f in fallbacks or [] if f.strip()]
    if name == "default":
        raise ValidationError({"name": [RESERVED_NAME]})
    try:
        validate_group_name(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from None
    live.lock_config()
    if group is not None:
        group = RoutingGroup.objects.select_for_update().get(pk=group.pk)
        if expected_version is not None and group.version != expected_version:
            raise ValidationError(STALE_GROUP.format(name=group.name), code="stale")
        before = {
            "deployments": [str(d) for d in group.deployments.select_related("provider")],
            "fallbacks": [link.fallback.name for link in group.fallback_links.all()],
            "drop_params": group.drop_params,
        }
        action = "group.update"
        group.name, group.description = name, description
        group.version += 1
    else:
        before = {"deployments": [], "fallbacks": [], "drop_params": False}
        action = "group.create"
        group = RoutingGroup(name=name, description=description)
    if drop_params is not None:
        group.drop_params = drop_params
    group.full_clean()
    providers = _check_deployments(deployments)
    found = _check_fallbacks(name, fallbacks)
    group.save()
    group.deployments.all().delete()
    group.fallback_links.all().delete()
    Deployment.objects.bulk_create(
        Deployment(
            group=group,
            provider=providers[spec.provider],
            model=spec.model,
            position=position,
            weight=spec.weight,
            rpm=spec.rpm,
            tpm=spec.tpm,
            timeout=spec.timeout,
        )
        for position, spec in enumerate(deployments)
    )
    GroupFallback.objects.bulk_create(
        GroupFallback(group=group, fallback=found[f], position=position)
        for position, f in enumerate(fallbacks)
    )
    after = {
        "deployments": [s.label for s in deployments],
        "fallbacks": fallbacks,
        "drop_params": group.drop_params,
    }
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    audit.record(actor=actor, action=action, target=name, changes=changes)
    live.bump_version()
    return group


@transaction.atomic
def group_remove(*, group: RoutingGroup, actor: audit.Actor = None) -> None:
    live.lock_config()
    group = RoutingGroup.objects.select_for_update().get(pk=group.pk)
    if DefaultModel.objects.filter(id=1, group=group).exists():
        raise ValidationError(GROUP_IS_DEFAULT.format(name=group.name), code="holds_default")
    users = sorted(
        GroupFallback.objects.filter(fallback=group).values_list("group__name", flat=True)
    )
    if users:
        raise ValidationError(GROUP_IS_FALLBACK.format(users=", ".join(users), name=group.name))
    name = group.name
    group.delete()
    audit.record(actor=actor, action="group.remove", target=name, changes={})
    live.bump_version()


def router_settings_get() -> RouterSettings:
    return RouterSettings.objects.filter(id=1).first() or RouterSettings(id=1)


@transaction.atomic
def router_settings_update(*, actor: audit.Actor = None, **fields) -> RouterSettings:
    live.lock_config()
    current = router_settings_get()
    changes = {}
    for field, value in fields.items():
        old = getattr(current, field)
        if old != value:
            changes[field] = [old, value]
        setattr(current, field, value)
    current.full_clean()
    current.save()
    audit.record(actor=actor, action="router.update", target="router", changes=changes)
    live.bump_version()
    return current


PING = [{"role": "user", "content": "ping"}]
ANSWERED = "answered by {deployment}"


@dataclass(frozen=True)
class GroupTestResult:
    ok: bool
    message: str
    latency_ms: float | None


def _call(group: RoutingGroup) -> GroupTestResult:
    started = time.perf_counter()
    try:
        response = completion(PING, model=group.name, max_tokens=1)
    except (Unavailable, UnknownModel) as exc:
        return GroupTestResult(ok=False, message=str(exc), latency_ms=None)
    except ProviderError as exc:
        latency_ms = (time.perf_counter() - started) * 1000
        return GroupTestResult(ok=False, message=str(exc), latency_ms=latency_ms)
    latency_ms = (time.perf_counter() - started) * 1000
    deployment = answered_by(response) or "an unknown deployment"
    return GroupTestResult(
        ok=True, message=ANSWERED.format(deployment=deployment), latency_ms=latency_ms
    )


def group_test(*, group: RoutingGroup) -> GroupTestResult:
    """One real call through the group's router (a one-token "ping"), as an application
    makes it: which deployment answered, or why none did. Messages are already redacted.
    The outcome is recorded on the group (its last test), as a provider's test is."""
    result = _call(group)
    fields = last_test_fields(result, at=timezone.now())
    # A plain UPDATE: a test is not an edit, so it neither bumps the version (an open
    # editor would turn stale) nor updated_at, and the router's configuration is unchanged.
    RoutingGroup.objects.filter(pk=group.pk).update(**fields)
    for name, value in fields.items():
        setattr(group, name, value)
    return result
