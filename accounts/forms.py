"""The forms of the login, first-run and users pages."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import password_validators_help_texts

from providers.widgets import PlainLabelsForm

from . import sso
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
