"""The tokens page's form."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from providers.forms import put_service_errors
from providers.validators import name_attrs, validate_token_name
from providers.widgets import PlainLabelsForm

from . import services

# Service fields that the form calls differently.
FORM_FIELD = {"expires_at": "expires_in_days"}
# Model IDs separated by commas or white space (the `..` rule is left to the server).
ALLOWED_MODELS_PATTERN = r"[\s,]*(?:[A-Za-z0-9][A-Za-z0-9._:\/\-]*[\s,]*)*"


class TokenForm(PlainLabelsForm):
    # Parses what a person typed; token_create validates.
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
    allowed_models = forms.CharField(
        label="Allowed models",
        required=False,
        max_length=4000,
        help_text="Routing group names, provider/model IDs or default, separated by commas "
        "or spaces. Leave empty to allow every model.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "pattern": ALLOWED_MODELS_PATTERN,
                "title": "Group names, PROVIDER/MODEL or default, separated by commas or spaces.",
            }
        ),
    )

    def clean_allowed_models(self) -> list[str]:
        names = re.split(r"[\s,]+", self.cleaned_data["allowed_models"])
        # The rule `routing token create --allow` follows: beside a bad name, in one submit.
        return services.validate_allowed_models(names)

    def add_service_errors(self, exc: ValidationError) -> None:
        put_service_errors(self, exc, rename=FORM_FIELD)
