"""Access token pages: the list, creating a token (its plaintext shown once, on the response
to the POST that created it) and revoking one."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import ROLE_REQUIRED, has_role, role_required, user_role

from .. import services as token_services
from ..forms import GlobalTokenForm, TokenForm
from ..models import AccessToken
from ..selectors import token_rows
from ..snippets import first_call_snippets

TEMPLATE = "gateway/tokens.html"
TOKEN_REVOKED = "Revoked token {name}. Applications using it are refused from now on."


def create_from_form(
    request: HttpRequest, form: TokenForm, **extra
) -> tuple[AccessToken, str] | None:
    """The token the form asks for (and `extra`, e.g. its team), or None with the service's
    errors put on the form."""
    if not form.is_valid():
        return None
    try:
        return token_services.token_create(**form.token_fields(), **extra, actor=request.user)
    except ValidationError as exc:
        form.add_service_errors(exc)
        return None


def shown_once(
    request: HttpRequest, template: str, context: dict, token: AccessToken, plaintext: str
) -> HttpResponse:
    """The one answer that shows a new token. Rendered here rather than after a redirect, so
    the plaintext is never in the session or a message; and nothing (browser, proxy, back
    button) may keep a copy of this page."""
    snippets = first_call_snippets(request, token, plaintext)
    context = {**context, "new_token": token, "plaintext": plaintext, "snippets": snippets}
    response = render(request, template, context)
    add_never_cache_headers(response)
    return response


def _context(form: TokenForm) -> dict:
    return {"nav": "tokens", "rows": token_rows(), "form": form}


@require_http_methods(["GET", "POST"])
@role_required("viewer")
def token_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, TEMPLATE, _context(GlobalTokenForm()))
    if not has_role(request.user, "editor"):
        role = user_role(request.user) or "none"
        raise PermissionDenied(ROLE_REQUIRED.format(role=role, needed="editor"))
    form = GlobalTokenForm(request.POST)
    created = create_from_form(request, form)
    if created is None:
        return render(request, TEMPLATE, _context(form))
    return shown_once(request, TEMPLATE, _context(GlobalTokenForm()), *created)


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
        context = {"rows": token_rows(), "notice": notice, "notice_error": level == messages.ERROR}
        return render(request, TEMPLATE + "#token_table", context)
    messages.add_message(request, level, notice)
    return redirect("token_list")
