from __future__ import annotations

from django.db import models

from .rules import PERIODS, Budget, Limits


class LimitHit(models.Model):
    """One call (rpm) or one call's tokens (tpm) counted against a per-minute limit, when no
    Redis is configured: the rows of the last minute are the sliding window every worker on
    this machine (and every machine sharing a PostgreSQL database) counts. Older rows are
    deleted as calls come."""

    key = models.CharField(max_length=80)
    at = models.DateTimeField()
    # 1 for a request; a call's tokens for a tokens-per-minute key.
    n = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["key", "at"], name="limit_hit_key_at")]

    def __str__(self) -> str:
        return f"{self.key} {self.at:%H:%M:%S.%f} {self.n}"


class LimitLease(models.Model):
    """A call in flight, holding one of its token's (or team's) concurrent-request slots,
    without Redis. The process that holds it renews it while the call runs; a worker that
    died stops renewing, and its slots free themselves when `expires_at` passes."""

    key = models.CharField(max_length=80)
    lease = models.CharField(max_length=32)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["key", "expires_at"], name="limit_lease_key_expires"),
            models.Index(fields=["lease"], name="limit_lease_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.lease} until {self.expires_at:%H:%M:%S}"


class Spend(models.Model):
    """What a token, or a team (`key`: "token:<name>", "team:<name>"), spent on one UTC day,
    in billionths of a dollar: the ledger every budget period (day, week, month, total) is
    summed from. Not pruned with the request log: a total budget needs all of it.

    Written by the request log's writer for every priced call, except where limits.counters
    counted it already (a budget counted in the database, exact at each call). With Redis,
    a budget's running total lives there and is seeded from here."""

    key = models.CharField(max_length=80)
    day = models.DateField()
    nanousd = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "day"], name="unique_spend_day")]

    def __str__(self) -> str:
        return f"{self.key} {self.day} ${self.nanousd / 1e9:.6f}"


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
