"""What a limit is: the one home of the rules for a token's and a team's limits.

Every way of setting them (the token and team pages, `routing token create|limits`,
`routing team limits`, the export) goes through `apply_limits`, so each says the same thing
about a bad value. Counting them is limits.counters' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

# "Leave it as it is", as opposed to None, which lifts a limit.
KEEP: Any = object()

PERIODS = ("day", "week", "month", "total")
# The largest budget the column holds (12 digits, 4 after the point).
BUDGET_MAX = Decimal("99999999.9999")
# The largest count the columns hold (a PositiveIntegerField on PostgreSQL): beyond it a
# form or `--rpm` would reach the database and fail there.
COUNT_MAX = 2_147_483_647

RPM_BAD = "Requests per minute must be a whole number of at least 1 (or none, for no limit)."
TPM_BAD = "Tokens per minute must be a whole number of at least 1 (or none, for no limit)."
MAX_PARALLEL_BAD = (
    "Concurrent requests must be a whole number of at least 1 (or none, for no limit)."
)
BUDGET_BAD = (
    "A budget is an amount in US dollars and a period, like 50/month: the amount above 0 "
    "(at most 4 decimals), the period one of day, week, month or total (or none, for no "
    "budget)."
)

# Each count limit: its field, in words, and in a table cell.
COUNT_UNITS = (
    ("rpm", "requests per minute", "rpm"),
    ("tpm", "tokens per minute", "tpm"),
    ("max_parallel", "concurrent requests", "par"),
)
COUNT_MESSAGES = {"rpm": RPM_BAD, "tpm": TPM_BAD, "max_parallel": MAX_PARALLEL_BAD}


@dataclass(frozen=True)
class Budget:
    """At most `usd` US dollars per calendar `period` (UTC; weeks start on Monday), or in
    all (`total`). A hard stop: once spent, calls are refused until the period turns."""

    usd: Decimal
    period: str

    def __str__(self) -> str:
        return f"{self.usd.normalize():f}/{self.period}"

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The period `now` falls in: (start, end), None for an open end."""
        return period_bounds(self.period, now)


@dataclass(frozen=True)
class Limits:
    """The limits set on one token, or on one team (all its tokens together)."""

    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget: Budget | None = None

    def __bool__(self) -> bool:
        return any((self.rpm, self.tpm, self.max_parallel, self.budget))

    def _counts(self, short: bool) -> list[str]:
        return [
            f"{value}{unit_short}" if short else f"{value} {unit}"
            for name, unit, unit_short in COUNT_UNITS
            if (value := getattr(self, name))
        ]

    def describe(self) -> str:
        """One line for people (the command line, the pages): "60 requests per minute, $50
        per month"."""
        parts = self._counts(short=False)
        if self.budget:
            usd, period = f"${self.budget.usd.normalize():f}", self.budget.period
            parts.append(
                f"a budget of {usd} in total" if period == "total" else f"{usd} per {period}"
            )
        return ", ".join(parts) or "no limits"

    def compact(self) -> str:
        """One table cell: "60rpm 100000tpm 4par $50/month", or "-"."""
        parts = self._counts(short=True)
        if self.budget:
            parts.append(f"${self.budget}")
        return " ".join(parts) or "-"


def period_bounds(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
        return start, end
    return None, None


def parse_budget(text: str) -> Budget | None:
    """ "50/month" (or "$50/month", "12.5/day", "100/total"); "none" or "" is no budget."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return None
    amount, slash, period = text.partition("/")
    if not slash:
        raise ValidationError(BUDGET_BAD)
    try:
        usd = Decimal(amount.strip().removeprefix("$").replace(",", ""))
    except InvalidOperation:
        raise ValidationError(BUDGET_BAD) from None
    budget = Budget(usd, period.strip().lower())
    if not valid_budget(budget):
        raise ValidationError(BUDGET_BAD)
    return budget


def valid_count(value: Any) -> bool:
    """The rule for rpm, tpm and concurrent requests: a whole number >= 1, or None."""
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= COUNT_MAX


def valid_budget(budget: Any) -> bool:
    if budget is None:
        return True
    if not isinstance(budget, Budget) or budget.period not in PERIODS:
        return False
    usd = budget.usd
    return (
        isinstance(usd, Decimal)
        and usd.is_finite()
        and Decimal(0) < usd <= BUDGET_MAX
        and -usd.as_tuple().exponent <= 4
    )


def _shown(budget: Budget | None) -> str | None:
    return str(budget) if budget else None


def apply_limits(row: Any, **given: Any) -> dict[str, list]:
    """Set the limits given (rpm, tpm, max_parallel, budget; KEEP or absent: unchanged, None:
    lifted) on a token or team row, unsaved. Returns the audit's changes, [old, new] by name;
    raises one ValidationError naming every bad field, and then changes nothing."""
    errors: dict[str, list[str]] = {}
    for name, message in COUNT_MESSAGES.items():
        if given.get(name, KEEP) is not KEEP and not valid_count(given[name]):
            errors[name] = [message]
    budget = given.get("budget", KEEP)
    if budget is not KEEP and not valid_budget(budget):
        errors["budget"] = [BUDGET_BAD]
    if errors:
        raise ValidationError(errors)
    changes: dict[str, list] = {}
    for name in COUNT_MESSAGES:
        value = given.get(name, KEEP)
        if value is not KEEP and value != getattr(row, name):
            changes[name] = [getattr(row, name), value]
            setattr(row, name, value)
    if budget is not KEEP and budget != row.budget:
        changes["budget"] = [_shown(row.budget), _shown(budget)]
        row.budget = budget
    return changes
