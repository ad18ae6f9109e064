"""Logging in, the first-run page and the users page."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from providers.addresses import unmapped
from providers.forms import put_service_errors

from . import selectors, services, sso
from .forms import ROLE_CHOICES, LoginForm, RoleForm, SetupForm, UserAddForm
from .roles import role_required, team_roles, user_role

User = get_user_model()

SETUP_DONE = "Welcome, {username}. You are the first admin: add your team on the Users page."
USER_ADDED = "Added user {username} ({role})."
ROLE_CHANGED = "{username} is now {role}."
ROLE_UNCHANGED = "{username} already is {role}."


LOCAL_BACKEND = "accounts.backends.LocalPasswordBackend"


def _anyone() -> bool:
    return User.objects.exists()


def team_landing(user) -> str | None:
    """Where a person with no global role but teams starts, rather than the overview they may
    not see: their team's page, or the list of their teams when they have several."""
    if not user.is_authenticated or user_role(user) is not None:
        return None
    teams = team_roles(user)
    if len(teams) == 1:
        return reverse("team_detail", args=[next(iter(teams))])
    return reverse("team_list") if teams else None


def first_run_redirect(request: HttpRequest) -> HttpResponseRedirect | None:
    """For the overview, before its role check: while nobody has an account, send an
    anonymous visitor to the first-run page instead of a login form that nobody can get
    past; and send a team's member with no global role to their team (TEAMS.md: "after
    login ... lands on their team page"), since every way in (a password, single sign-on,
    ?next=/) ends on the overview."""
    if request.user.is_authenticated:
        landing = team_landing(request.user) if request.method in ("GET", "HEAD") else None
        return redirect(landing) if landing else None
    return None if _anyone() else redirect("setup")


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm  # refuses every password while locked out
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["setup_needed"] = not _anyone()
        context["sso_name"] = sso.config().name if sso.enabled() else None
        context["local_login"] = sso.local_login_mode()
        return context

    def get_default_redirect_url(self) -> str:
        # Straight to the team, saving the overview's redirect.
        return team_landing(self.request.user) or super().get_default_redirect_url()


# --- first run --------------------------------------------------------------------------


def _setup_closed(request: HttpRequest) -> HttpResponse:
    # A 404, with a page that says what happened instead of a bare "Not Found".
    return render(request, "accounts/setup.html", {"closed": True}, status=404)


def _from_this_machine(request: HttpRequest) -> bool:
    """The TCP peer is loopback and no proxy forwarded the request for someone else.

    X-Forwarded-For is never believed here, not even from ROUTING_TRUSTED_PROXIES: it could
    only widen who may become admin. A proxy on this machine makes every visitor loopback,
    so a request that carries a forwarding header counts as from the network.
    """
    if request.META.get("HTTP_X_FORWARDED_FOR") or request.META.get("HTTP_FORWARDED"):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return unmapped(address).is_loopback


def _setup_remote(request: HttpRequest) -> HttpResponse:
    # Whoever reaches the page first would become admin: from the network, only the server's
    # own shell may create the first account.
    return render(request, "accounts/setup.html", {"remote": True}, status=403)


@sensitive_post_parameters("password", "password2")
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    if _anyone():
        return _setup_closed(request)
    anywhere = getattr(settings, "ROUTING_SETUP_FROM_ANY_ADDRESS", False)
    if not (anywhere or _from_this_machine(request)):
        return _setup_remote(request)
    form = SetupForm(request.POST) if request.method == "POST" else SetupForm()
    if form.is_bound and form.is_valid():
        try:
            user = services.first_admin_create(
                username=form.cleaned_data["username"], password=form.cleaned_data["password"]
            )
        except services.SetupClosed:
            return _setup_closed(request)
        except ValidationError as exc:
            put_service_errors(form, exc)
        else:
            login(request, user, backend=LOCAL_BACKEND)
            messages.success(request, SETUP_DONE.format(username=user.get_username()))
            return redirect("overview")
    return render(request, "accounts/setup.html", {"form": form})


# --- users ------------------------------------------------------------------------------


def _users_page(
    request: HttpRequest,
    add_form: UserAddForm | None = None,
    refused: tuple[int, str, list[str]] | None = None,
) -> HttpResponse:
    """The page; `refused` is (user id, role asked for, errors) of a refused role change."""
    rows = selectors.users_with_roles()
    for row in rows:
        row.selected_role, row.role_errors = row.role, []
        if refused and refused[0] == row.pk:
            row.selected_role, row.role_errors = refused[1], refused[2]
    context = {
        "nav": "users",
        "rows": rows,
        "add_form": add_form or UserAddForm(),
        "role_choices": ROLE_CHOICES,
    }
    return render(request, "accounts/users.html", context)


def _add_user(request: HttpRequest) -> HttpResponse:
    form = UserAddForm(request.POST)
    if form.is_valid():
        try:
            user = services.user_create(**form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            put_service_errors(form, exc)
        else:
            role = form.cleaned_data["role"]
            messages.success(request, USER_ADDED.format(username=user.get_username(), role=role))
            return redirect("users")
    return _users_page(request, add_form=form)


def _change_role(request: HttpRequest) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        # Only a hand-made request names no user or an unknown role: the page offers neither.
        return HttpResponseBadRequest("Choose a user and one of the roles.")
    user, role = form.cleaned_data["user"], form.cleaned_data["role"]
    username = user.get_username()
    role_text = f"an {role}" if role[0] in "aeiou" else f"a {role}"
    unchanged = user_role(user) == role
    try:
        services.user_set_role(user=user, role=role, actor=request.user)
    except ValidationError as exc:
        return _users_page(request, refused=(user.pk, role, exc.messages))
    template = ROLE_UNCHANGED if unchanged else ROLE_CHANGED
    messages.success(request, template.format(username=username, role=role_text))
    if user.pk == request.user.pk and role != "admin":
        # You just gave up the admin role: the users page is no longer yours to see.
        return redirect("overview")
    return redirect("users")


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
@role_required("admin")
def users(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("form")
        if action == "add":
            return _add_user(request)
        if action == "role":
            return _change_role(request)
        return HttpResponseBadRequest("Unknown form.")
    return _users_page(request)
