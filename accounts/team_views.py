"""The team pages: the list of teams, a team's page, and what its admins and the global
admins do there. Who may do what is accounts.roles' (TEAMS.md, "Who may do what"); writes go
through accounts.services and gateway.services only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from gateway import services as token_services
from gateway.models import AccessToken
from gateway.selectors import token_rows
from gateway.views.tokens import (
    TOKEN_REVOKED,
    create_from_form,
    save_limits,
    shown_once,
    token_page,
)
from limits.forms import LimitsForm, TeamLimitsForm
from providers.forms import put_service_errors
from providers.views.audit import describe_changes
from usage.views import money

from . import services
from .forms import TeamCreateForm, TeamEditForm, TeamMemberForm, TeamTokenForm
from .models import Team
from .roles import (
    ROLE_REQUIRED,
    can_run_team_tokens,
    has_role,
    require_team,
    role_required,
    team_or_role_required,
    user_role,
)
from .selectors import team_page, teams_visible_to

LIST_TEMPLATE = "accounts/teams.html"
TEMPLATE = "accounts/team_detail.html"

TEAM_ADDED = "Added team {team}. Add its members below, then its tokens."
TEAM_SAVED = "Saved team {team}."
TEAM_LIMITS_SAVED = (
    "Saved the limits of team {team}: {limits}, all its tokens together. They hold from the "
    "next call."
)
TEAM_REMOVED = "Removed team {team}. Its revoked tokens stay in the usage log under their names."
MEMBER_SET = "{username} is now {role} of team {team}."
MEMBER_REMOVED = "Removed {username} from team {team}."


def _require_admin(user) -> None:
    if not has_role(user, "admin"):
        raise PermissionDenied(ROLE_REQUIRED.format(role=user_role(user) or "none", needed="admin"))


def _team(request: HttpRequest, name: str, *, admin: bool = False) -> Team:
    # Permission before the lookup: someone outside the team learns nothing, not even
    # whether a team of that name exists.
    require_team(request.user, name, admin=admin)
    return get_object_or_404(Team, name=name)


def _role_text(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


# --- the list ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@team_or_role_required
def team_list(request: HttpRequest) -> HttpResponse:
    form = None
    if request.method == "POST":
        _require_admin(request.user)
        form = TeamCreateForm(request.POST)
        if form.is_valid():
            try:
                team = services.team_create(**form.cleaned_data, actor=request.user)
            except ValidationError as exc:
                put_service_errors(form, exc)
            else:
                messages.success(request, TEAM_ADDED.format(team=team.name))
                return redirect("team_detail", team.name)
    elif has_role(request.user, "admin"):
        form = TeamCreateForm()
    context = {"nav": "teams", "teams": teams_visible_to(request.user), "form": form}
    return render(request, LIST_TEMPLATE, context)


# --- a team's page -------------------------------------------------------------------


def _context(request: HttpRequest, team: Team, **forms) -> dict:
    """The page's context; a refused form given in `forms` replaces the empty one."""
    user = request.user
    page = team_page(team, user)
    if page.audit is not None:
        for event in page.audit:
            event.change_lines = describe_changes(event.changes)
    can_run = can_run_team_tokens(user, team.name)
    can_admin = has_role(user, "admin")
    context = {
        "nav": "teams",
        "team": team,
        "page": page,
        "tokens": page.tokens,
        "usage_cost": money(page.usage.cost),
        "can_run_tokens": can_run,
        "can_admin_team": can_admin,
        "remove_errors": forms.pop("remove_errors", []),
    }
    if can_run:
        context["token_form"] = forms.get("token_form") or TeamTokenForm(team=team)
    if can_admin:
        initial = {
            "display_name": team.display_name,
            "allowed_models": ", ".join(team.allowed_models),
        }
        context["edit_form"] = forms.get("edit_form") or TeamEditForm(initial=initial)
        context["member_form"] = forms.get("member_form") or TeamMemberForm()
        limits = TeamLimitsForm(initial=TeamLimitsForm.initial_for(team))
        context["limits_form"] = forms.get("limits_form") or limits
    return context


def _page(request: HttpRequest, team: Team, **forms) -> HttpResponse:
    return render(request, TEMPLATE, _context(request, team, **forms))


@require_http_methods(["GET", "POST"])
@team_or_role_required
def team_detail(request: HttpRequest, name: str) -> HttpResponse:
    team = _team(request, name)
    if request.method != "POST":
        return _page(request, team)
    _require_admin(request.user)
    form = TeamEditForm(request.POST)
    if form.is_valid():
        try:
            services.team_update(team=team, **form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            put_service_errors(form, exc)
        else:
            messages.success(request, TEAM_SAVED.format(team=team.name))
            return redirect("team_detail", team.name)
    return _page(request, team, edit_form=form)


@team_or_role_required
@require_POST
def team_token_create(request: HttpRequest, name: str) -> HttpResponse:
    team = _team(request, name, admin=True)
    form = TeamTokenForm(request.POST, team=team)
    created = create_from_form(request, form, team=team)
    if created is None:
        return _page(request, team, token_form=form)
    return shown_once(request, TEMPLATE, _context(request, team), *created)


@require_http_methods(["GET", "POST"])
@team_or_role_required
def team_token_detail(request: HttpRequest, name: str, token: str) -> HttpResponse:
    """A team's token: its page for the team's members, its limits for those who run its
    tokens (its team admins, editors and up)."""
    team = _team(request, name, admin=request.method == "POST")
    rows = AccessToken.objects.select_related("team", "created_by").defer("token_hash")
    # Only this team's tokens: another team's, or a global one, is not found here.
    row = get_object_or_404(rows, team=team, name=token)
    page = {"nav": "teams", "team": team}
    can_run = can_run_team_tokens(request.user, team.name)
    if request.method != "POST":
        return token_page(request, row, can_edit=can_run, **page)
    form = LimitsForm(request.POST)
    if save_limits(request, row, form):
        return redirect("team_token_detail", team.name, row.name)
    return token_page(request, row, can_edit=True, form=form, **page)


@team_or_role_required
@require_POST
def team_token_revoke(request: HttpRequest, name: str, token: str) -> HttpResponse:
    team = _team(request, name, admin=True)
    # Only this team's tokens: another team's, or a global one, is not found here.
    row = get_object_or_404(AccessToken.objects.defer("token_hash"), team=team, name=token)
    try:
        token_services.token_revoke(token=row, actor=request.user)
    except ValidationError as exc:
        level, notice = messages.ERROR, " ".join(exc.messages)
    else:
        level, notice = messages.SUCCESS, TOKEN_REVOKED.format(name=row.name)
    if request.htmx:
        context = {
            "team": team,
            "tokens": token_rows(AccessToken.objects.filter(team=team)),
            "can_run_tokens": True,
            "notice": notice,
            "notice_error": level == messages.ERROR,
        }
        return render(request, TEMPLATE + "#team_tokens", context)
    messages.add_message(request, level, notice)
    return redirect("team_detail", team.name)


# --- a global admin's -----------------------------------------------------------------


@role_required("admin")
@require_POST
def team_limits(request: HttpRequest, name: str) -> HttpResponse:
    team = get_object_or_404(Team, name=name)
    form = TeamLimitsForm(request.POST)
    if form.is_valid():
        try:
            team = services.team_update(team=team, **form.limits_fields(), actor=request.user)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            shown = TEAM_LIMITS_SAVED.format(team=team.name, limits=team.limits.describe())
            messages.success(request, shown)
            return redirect("team_detail", team.name)
    return _page(request, team, limits_form=form)


@role_required("admin")
@require_POST
def team_member_add(request: HttpRequest, name: str) -> HttpResponse:
    team = get_object_or_404(Team, name=name)
    form = TeamMemberForm(request.POST)
    if form.is_valid():
        username, role = form.cleaned_data["user"].strip(), form.cleaned_data["role"]
        try:
            services.team_member_set(team=team, user=username, role=role, actor=request.user)
        except ValidationError as exc:
            put_service_errors(form, exc)
        else:
            text = MEMBER_SET.format(username=username, role=_role_text(role), team=team.name)
            messages.success(request, text)
            return redirect("team_detail", team.name)
    return _page(request, team, member_form=form)


@role_required("admin")
@require_POST
def team_member_remove(request: HttpRequest, name: str, username: str) -> HttpResponse:
    team = get_object_or_404(Team, name=name)
    try:
        services.team_member_remove(team=team, user=username, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, MEMBER_REMOVED.format(username=username, team=team.name))
    return redirect("team_detail", team.name)


@role_required("admin")
@require_POST
def team_remove(request: HttpRequest, name: str) -> HttpResponse:
    team = get_object_or_404(Team, name=name)
    try:
        services.team_remove(team=team, actor=request.user)
    except ValidationError as exc:
        return _page(request, team, remove_errors=exc.messages)
    messages.success(request, TEAM_REMOVED.format(team=team.name))
    return redirect("team_list")
