"""Three roles, as Django groups: viewer < editor < admin.

A viewer sees everything but secrets and may run connection tests; an editor also changes
providers and the default model; an admin also manages users. Superusers are admins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

ROLES = ("viewer", "editor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
ROLE_REQUIRED = "Your role ({role}) cannot do this; ask an admin for the {needed} role."


def user_role(user) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return "admin"
    cached = getattr(user, "_routing_role", False)
    if cached is not False:
        return cached
    role = role_from(is_superuser=False, groups=user.groups.values_list("name", flat=True))
    user._routing_role = role
    return role


def role_from(*, is_superuser: bool, groups: Iterable[str]) -> str | None:
    """The one rule for a person's role: admin for a superuser, else the highest of the
    roles among their groups' names, else none."""
    if is_superuser:
        return "admin"
    names = set(groups)
    return next((role for role in reversed(ROLES) if role in names), None)


def has_role(user, needed: str) -> bool:
    role = user_role(user)
    return role is not None and _RANK[role] >= _RANK[needed]


def role_required(needed: str) -> Callable:
    """Login required; then 403 (never a login redirect) when the role is too low, for htmx
    requests too."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not has_role(request.user, needed):
                raise PermissionDenied(
                    ROLE_REQUIRED.format(role=user_role(request.user) or "none", needed=needed)
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def context(request: HttpRequest) -> dict:
    """Template context: the user's role and what it allows."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_role": None, "can_edit": False, "can_admin": False, "my_teams": {}}
    role = user_role(user)
    return {
        "user_role": role,
        "can_edit": has_role(user, "editor"),
        "can_admin": has_role(user, "admin"),
        # The menu shows a member with no global role their teams and nothing global; for
        # everyone else /teams/ lists them, and no page pays a query for it.
        "my_teams": team_roles(user) if role is None else {},
    }


# --- teams ---------------------------------------------------------------------------
# Global roles keep their meaning across every team: a viewer sees every team, an editor
# also runs every team's tokens, an admin also manages teams and their members. A team's
# own members see that team only: a member its models, tokens (never a secret) and usage;
# a team admin also creates and revokes its tokens and reads its audit entries.

TEAM_REQUIRED = "You are not a member of team {team}; ask an admin to add you."
TEAM_ADMIN_REQUIRED = (
    "Only team {team}'s admins (or an editor) can do this; your team role is {role}."
)


def team_roles(user) -> dict[str, str]:
    """{team name: "member" | "admin"} for the user's own memberships (cached per request)."""
    if not user.is_authenticated:
        return {}
    cached = getattr(user, "_routing_teams", None)
    if cached is None:
        from .models import TeamMembership

        # By team name only: the model's ordering would join the user table for nothing.
        rows = TeamMembership.objects.filter(user=user).order_by("team__name")
        cached = dict(rows.values_list("team__name", "role"))
        user._routing_teams = cached
    return cached


def can_see_team(user, team: str) -> bool:
    return has_role(user, "viewer") or team in team_roles(user)


def can_run_team_tokens(user, team: str) -> bool:
    return has_role(user, "editor") or team_roles(user).get(team) == "admin"


def require_team(user, team: str, *, admin: bool = False) -> None:
    """403 unless the user may see the team (admin=True: run its tokens and read its audit)."""
    if not can_see_team(user, team):
        raise PermissionDenied(TEAM_REQUIRED.format(team=team))
    if admin and not can_run_team_tokens(user, team):
        role = team_roles(user).get(team) or user_role(user) or "none"
        raise PermissionDenied(TEAM_ADMIN_REQUIRED.format(team=team, role=role))


def team_or_role_required(view: Callable) -> Callable:
    """Login required; then any global role, or membership of at least one team."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if user_role(request.user) is None and not team_roles(request.user):
            raise PermissionDenied(ROLE_REQUIRED.format(role="none", needed="viewer"))
        return view(request, *args, **kwargs)

    return wrapped
