"""The request log, and its roll-ups: totals and latency histograms per hour and per day.

usage.services keeps them current, in the transaction that writes the records. Each table
serves the usage page's aggregates at one grain, so a month of a million requests (and
hundreds of provider/model pairs, and dozens of tokens) reads a few thousand rows:

- ModelRollup, per (provider, model): the time series, the busiest models, the choices;
- TokenRollup, per token name: tokens and cost per token;
- ModelLatencyRollup, per (provider, model) and latency bucket: the percentiles;
- UsageRollup and LatencyRollup, per (provider, model, token name): the same, read only
  when the page is filtered by token (with a provider or model, they narrow by token too).
"""

from __future__ import annotations

from django.db import models

# The tables keep the names they had when these models lived in providers/ (issue 14): the
# move was a change of Django's state only, not a copy of rows.


class RequestLog(models.Model):
    """One call through the service layer or the gateway. Never the prompt, the answer or a
    key: only who, what, where, how long and how many tokens."""

    at = models.DateTimeField(db_index=True)
    token_name = models.CharField(max_length=63, default="in-process")
    requested_model = models.CharField(max_length=264)
    provider = models.CharField(max_length=63, blank=True)
    model = models.CharField(max_length=200, blank=True)
    fallbacks = models.PositiveSmallIntegerField(default=0)
    ok = models.BooleanField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    latency_ms = models.FloatField()
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.FloatField(null=True, blank=True)
    stream = models.BooleanField(default=False)

    class Meta:
        db_table = "providers_requestlog"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["provider", "at"]),
            models.Index(fields=["token_name", "at"]),
            models.Index(fields=["model", "at"]),
        ]


class RollupPeriod(models.TextChoices):
    HOUR = "h", "hour"
    DAY = "d", "day"


class _Totals(models.Model):
    period = models.CharField(max_length=1, choices=RollupPeriod.choices)
    start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True


class UsageRollup(_Totals):
    """Totals per (provider, model, token name): what a filter by token reads."""

    provider = models.CharField(max_length=63, blank=True)
    model = models.CharField(max_length=200, blank=True)
    token_name = models.CharField(max_length=63)

    class Meta:
        db_table = "providers_usagerollup"
        constraints = [
            # Its index, led by (period, start), serves ranges without a token filter.
            models.UniqueConstraint(
                fields=["period", "start", "provider", "model", "token_name"],
                name="unique_usage_rollup",
            )
        ]
        indexes = [models.Index(fields=["period", "token_name", "start"], name="usage_token")]


class ModelRollup(_Totals):
    """Totals per (provider, model), whatever the token."""

    provider = models.CharField(max_length=63, blank=True)
    model = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "providers_modelrollup"
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "provider", "model"], name="unique_model_rollup"
            )
        ]


class TokenRollup(_Totals):
    """Totals per token name, whatever the provider."""

    token_name = models.CharField(max_length=63)

    class Meta:
        db_table = "providers_tokenrollup"
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "token_name"], name="unique_token_rollup"
            )
        ]


class LatencyRollup(models.Model):
    """How many successful requests fell in each latency bucket (see usage.services), per
    (provider, model, token name): what a filter by token reads."""

    period = models.CharField(max_length=1, choices=RollupPeriod.choices)
    start = models.DateTimeField()
    provider = models.CharField(max_length=63, blank=True)
    model = models.CharField(max_length=200, blank=True)
    token_name = models.CharField(max_length=63)
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "providers_latencyrollup"
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "provider", "model", "token_name", "bucket"],
                name="unique_latency_rollup",
            )
        ]
        # The usage page reads the histograms of its ten busiest models only.
        indexes = [
            models.Index(fields=["period", "provider", "model", "start"], name="latency_model")
        ]


class ModelLatencyRollup(models.Model):
    """The latency histogram per (provider, model), whatever the token."""

    period = models.CharField(max_length=1, choices=RollupPeriod.choices)
    start = models.DateTimeField()
    provider = models.CharField(max_length=63, blank=True)
    model = models.CharField(max_length=200, blank=True)
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "providers_modellatencyrollup"
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "provider", "model", "bucket"],
                name="unique_model_latency_rollup",
            )
        ]
        indexes = [
            models.Index(
                fields=["period", "provider", "model", "start"], name="model_latency_model"
            )
        ]
