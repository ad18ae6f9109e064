from __future__ import annotations

from django.db import models

from .rules import PERIODS, Budget, Limits


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


class LimitFields(models.Model):
    """The limits a token and a team both carry (limits.rules says what each may hold).
    Counted across every worker and machine by limits.counters; None: no such limit."""

    # Requests per minute.
    rpm = models.PositiveIntegerField(null=True, blank=True)
    # Tokens (prompt and completion) per minute.
    tpm = models.PositiveIntegerField(null=True, blank=True)
    # Requests in flight at once (a stream counts until it ends).
    max_parallel = models.PositiveIntegerField(null=True, blank=True)
    # US dollars per budget_period, a hard stop; priced with LiteLLM's price map.
    budget_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    budget_period = models.CharField(max_length=5, blank=True, choices=[(p, p) for p in PERIODS])

    class Meta:
        abstract = True

    @property
    def budget(self) -> Budget | None:
        if self.budget_usd is None or not self.budget_period:
            return None
        return Budget(self.budget_usd, self.budget_period)

    @budget.setter
    def budget(self, value: Budget | None) -> None:
        self.budget_usd = value.usd if value else None
        self.budget_period = value.period if value else ""

    @property
    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.max_parallel, self.budget)
