"""The forms of the login, first-run, users and team pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import password_validators_help_texts

from gateway.forms import TokenForm, allowed_models_field, split_models
from providers.validators import name_attrs, validate_team_name
from providers.widgets import PlainLabelsForm

from . import sso
from .models import Team, TeamRole
from .roles import ROLES
from .throttle import LoginAttempt, client_ip

User = get_user_model()

PASSWORDS_DIFFER = "The two passwords differ; type the same password twice."
LOCAL_LOGIN_OFF = (
    "Passwords are turned off on this server (ROUTING_LOCAL_LOGIN=off): sign in with single "
    "sign-on."
)
ROLE_CHOICES = [(role, role) for role in ROLES]
ROLE_HELP = (
    "A viewer sees everything but secrets and may run connection tests; an editor also "
    "changes providers and the default model; an admin also manages users."
)


class LoginForm(AuthenticationForm):
    """Django's login form, refusing every password while the account (or the address) is
    locked out."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if sso.local_login_mode() == "off":
            raise forms.ValidationError(LOCAL_LOGIN_OFF, code="local_login_off")
        if username is None or not password:
            return super().clean()
        attempt = LoginAttempt(username, client_ip(self.request) if self.request else "unknown")
        if attempt.refusal:
            raise forms.ValidationError(attempt.refusal, code="locked_out")
        cleaned = super().clean()  # raises on a wrong password: the attempt stays a failure
        attempt.succeeded()
        return cleaned


def _password_field(label: str = "Password", help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class SetupForm(PlainLabelsForm):
    username = forms.CharField(
        label="Username",
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = _password_field(help_text=" ".join(password_validators_help_texts()))
    password2 = _password_field("Password confirmation", "Type the same password again.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password2") != cleaned["password"]:
            self.add_error("password2", PASSWORDS_DIFFER)
        return cleaned


class UserAddForm(PlainLabelsForm):
    username = forms.CharField(
        label="Username", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    password = _password_field(help_text=" ".join(password_validators_help_texts()))
    role = forms.ChoiceField(
        label="Role", choices=ROLE_CHOICES, initial="viewer", help_text=ROLE_HELP
    )


class RoleForm(PlainLabelsForm):
    user = forms.ModelChoiceField(queryset=User.objects.all())
    role = forms.ChoiceField(choices=ROLE_CHOICES)


# --- teams ---------------------------------------------------------------------------

TEAM_ROLE_CHOICES = [(role, role) for role in TeamRole.values]
TEAM_ROLE_HELP = (
    "A member sees the team's models, tokens and usage; a team admin also creates and "
    "revokes its tokens and reads its audit entries."
)
TEAM_MODELS_HELP = (
    "Routing group names, provider/model IDs or default, separated by commas or spaces; the "
    "team's tokens may call only these. Leave empty to allow every model."
)


class TeamEditForm(PlainLabelsForm):
    # Its own ids: the team's page also holds the token form, with its "Allowed models".
    AUTO_ID = "id_team_%s"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", self.AUTO_ID)
        super().__init__(*args, **kwargs)

    display_name = forms.CharField(
        label="Display name",
        required=False,
        max_length=100,
        help_text="Shown in the menu and on the team's page; the name stays as it is.",
    )
    allowed_models = allowed_models_field(TEAM_MODELS_HELP)

    def clean_allowed_models(self) -> list[str]:
        # accounts.services validates the entries, beside this field.
        return split_models(self.cleaned_data["allowed_models"])


class TeamCreateForm(TeamEditForm):
    AUTO_ID = "id_%s"

    name = forms.CharField(
        label="Name",
        max_length=63,
        validators=[validate_team_name],
        help_text="Lower-case letters, digits, '-' and '_', e.g. search; in the team's address "
        "and in ROUTING_OIDC_TEAM_MAP. It cannot be changed later.",
        widget=forms.TextInput(attrs=name_attrs()),
    )
    field_order = ["name", "display_name", "allowed_models"]


class TeamTokenForm(TokenForm):
    """A team's token: the same fields and labels as /tokens/ (the team comes from the page)."""

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if team.allowed_models:
            self.fields["allowed_models"].help_text = (
                f"Leave empty for every model team {team.name} may use "
                f"({', '.join(team.allowed_models)}), or name some of them."
            )


class TeamMemberForm(PlainLabelsForm):
    user = forms.CharField(
        label="User",
        max_length=150,
        help_text="The username, as on the Users page.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    role = forms.ChoiceField(
        label="Team role", choices=TEAM_ROLE_CHOICES, initial="member", help_text=TEAM_ROLE_HELP
    )
