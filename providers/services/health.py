"""Provider health: every connection test is recorded here, counted, and turned into a
healthy / unhealthy state.

A provider becomes unhealthy after ROUTING_HEALTH_FAILURE_THRESHOLD failed tests in a row
and healthy again at the next success; both changes are audited (as "health-check" when the
scheduled check caused them). With its "take out of routing groups while unhealthy" switch
on, an unhealthy provider's deployments leave their groups (live._drain_unhealthy), except
the provider holding the active default, which is only flagged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import ProbeResult, Provider
from ..routing import live
from . import audit
from .last_test import last_test_fields

if TYPE_CHECKING:
    from .connection import ConnectionResult

HISTORY_LENGTH = 50
HEALTH_CHECK_ACTOR = "health-check"
HEALTHY, UNHEALTHY = "healthy", "unhealthy"


def failure_threshold() -> int:
    return max(1, int(settings.ROUTING_HEALTH_FAILURE_THRESHOLD))


def _prune(provider_id: int) -> None:
    # Sliced ids first: a DELETE with LIMIT/OFFSET in a subquery is not portable.
    old = list(
        ProbeResult.objects.filter(provider_id=provider_id)
        .order_by("-at", "-id")
        .values_list("id", flat=True)[HISTORY_LENGTH:]
    )
    if old:
        ProbeResult.objects.filter(id__in=old).delete()


@transaction.atomic
def probe_record(*, provider: Provider, result: ConnectionResult, actor: audit.Actor = None) -> str:
    """Store one connection test's outcome: the provider's last-test fields, its model list
    (on success), one history row, and the failure count. Returns "healthy" or "unhealthy"
    when the provider's health state changed, else ""."""
    # A configuration write when health drains the provider (bump_version below), so it
    # takes the configuration lock first like every other one (live.py's lock order).
    live.lock_config()
    # Locked, so that concurrent tests of one provider count every failure exactly once.
    locked = Provider.objects.select_for_update().filter(pk=provider.pk).first()
    if locked is None:  # removed while it was being tested
        return ""
    now = timezone.now()
    fields = {
        **last_test_fields(result, at=now),
        "consecutive_failures": 0 if result.ok else locked.consecutive_failures + 1,
        "unhealthy_since": locked.unhealthy_since,
    }
    if result.ok:
        fields["discovered_models"] = result.models
    failures = [locked.consecutive_failures, fields["consecutive_failures"]]
    change = ""
    if result.ok and locked.unhealthy_since is not None:
        fields["unhealthy_since"], change = None, HEALTHY
    elif (
        not result.ok
        and locked.unhealthy_since is None
        and fields["consecutive_failures"] >= failure_threshold()
    ):
        fields["unhealthy_since"], change = now, UNHEALTHY
    # A plain UPDATE: a test result is not an edit, so it neither bumps the edit version
    # (which would make an open edit form stale) nor updated_at.
    Provider.objects.filter(pk=locked.pk).update(**fields)
    ProbeResult.objects.create(
        provider=locked,
        at=now,
        ok=result.ok,
        latency_ms=result.latency_ms,
        status=result.status,
        message=result.message[:300],
        source=audit.actor_name(actor)[:150],
    )
    _prune(locked.pk)
    if change:
        before = UNHEALTHY if change == HEALTHY else HEALTHY
        audit.record(
            actor=actor,
            action=f"provider.{change}",
            target=locked.name,
            changes={"health": [before, change], "consecutive_failures": failures},
        )
        if locked.drain_when_unhealthy:
            # Routing changes: the groups this provider serves gain or lose it.
            live.bump_version()
    for name, value in fields.items():
        setattr(provider, name, value)
    return change


@transaction.atomic
def provider_drain_set(
    *, provider: Provider, drain_when_unhealthy: bool, actor: audit.Actor = None
) -> Provider:
    """Switch "take out of routing groups while unhealthy" for one provider."""
    live.lock_config()
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    if locked.drain_when_unhealthy != drain_when_unhealthy:
        changes = {"drain_when_unhealthy": [locked.drain_when_unhealthy, drain_when_unhealthy]}
        locked.drain_when_unhealthy = drain_when_unhealthy
        # Not an edit of the form's fields, so no version bump: an open edit form stays valid.
        Provider.objects.filter(pk=locked.pk).update(drain_when_unhealthy=drain_when_unhealthy)
        audit.record(actor=actor, action="provider.update", target=locked.name, changes=changes)
        live.bump_version()
    provider.drain_when_unhealthy = drain_when_unhealthy
    return locked
