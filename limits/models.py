from __future__ import annotations

from django.db import models


class LimitHit(models.Model):
    """One call counted against a requests-per-minute limit, when no Redis is configured: the
    rows of the last minute are the sliding window every worker on this machine (and every
    machine sharing a PostgreSQL database) counts. Older rows are deleted as calls come."""

    key = models.CharField(max_length=80)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["key", "at"], name="limit_hit_key_at")]

    def __str__(self) -> str:
        return f"{self.key} {self.at:%H:%M:%S.%f}"
