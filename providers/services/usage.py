"""Request-log retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..models import RequestLog


def prune_requests(*, days: float | None = None) -> tuple[int, datetime]:
    """Delete records older than `days` (default: ROUTING_REQUEST_LOG_RETENTION_DAYS)."""
    keep = days if days is not None else settings.ROUTING_REQUEST_LOG_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=keep)
    deleted, _ = RequestLog.objects.filter(at__lt=cutoff).delete()
    return deleted, cutoff
