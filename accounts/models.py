from __future__ import annotations

from django.db import models

# The table keeps the name it had when this model lived in providers/ (issue 14).


class ThrottleHit(models.Model):
    """One counted event for a throttle: a failed login (per account and per address) or a
    connection test (per person). Rows live in the database so that every process, and every
    worker, sees the same counts; accounts.throttle deletes them once they are too old."""

    scope = models.CharField(max_length=16)
    key = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        db_table = "providers_throttlehit"
        indexes = [
            models.Index(fields=["scope", "key", "at"], name="throttle_scope_key_at"),
            models.Index(fields=["at"], name="throttle_at"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} {self.at:%Y-%m-%d %H:%M:%S}"
