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
        return {"user_role": None, "can_edit": False, "can_admin": False}
    return {
        "user_role": user_role(user),
        "can_edit": has_role(user, "editor"),
        "can_admin": has_role(user, "admin"),
    }
