"""The routing groups page: every group with its deployments, each with why the router
leaves it out (or "" when it serves calls), in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch

from ..models import DefaultModel, Deployment, GroupFallback, KeyState, Provider, RoutingGroup
from ..routing import live

PROVIDER_DISABLED = "provider disabled"
KEY_UNDECRYPTABLE = "API key cannot be decrypted"
DRAINED = "taken out (unhealthy)"


@dataclass(frozen=True)
class DeploymentRow:
    deployment: Deployment
    # Why the router leaves this deployment out, or "" when it serves calls.
    problem: str

    @property
    def scope(self) -> str:
        # Id prefix of the health badge: one provider may appear in several groups.
        return f"deployment{self.deployment.pk}"


@dataclass(frozen=True)
class GroupRow:
    group: RoutingGroup
    deployments: list[DeploymentRow]
    fallbacks: list[str]
    is_default: bool

    @property
    def broken(self) -> bool:
        return not any(not d.problem for d in self.deployments)


def _problem(provider: Provider) -> str:
    # The same rule as the router's snapshot (live._build); spelt out here so the page can
    # say why, and is right at once after a save in another process.
    if not provider.enabled:
        return PROVIDER_DISABLED
    if provider.key_state == KeyState.UNDECRYPTABLE:
        return KEY_UNDECRYPTABLE
    return ""


def _deployment_rows(deployments: list[Deployment], protected: int | None) -> list[DeploymentRow]:
    problems = {d.pk: _problem(d.provider) for d in deployments}
    usable = [d for d in deployments if not problems[d.pk]]
    # Health as the router applies it (live.drain_group), among the deployments it would use.
    draining = live.draining_providers(d.provider for d in usable)
    kept = {d.pk for d in live.drain_group(usable, draining, protected)}
    return [
        DeploymentRow(d, problems[d.pk] or ("" if d.pk in kept else DRAINED)) for d in deployments
    ]


def group_rows() -> list[GroupRow]:
    groups = RoutingGroup.objects.prefetch_related(
        Prefetch("deployments", queryset=Deployment.objects.select_related("provider")),
        Prefetch("fallback_links", queryset=GroupFallback.objects.select_related("fallback")),
    )
    default = DefaultModel.objects.filter(id=1).values_list("group_id", "provider_id").first()
    default_group, default_provider = default or (None, None)
    return [
        GroupRow(
            group=group,
            deployments=_deployment_rows(list(group.deployments.all()), default_provider),
            fallbacks=[link.fallback.name for link in group.fallback_links.all()],
            is_default=group.pk == default_group,
        )
        for group in groups
    ]
