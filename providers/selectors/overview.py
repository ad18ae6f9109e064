"""The overview's status strip: the default model and its health, providers answering or
failing, and the last 24 hours of requests. A fixed number of small aggregate queries (two,
three when the default is a routing group), whatever the number of providers or records."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, Sum
from django.utils import timezone

from usage.selectors import RANGES, Filters, window

from ..models import DefaultModel, Deployment, Provider

# What the strip says of the default's health.
HEALTH_OK, HEALTH_FAILING, HEALTH_UNHEALTHY, HEALTH_UNTESTED, HEALTH_NONE = (
    "ok",
    "failing",
    "unhealthy",
    "not tested",
    "no default",
)


@dataclass(frozen=True)
class Status:
    default_health: str
    providers_ok: int
    providers_failing: int
    providers_untested: int
    requests_24h: int
    errors_24h: int


def _health(*, ok: bool | None, unhealthy: bool) -> str:
    if unhealthy:
        return HEALTH_UNHEALTHY
    if ok is None:
        return HEALTH_UNTESTED
    return HEALTH_OK if ok else HEALTH_FAILING


def _default_health(default: DefaultModel | None) -> str:
    if default is None:
        return HEALTH_NONE
    if default.provider_id:
        provider = default.provider
        return _health(ok=provider.last_test_ok, unhealthy=provider.unhealthy_since is not None)
    # A group is as healthy as its best enabled deployment's provider.
    rows = Deployment.objects.filter(group_id=default.group_id, provider__enabled=True)
    states = list(rows.values_list("provider__last_test_ok", "provider__unhealthy_since"))
    healths = {_health(ok=ok, unhealthy=since is not None) for ok, since in states}
    for health in (HEALTH_OK, HEALTH_UNTESTED, HEALTH_FAILING):
        if health in healths:
            return health
    return HEALTH_UNHEALTHY


def status(default: DefaultModel | None) -> Status:
    """`default` as the page already read it (services.default_model_get)."""
    enabled = Provider.objects.filter(enabled=True).order_by()
    counts = enabled.aggregate(
        ok=Count("id", filter=Q(last_test_ok=True, unhealthy_since__isnull=True)),
        failing=Count("id", filter=Q(last_test_ok=False) | Q(unhealthy_since__isnull=False)),
        untested=Count("id", filter=Q(last_test_ok__isnull=True, unhealthy_since__isnull=True)),
    )
    # The usage page's "Last 24 hours", from the same hourly roll-ups.
    day = window(RANGES["24h"], until=timezone.now(), filters=Filters())
    traffic = day.totals().aggregate(requests=Sum("requests"), errors=Sum("errors"))
    return Status(
        default_health=_default_health(default),
        providers_ok=counts["ok"],
        providers_failing=counts["failing"],
        providers_untested=counts["untested"],
        requests_24h=traffic["requests"] or 0,
        errors_24h=traffic["errors"] or 0,
    )
