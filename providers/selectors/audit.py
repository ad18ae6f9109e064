"""Reads of the audit log."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import AuditEvent


def audit_events(*, target: str = "", actor: str = "") -> QuerySet[AuditEvent]:
    """Newest first, narrowed to one target and/or one actor; unevaluated, for a paginator."""
    events = AuditEvent.objects.only("at", "actor_name", "action", "target", "changes")
    if target:
        events = events.filter(target=target)
    if actor:
        events = events.filter(actor_name=actor)
    return events


def audit_choices(*, field: str, selected: str = "") -> list[str]:
    """The distinct non-empty values of `field` for a filter select; `selected` is put first
    when no event has it, so that the select still shows the filter in use."""
    # order_by() first: the model's default ordering would otherwise join the DISTINCT.
    values = list(
        AuditEvent.objects.exclude(**{field: ""})
        .order_by(field)
        .values_list(field, flat=True)
        .distinct()
    )
    if selected and selected not in values:
        values.insert(0, selected)
    return values


def recent_events(*, target: str, limit: int = 10) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(target=target)[:limit]
