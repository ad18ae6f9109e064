from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from ..models import AuditEvent

# Who made a change: a logged-in user, or a label such as "cli:alice" for the command line.
Actor = AbstractBaseUser | str | None


def actor_user(actor: Actor) -> AbstractBaseUser | None:
    return actor if isinstance(actor, AbstractBaseUser) else None


def actor_name(actor: Actor) -> str:
    if isinstance(actor, AbstractBaseUser):
        return actor.get_username()
    return actor or "system"


def record(*, actor: Actor, action: str, target: str, changes: dict[str, Any]) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor_user(actor),
        actor_name=actor_name(actor),
        action=action,
        target=target,
        changes=changes,
    )
