"""Reads of provider health: a provider's test history, where an unhealthy provider still
serves, and the dashboard's warning when the active default depends on unhealthy ones."""

from __future__ import annotations

from .. import services
from ..models import DefaultModel, Deployment, ProbeResult, Provider
from ..routing import live

DEFAULT_PROVIDER_UNHEALTHY = (
    "The default model's provider {name} is unhealthy: {failures} failed tests in a row. "
    "It stays the default and keeps serving its routing groups; switch the default if it "
    "does not recover."
)
DEFAULT_GROUP_UNHEALTHY = (
    "Every provider of the default routing group {name} is unhealthy ({names}). The group "
    "keeps them, as it would otherwise have nothing to call; switch the default if they do "
    "not recover."
)


def history(*, provider: Provider, limit: int = services.HISTORY_LENGTH) -> list[ProbeResult]:
    """The provider's last tests, oldest first (the order a chart reads)."""
    return list(reversed(provider.probes.order_by("-at", "-id")[:limit]))


def routing_state(*, provider: Provider) -> dict:
    """While unhealthy with its switch on: the groups it was taken out of, and those that
    kept it (it holds the default, or it is all the group has left); read from the same
    snapshot the router is built from. Empty otherwise."""
    if not (provider.enabled and provider.unhealthy_since and provider.drain_when_unhealthy):
        return {}
    member = set(provider.deployments.values_list("group__name", flat=True))
    serving = {
        name
        for name, group in live.snapshot().groups.items()
        if any(d.provider.name == provider.name for d in group.deployments)
    }
    return {
        "drained_from": sorted(member - serving),
        "kept_in": sorted(member & serving),
        "holds_default": DefaultModel.objects.filter(id=1, provider=provider).exists(),
    }


def default_health_warning() -> str:
    """A warning for the dashboard when the active default depends on unhealthy providers:
    they are never taken out of routing silently, so they are flagged instead."""
    default = DefaultModel.objects.select_related("provider", "group").filter(id=1).first()
    if default is None:
        return ""
    if default.provider_id:
        provider = default.provider
        if provider.unhealthy_since is None:
            return ""
        return DEFAULT_PROVIDER_UNHEALTHY.format(
            name=provider.name, failures=provider.consecutive_failures
        )
    rows = Deployment.objects.filter(group_id=default.group_id, provider__enabled=True)
    states = dict(rows.values_list("provider__name", "provider__unhealthy_since"))
    if states and all(since is not None for since in states.values()):
        return DEFAULT_GROUP_UNHEALTHY.format(
            name=default.group.name, names=", ".join(sorted(states))
        )
    return ""
