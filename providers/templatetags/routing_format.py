"""Small display filters shared by the dashboard's templates."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()

JUST_NOW = "just now"
# Under this age a time reads "just now" rather than "0 minutes ago".
FRESH = timedelta(minutes=1)


@register.filter
def ago(value: datetime | None) -> str:
    """ "just now" for a time under a minute old, else "5 minutes ago" (largest unit)."""
    if value is None:
        return ""
    if timezone.now() - value < FRESH:
        return JUST_NOW
    return f"{timesince(value, depth=1)} ago"
