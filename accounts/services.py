"""Writes to users and their roles, and to teams and their members.

A role is membership of exactly one of the groups in `roles.ROLES`; every change is audited,
and a password never reaches the audit log. A team is created, changed and removed by a
global admin (the team pages or `routing team ...`); its changes are audited under the
target `team:<name>`, which is what a team's own audit list reads."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from gateway.services import validate_allowed_models
from limits.rules import KEEP, Budget, apply_limits
from providers.routing import live
from providers.services import audit

from .models import Team, TeamMembership, TeamRole
from .roles import ROLES

ROLE_UNKNOWN = "Choose one of the roles: " + ", ".join(ROLES) + "."
PASSWORD_REQUIRED = "Enter a password."
LAST_ADMIN = (
    "{username} is the last admin. Make someone else an admin first, so that someone can "
    "still manage users."
)
SUPERUSER_ROLE = (
    "{username} is a superuser, and superusers are always admins; their role cannot be "
    "changed here."
)
SETUP_CLOSED = "The first admin already exists. Log in instead."


class SetupClosed(Exception):
    """Someone created the first user while this request was on its way."""


def _set_role(user: AbstractUser, role: str) -> None:
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.is_staff = user.is_superuser or role == "admin"
    user.save(update_fields=["is_staff"])
    # roles.user_role caches the role on the instance.
    user.__dict__.pop("_routing_role", None)


def _stored_role(user: AbstractUser) -> str | None:
    names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    return next((role for role in reversed(ROLES) if role in names), None)


@transaction.atomic
def user_create(*, username: str, password: str, role: str, actor: audit.Actor) -> AbstractUser:
    User = get_user_model()
    user = User(username=User.normalize_username(username.strip()))
    errors: dict[str, list[str]] = {}
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not password:
        errors["password"] = [PASSWORD_REQUIRED]
    else:
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            errors["password"] = exc.messages
    if role not in ROLES:
        errors["role"] = [ROLE_UNKNOWN]
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    _set_role(user, role)
    audit.record(
        actor=actor,
        action="user.create",
        target=user.get_username(),
        changes={"role": [None, role]},
    )
    return user


@transaction.atomic
def user_set_role(*, user: AbstractUser, role: str, actor: audit.Actor) -> AbstractUser:
    if role not in ROLES:
        raise ValidationError({"role": [ROLE_UNKNOWN]})
    User = get_user_model()
    locked = User.objects.select_for_update().get(pk=user.pk)
    username = locked.get_username()
    if locked.is_superuser:
        raise ValidationError({"role": [SUPERUSER_ROLE.format(username=username)]})
    old = _stored_role(locked)
    if old == role:
        return locked
    if old == "admin":
        # Lock the admin group so that two admins demoting each other at once cannot both
        # see the other as the remaining admin.
        Group.objects.select_for_update().filter(name="admin").first()
        others = (
            User.objects.filter(is_active=True)
            .filter(Q(is_superuser=True) | Q(groups__name="admin"))
            .exclude(pk=locked.pk)
        )
        if not others.exists():
            raise ValidationError({"role": [LAST_ADMIN.format(username=username)]})
    _set_role(locked, role)
    user.__dict__.pop("_routing_role", None)
    audit.record(actor=actor, action="user.role", target=username, changes={"role": [old, role]})
    return locked


@transaction.atomic
def first_admin_create(*, username: str, password: str) -> AbstractUser:
    """The first-run page: create the first admin, only while no user exists at all.

    An empty user table has no row to lock, so the admin group row is the lock that makes two
    people submitting at once take turns; the second one finds a user and gets SetupClosed.
    """
    group, _ = Group.objects.get_or_create(name="admin")
    Group.objects.select_for_update().filter(pk=group.pk).first()
    if get_user_model().objects.exists():
        raise SetupClosed(SETUP_CLOSED)
    return user_create(username=username, password=password, role="admin", actor="setup")


# --- teams ---------------------------------------------------------------------------

TEAM_ROLE_UNKNOWN = "Choose a team role: member or admin."
TEAM_HAS_LIVE_TOKENS = (
    "Team {team} still owns live tokens ({names}). Revoke them first (routing token revoke "
    "NAME, or on the team's page), then remove the team."
)
NOT_A_MEMBER = "{username} is not a member of team {team}."
NO_SUCH_USER = "No user named {username!r}. Create the user first (routing user add)."


def team_target(team: Team | str) -> str:
    return f"team:{team}"


def _allowed(entries: list[str] | None) -> list[str]:
    # The rule tokens follow (groups, PROVIDER/MODEL, default): one validator for both.
    return validate_allowed_models(entries or [])


@transaction.atomic
def team_create(
    *,
    name: str,
    display_name: str = "",
    allowed_models: list[str] | None = None,
    actor: audit.Actor,
) -> Team:
    team = Team(name=name.strip(), display_name=display_name.strip())
    errors: dict[str, list[str]] = {}
    try:
        team.allowed_models = _allowed(allowed_models)
    except ValidationError as exc:
        errors["allowed_models"] = exc.messages
    try:
        team.full_clean(exclude=["allowed_models"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    live.lock_config()
    team.save()
    audit.record(
        actor=actor,
        action="team.create",
        target=team_target(team),
        changes={"display_name": team.display_name, "allowed_models": team.allowed_models},
    )
    live.bump_version()
    return team


@transaction.atomic
def team_update(
    *,
    team: Team,
    display_name: str | None = None,
    allowed_models: list[str] | None = None,
    rpm: int | None = KEEP,
    tpm: int | None = KEEP,
    max_parallel: int | None = KEEP,
    budget: Budget | None = KEEP,
    actor: audit.Actor,
) -> Team:
    """Change what was given (a limit given as None is lifted; one left out stays).
    Narrowing the models narrows every token of the team at once (the gateway checks the
    team's list as well as the token's)."""
    live.lock_config()
    locked = Team.objects.select_for_update().get(pk=team.pk)
    changes: dict[str, list] = {}
    if display_name is not None and display_name.strip() != locked.display_name:
        changes["display_name"] = [locked.display_name, display_name.strip()]
        locked.display_name = display_name.strip()
    if allowed_models is not None:
        try:
            allowed = _allowed(allowed_models)
        except ValidationError as exc:
            raise ValidationError({"allowed_models": exc.messages}) from None
        if allowed != locked.allowed_models:
            changes["allowed_models"] = [locked.allowed_models, allowed]
            locked.allowed_models = allowed
    changes.update(apply_limits(locked, rpm=rpm, tpm=tpm, max_parallel=max_parallel, budget=budget))
    if not changes:
        return locked
    locked.full_clean()
    locked.save()
    audit.record(actor=actor, action="team.update", target=team_target(locked), changes=changes)
    live.bump_version()
    return locked


@transaction.atomic
def team_remove(*, team: Team, actor: audit.Actor) -> None:
    """Remove a team that owns no live token. Its revoked tokens stay, as nobody's, so the
    usage they logged keeps its token names."""
    live.lock_config()
    locked = Team.objects.select_for_update().get(pk=team.pk)
    live_names = list(locked.tokens.filter(revoked_at__isnull=True).values_list("name", flat=True))
    if live_names:
        raise ValidationError(
            TEAM_HAS_LIVE_TOKENS.format(team=locked.name, names=", ".join(live_names))
        )
    locked.tokens.update(team=None)
    members = list(locked.memberships.values_list("user__username", flat=True))
    audit.record(
        actor=actor, action="team.remove", target=team_target(locked), changes={"members": members}
    )
    locked.delete()
    live.bump_version()


def _user(username: str) -> AbstractUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError({"user": [NO_SUCH_USER.format(username=username)]})
    return user


@transaction.atomic
def team_member_set(
    *, team: Team, user: AbstractUser | str, role: str, actor: audit.Actor, from_sso: bool = False
) -> TeamMembership:
    """Add a member, or change a member's team role (member or admin)."""
    if role not in TeamRole.values:
        raise ValidationError({"role": [TEAM_ROLE_UNKNOWN]})
    if isinstance(user, str):
        user = _user(user)
    membership, created = TeamMembership.objects.select_for_update().get_or_create(
        team=team, user=user, defaults={"role": role, "from_sso": from_sso}
    )
    old, old_sso = (None, None) if created else (membership.role, membership.from_sso)
    if not created and (old, old_sso) != (role, from_sso):
        membership.role, membership.from_sso = role, from_sso
        membership.save(update_fields=["role", "from_sso"])
    changes: dict = {"user": user.get_username()}
    if old != role:
        changes["role"] = [old, role]
    # Whether the IdP owns the membership (and so may take it away) is a change too.
    if bool(old_sso) != from_sso:
        changes["from_sso"] = [old_sso, from_sso]
    if len(changes) > 1:
        audit.record(actor=actor, action="team.member", target=team_target(team), changes=changes)
    return membership


@transaction.atomic
def team_member_remove(*, team: Team, user: AbstractUser | str, actor: audit.Actor) -> None:
    if isinstance(user, str):
        user = _user(user)
    membership = TeamMembership.objects.filter(team=team, user=user).first()
    if membership is None:
        raise ValidationError(NOT_A_MEMBER.format(username=user.get_username(), team=team.name))
    membership.delete()
    audit.record(
        actor=actor,
        action="team.member",
        target=team_target(team),
        changes={"user": user.get_username(), "role": [membership.role, None]},
    )
