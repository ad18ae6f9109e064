"""Writes to users and their roles. A role is membership of exactly one of the groups in
`roles.ROLES`; every change is audited, and a password never reaches the audit log."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from providers.services import audit

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
