"""The token forms: /tokens/ (where a token may be given a team) and a team's page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Team
from limits.forms import LIMIT_FIELDS, LimitsForm
from providers.validators import name_attrs, validate_token_name

from . import services

# Service fields that the form calls differently (the limits' are LimitsForm's).
FORM_FIELD = {"expires_at": "expires_in_days"}
# Model IDs separated by commas or white space (the `..` rule is left to the server).
ALLOWED_MODELS_PATTERN = r"[\s,]*(?:[A-Za-z0-9][A-Za-z0-9._:\/\-]*[\s,]*)*"
ALLOWED_MODELS_HELP = (
    "Routing group names, provider/model IDs or default, separated by commas or spaces. "
    "Leave empty to allow every model."
)
NO_TEAM = "No team (a global token)"


def allowed_models_field(help_text: str = ALLOWED_MODELS_HELP) -> forms.CharField:
    """The "Allowed models" text field of a token's form and of a team's."""
    return forms.CharField(
        label="Allowed models",
        required=False,
        max_length=4000,
        help_text=help_text,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "pattern": ALLOWED_MODELS_PATTERN,
                "title": "Group names, PROVIDER/MODEL or default, separated by commas or spaces.",
            }
        ),
    )


def split_models(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,]+", text) if name]


class TokenForm(LimitsForm):
    # Parses what a person typed; token_create validates. Its limits come last.
    field_order = ["name", "expires_in_days", "allowed_models", "team", *LIMIT_FIELDS]

    name = forms.CharField(
        label="Name",
        max_length=63,
        validators=[validate_token_name],
        help_text="Lower-case letters, digits, '-' and '_', e.g. ci-bot; shown in the usage log.",
        widget=forms.TextInput(attrs=name_attrs()),
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Leave empty for a token that does not expire.",
    )
    allowed_models = allowed_models_field()

    def clean_allowed_models(self) -> list[str]:
        names = split_models(self.cleaned_data["allowed_models"])
        # The rule `routing token create --allow` follows: beside a bad name, in one submit.
        return services.validate_allowed_models(names)

    def add_service_errors(self, exc: ValidationError, rename: dict[str, str] | None = None):
        super().add_service_errors(exc, rename={**FORM_FIELD, **(rename or {})})

    def token_fields(self) -> dict[str, Any]:
        """The cleaned form as gateway.services.token_create takes it."""
        days = self.cleaned_data["expires_in_days"]
        return {
            "name": self.cleaned_data["name"],
            "expires_at": timezone.now() + timedelta(days=days) if days else None,
            "allowed_models": self.cleaned_data["allowed_models"],
            **self.limits_fields(),
        }


class GlobalTokenForm(TokenForm):
    """/tokens/: an editor may also give the new token to a team, for good."""

    team = forms.ModelChoiceField(
        label="Team",
        queryset=Team.objects.all(),
        to_field_name="name",
        required=False,
        empty_label=NO_TEAM,
        help_text="A team's token belongs to it for good; its team's members see it and its "
        "usage. It may call only what its team may.",
    )

    def token_fields(self) -> dict[str, Any]:
        return {**super().token_fields(), "team": self.cleaned_data["team"]}
