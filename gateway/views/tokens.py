"""Access token pages: the list, creating a token (its plaintext shown once, on the response
to the POST that created it) and revoking one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import ROLE_REQUIRED, has_role, role_required, user_role

from .. import services as token_services
from ..forms import TokenForm
from ..models import AccessToken

TEMPLATE = "gateway/tokens.html"
TOKEN_REVOKED = "Revoked token {name}. Applications using it are refused from now on."


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
