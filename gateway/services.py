"""Gateway access tokens: created (shown once), listed, revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.models import Team
from limits.rules import KEEP, Budget, apply_limits
from providers.models import Provider, RoutingGroup
from providers.routing import live
from providers.services import audit
from providers.validators import validate_model_id

from .models import AccessToken

TOKEN_PREFIX = "ra-"
ALREADY_REVOKED = "Token {name!r} is already revoked."
EXPIRY_IN_PAST = "The expiry must be in the future."
BAD_ALLOWED_MODEL = "Allowed model {entry!r} is not valid: {reason}"
UNKNOWN_ALLOWED_GROUP = (
    "Allowed model {entry!r} is neither a routing group nor provider/model: name an existing "
    "group, write PROVIDER/MODEL, or default."
)
UNKNOWN_ALLOWED_PROVIDER = (
    "Allowed model {entry!r} names no provider {provider!r}: write the name of an existing "
    "provider before the slash."
)
WIDER_THAN_TEAM = (
    "Allowed model {entry!r} is not among team {team}'s models ({models}): a team's token "
    "can be limited further than its team, never wider."
)
TEAM_GONE = "Team {team} no longer exists; it was removed."
UNLISTED_ALLOWED_MODEL = (
    "Allowed model {entry!r}: {provider} did not list {model!r} at its last connection test. "
    "Check the spelling, or test its connection again if the model is new."
)


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness: a fast hash is enough, and keeps auth cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


def _allowed_entry_error(entry: str, groups: set[str], providers: dict[str, list[str]]) -> str:
    try:
        validate_model_id(entry)
    except ValidationError as exc:
        return BAD_ALLOWED_MODEL.format(entry=entry, reason=" ".join(exc.messages))
    if entry == "default" or entry in groups:
        return ""
    provider, slash, model = entry.partition("/")
    if not slash:
        return UNKNOWN_ALLOWED_GROUP.format(entry=entry)
    if provider not in providers:
        return UNKNOWN_ALLOWED_PROVIDER.format(entry=entry, provider=provider)
    listed = providers[provider]
    # A provider that listed no models (never tested, or it has no model list) takes any ID.
    if listed and model not in listed:
        return UNLISTED_ALLOWED_MODEL.format(entry=entry, provider=provider, model=model)
    return ""


def validate_allowed_models(entries: list[str]) -> list[str]:
    """The entries a token may be limited to, stripped and without repeats: `default`, an
    existing routing group, or PROVIDER/MODEL of an existing provider (and, when that
    provider listed its models, one of them). The token form and `routing token create
    --allow` both call this; every bad entry is reported at once."""
    allowed = list(dict.fromkeys(m.strip() for m in entries if m.strip()))
    if not allowed:
        return []
    groups = set(RoutingGroup.objects.values_list("name", flat=True))
    providers = {
        name: [*(discovered or []), *(declared or [])]
        for name, discovered, declared in Provider.objects.values_list(
            "name", "discovered_models", "declared_models"
        )
    }
    messages = [m for e in allowed if (m := _allowed_entry_error(e, groups, providers))]
    if messages:
        raise ValidationError(messages)
    return allowed


@transaction.atomic
@sensitive_variables("raw")
def token_create(
    *,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    team: Team | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    max_parallel: int | None = None,
    budget: Budget | None = None,
    actor: audit.Actor = None,
) -> tuple[AccessToken, str]:
    """Returns the row and the plaintext token, which is never stored or shown again.

    A team's token with no allowed models of its own may call what its team may, and follows
    the team's list when that changes."""
    errors: dict[str, list[str]] = {}
    allowed: list[str] = []
    try:
        allowed = validate_allowed_models(allowed_models or [])
    except ValidationError as exc:
        errors["allowed_models"] = exc.messages
    # Under the configuration lock, and the team's list as stored: a team_update that
    # narrowed it since the caller read the team must not let a wider token in.
    live.lock_config()
    if team is not None:
        given = team.name
        team = Team.objects.filter(pk=team.pk).first()
        if team is None:
            errors["team"] = [TEAM_GONE.format(team=given)]
    if team is not None and team.allowed_models:
        models = ", ".join(team.allowed_models)
        wider = [
            WIDER_THAN_TEAM.format(entry=entry, team=team.name, models=models)
            for entry in allowed
            if not team.allows(entry)
        ]
        if wider:
            errors.setdefault("allowed_models", []).extend(wider)
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = [EXPIRY_IN_PAST]
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken(
        name=name.strip(),
        token_hash=hash_token(raw),
        prefix=raw[:8],
        allowed_models=allowed,
        expires_at=expires_at,
        team=team,
        created_by=audit.actor_user(actor),
    )
    try:
        apply_limits(token, rpm=rpm, tpm=tpm, max_parallel=max_parallel, budget=budget)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    # Every mistake at once: the name's too, not only the first field found wrong.
    try:
        token.full_clean(exclude=["allowed_models", "expires_at"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    token.save()
    audit.record(
        actor=actor,
        action="token.create",
        target=f"token:{token.name}",
        changes={
            "allowed_models": allowed,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "team": team.name if team else None,
            **_limits_shown(token),
        },
    )
    live.bump_version()
    return token, raw


@transaction.atomic
def token_revoke(*, token: AccessToken, actor: audit.Actor = None) -> AccessToken:
    live.lock_config()
    token = AccessToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError(ALREADY_REVOKED.format(name=token.name))
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(actor=actor, action="token.revoke", target=f"token:{token.name}", changes={})
    live.bump_version()
    return token


def _limits_shown(token: AccessToken) -> dict[str, Any]:
    """A new token's limits as the audit records them."""
    budget = token.budget
    return {
        "rpm": token.rpm,
        "tpm": token.tpm,
        "max_parallel": token.max_parallel,
        "budget": str(budget) if budget else None,
    }


@transaction.atomic
def token_limits_set(
    *,
    token: AccessToken,
    rpm: int | None = KEEP,
    tpm: int | None = KEEP,
    max_parallel: int | None = KEEP,
    budget: Budget | None = KEEP,
    actor: audit.Actor,
) -> AccessToken:
    """Set the limits given (None lifts one; one left out stays); live on the next call."""
    live.lock_config()
    token = AccessToken.objects.select_for_update().get(pk=token.pk)
    changes = apply_limits(token, rpm=rpm, tpm=tpm, max_parallel=max_parallel, budget=budget)
    if not changes:
        return token
    token.save(update_fields=["rpm", "tpm", "max_parallel", "budget_usd", "budget_period"])
    audit.record(actor=actor, action="token.limits", target=f"token:{token.name}", changes=changes)
    live.bump_version()
    return token
