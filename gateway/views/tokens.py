"""Access token pages: the list, creating a token (its plaintext shown once, on the response
to the POST that created it) and revoking one."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import ROLE_REQUIRED, has_role, role_required, user_role
from providers.forms import put_service_errors
from providers.validators import name_attrs, validate_token_name
from providers.widgets import PlainLabelsForm

from .. import services as token_services
from ..models import AccessToken

TEMPLATE = "gateway/tokens.html"
TOKEN_REVOKED = "Revoked token {name}. Applications using it are refused from now on."
# Service fields that the form calls differently.
FORM_FIELD = {"expires_at": "expires_in_days"}
# Model IDs separated by commas or white space (the `..` rule is left to the server).
ALLOWED_MODELS_PATTERN = r"[\s,]*(?:[A-Za-z0-9][A-Za-z0-9._:\/\-]*[\s,]*)*"


class TokenForm(PlainLabelsForm):
    # Parses what a person typed; token_create validates. Lives here rather than in forms.py
    # because only this page uses it.
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
        return token_services.validate_allowed_models(names)

    def add_service_errors(self, exc: ValidationError) -> None:
        put_service_errors(self, exc, rename=FORM_FIELD)


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    text: str


SNIPPET_PROMPT = "Hello"


def _snippets(request: HttpRequest, token: AccessToken, plaintext: str) -> list[Snippet]:
    """Ready-to-copy first calls with this server's own address and the new token. Built for
    the one response that shows the token; nothing keeps them afterwards."""
    base_url = request.build_absolute_uri("/v1")
    model = token.allowed_models[0] if token.allowed_models else "default"
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": SNIPPET_PROMPT}]})
    curl = (
        f"curl {base_url}/chat/completions \\\n"
        f'  -H "Authorization: Bearer {plaintext}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )
    python = (
        "from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}", api_key="{plaintext}")\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{model}", messages=[{{"role": "user", "content": "{SNIPPET_PROMPT}"}}]\n'
        ")\n"
        "print(reply.choices[0].message.content)"
    )
    env = f"OPENAI_BASE_URL={base_url}\nOPENAI_API_KEY={plaintext}"
    return [
        Snippet("curl", "curl", curl),
        Snippet("python", "Python (openai)", python),
        Snippet("env", "Environment (.env or shell)", env),
    ]


@dataclass(frozen=True)
class TokenRow:
    token: AccessToken
    state: str


def _rows() -> list[TokenRow]:
    now = timezone.now()
    # The hash never leaves the database on this page.
    tokens = AccessToken.objects.select_related("created_by").defer("token_hash")
    return [TokenRow(token, token.state(now)) for token in tokens]


def _page(request: HttpRequest, form: TokenForm, **extra) -> HttpResponse:
    context = {"nav": "tokens", "rows": _rows(), "form": form, **extra}
    return render(request, TEMPLATE, context)


def _create(request: HttpRequest, form: TokenForm) -> tuple[AccessToken, str] | None:
    if not form.is_valid():
        return None
    days = form.cleaned_data["expires_in_days"]
    try:
        return token_services.token_create(
            name=form.cleaned_data["name"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
            allowed_models=form.cleaned_data["allowed_models"],
            actor=request.user,
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
        return None


@require_http_methods(["GET", "POST"])
@role_required("viewer")
def token_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, TokenForm())
    if not has_role(request.user, "editor"):
        role = user_role(request.user) or "none"
        raise PermissionDenied(ROLE_REQUIRED.format(role=role, needed="editor"))
    form = TokenForm(request.POST)
    created = _create(request, form)
    if created is None:
        return _page(request, form)
    token, plaintext = created
    # Rendered here rather than after a redirect, so the plaintext is never in the session or
    # a message; and nothing (browser, proxy, back button) may keep a copy of this page.
    snippets = _snippets(request, token, plaintext)
    response = _page(request, TokenForm(), new_token=token, plaintext=plaintext, snippets=snippets)
    add_never_cache_headers(response)
    return response


@role_required("editor")
@require_POST
def token_revoke(request: HttpRequest, name: str) -> HttpResponse:
    token = get_object_or_404(AccessToken.objects.defer("token_hash"), name=name)
    try:
        token_services.token_revoke(token=token, actor=request.user)
    except ValidationError as exc:
        level, notice = messages.ERROR, " ".join(exc.messages)
    else:
        level, notice = messages.SUCCESS, TOKEN_REVOKED.format(name=token.name)
    htmx = getattr(request, "htmx", None)
    if htmx:
        context = {"rows": _rows(), "notice": notice, "notice_error": level == messages.ERROR}
        return render(request, TEMPLATE + "#token_table", context)
    messages.add_message(request, level, notice)
    return redirect("token_list")
