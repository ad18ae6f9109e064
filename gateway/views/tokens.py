"""Access token pages: the list, creating a token (its plaintext shown once, on the response
to the POST that created it), a token's page (its use of its limits, and changing them) and
revoking one. A team's token has its page on its team's (accounts.team_views)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import ROLE_REQUIRED, has_role, role_required, user_role
from limits.forms import LimitsForm
from limits.selectors import use_of

from .. import services as token_services
from ..forms import GlobalTokenForm, TokenForm
from ..models import AccessToken
from ..selectors import token_rows
from ..snippets import first_call_snippets

TEMPLATE = "gateway/tokens.html"
DETAIL_TEMPLATE = "gateway/token_detail.html"
TOKEN_REVOKED = "Revoked token {name}. Applications using it are refused from now on."
LIMITS_SAVED = "Saved the limits of token {name}: {limits}. They hold from its next call."


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
    _require_editor(request.user)
    form = GlobalTokenForm(request.POST)
    created = create_from_form(request, form)
    if created is None:
        return render(request, TEMPLATE, _context(form))
    return shown_once(request, TEMPLATE, _context(GlobalTokenForm()), *created)


def _require_editor(user) -> None:
    if not has_role(user, "editor"):
        role = user_role(user) or "none"
        raise PermissionDenied(ROLE_REQUIRED.format(role=role, needed="editor"))


def token_page(
    request: HttpRequest,
    token: AccessToken,
    *,
    can_edit: bool,
    form: LimitsForm | None = None,
    **context,
) -> HttpResponse:
    """A token's page: what it is, its use of its limits and what they refused, and (for
    those who may) the form that changes them. `context`: its team's page adds the team."""
    state = token.state()
    if can_edit and form is None and state == "active":
        form = LimitsForm(initial=LimitsForm.initial_for(token))
    context = {
        "nav": "tokens",
        "token": token,
        "state": state,
        "use": use_of(token.limits, [token.name]),
        "limits_form": form if can_edit else None,
        **context,
    }
    return render(request, DETAIL_TEMPLATE, context)


def save_limits(request: HttpRequest, token: AccessToken, form: LimitsForm) -> bool:
    """The token's limits as the form gives them, through the service (which audits them);
    False with the service's errors put on the form."""
    if not form.is_valid():
        return False
    try:
        token = token_services.token_limits_set(
            token=token, **form.limits_fields(), actor=request.user
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
        return False
    shown = LIMITS_SAVED.format(name=token.name, limits=token.limits.describe())
    messages.success(request, shown)
    return True


def _token(name: str) -> AccessToken:
    rows = AccessToken.objects.select_related("team", "created_by").defer("token_hash")
    return get_object_or_404(rows, name=name)


@require_http_methods(["GET", "POST"])
@role_required("viewer")
def token_detail(request: HttpRequest, name: str) -> HttpResponse:
    if request.method == "POST":
        _require_editor(request.user)
    token = _token(name)
    if token.team is not None:
        # A team's token lives on its team's page, where its team admins reach it too.
        if request.method == "POST":
            raise Http404
        return redirect("team_token_detail", token.team.name, token.name)
    if request.method != "POST":
        return token_page(request, token, can_edit=has_role(request.user, "editor"))
    form = LimitsForm(request.POST)
    if save_limits(request, token, form):
        return redirect("token_detail", token.name)
    return token_page(request, token, can_edit=True, form=form)


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
