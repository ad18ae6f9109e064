"""Gateway access tokens: created (shown once), listed, revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import live
from ..models import AccessToken
from ..validators import validate_model_id
from . import audit

TOKEN_PREFIX = "ra-"
ALREADY_REVOKED = "Token {name!r} is already revoked."
EXPIRY_IN_PAST = "The expiry must be in the future."
BAD_ALLOWED_MODEL = "Allowed model {entry!r} is not valid: {reason}"


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness: a fast hash is enough, and keeps auth cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
@sensitive_variables("raw")
def token_create(
    *,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    actor: audit.Actor = None,
) -> tuple[AccessToken, str]:
    """Returns the row and the plaintext token, which is never stored or shown again."""
    allowed = [m.strip() for m in allowed_models or [] if m.strip()]
    for model in allowed:
        try:
            validate_model_id(model)
        except ValidationError as exc:
            reason = " ".join(exc.messages)
            message = BAD_ALLOWED_MODEL.format(entry=model, reason=reason)
            raise ValidationError({"allowed_models": [message]}) from None
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": [EXPIRY_IN_PAST]})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken(
        name=name.strip(),
        token_hash=hash_token(raw),
        prefix=raw[:8],
        allowed_models=allowed,
        expires_at=expires_at,
        created_by=audit.actor_user(actor),
    )
    token.full_clean()
    live.lock_config()
    token.save()
    audit.record(
        actor=actor,
        action="token.create",
        target=f"token:{token.name}",
        changes={
            "allowed_models": allowed,
            "expires_at": expires_at.isoformat() if expires_at else None,
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
