"""The limit fields of the token forms (creating one, changing one's limits) and of a team's
limits form. They only parse what a person typed: limits.rules decides what a limit may be
(through the services), so the pages say what the command line says."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from providers.forms import put_service_errors
from providers.widgets import PlainLabelsForm

from .rules import PERIODS, Budget

LIMIT_FIELDS = ("rpm", "tpm", "max_parallel", "budget_usd", "budget_period")
# The services' names that the form calls differently.
FORM_FIELD = {"budget": "budget_usd"}
PERIOD_LABELS = {
    "day": "per day (UTC)",
    "week": "per week (from Monday, UTC)",
    "month": "per month (UTC)",
    "total": "in total (never resets)",
}
NO_LIMIT = "Leave empty for no limit."


def _count(label: str, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        help_text=f"{help_text} {NO_LIMIT}",
        widget=forms.NumberInput(attrs={"min": "1", "step": "1", "inputmode": "numeric"}),
    )


class LimitsForm(PlainLabelsForm):
    rpm = _count("Requests per minute", "In any 60 seconds, across every worker and machine.")
    tpm = _count("Tokens per minute", "Prompt and completion tokens, in any 60 seconds.")
    max_parallel = _count(
        "Concurrent requests", "Calls in flight at once; a stream counts until it ends."
    )
    budget_usd = forms.DecimalField(
        label="Budget (USD)",
        required=False,
        help_text="US dollars, priced with LiteLLM's price list; a hard stop: once spent, calls "
        "are refused until the period turns. Leave empty for no budget.",
        widget=forms.NumberInput(attrs={"min": "0", "step": "any", "inputmode": "decimal"}),
    )
    budget_period = forms.ChoiceField(
        label="Budget period",
        required=False,
        choices=[(p, PERIOD_LABELS[p]) for p in PERIODS],
        initial="month",
        help_text="When the budget starts again: at midnight UTC, on Monday, on the 1st.",
    )

    @staticmethod
    def initial_for(row: Any) -> dict[str, Any]:
        """A token's or a team's limits as the form shows them."""
        budget = row.budget
        return {
            "rpm": row.rpm,
            "tpm": row.tpm,
            "max_parallel": row.max_parallel,
            "budget_usd": f"{budget.usd.normalize():f}" if budget else None,
            "budget_period": budget.period if budget else "month",
        }

    def limits_fields(self) -> dict[str, Any]:
        """The cleaned limits as the services take them: every one given (empty lifts it)."""
        data = self.cleaned_data
        usd = data["budget_usd"]
        return {
            "rpm": data["rpm"],
            "tpm": data["tpm"],
            "max_parallel": data["max_parallel"],
            "budget": None if usd is None else Budget(usd, data["budget_period"] or "month"),
        }

    def add_service_errors(self, exc: ValidationError, rename: dict[str, str] | None = None):
        put_service_errors(self, exc, rename={**FORM_FIELD, **(rename or {})})


class TeamLimitsForm(LimitsForm):
    # Its own ids: the team's page also holds the token form, with the same fields.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_team_%s")
        super().__init__(*args, **kwargs)
