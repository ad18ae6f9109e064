from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from limits.models import LimitFields
from providers.validators import validate_token_name

# The table keeps the name it had when this model lived in providers/ (issue 14): the
# move was a change of Django's state only, not a copy of rows.


class TokenState(models.TextChoices):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def token_state(
    *, revoked_at: datetime | None, expires_at: datetime | None, now: datetime
) -> TokenState:
    """The one rule for a token's state: revoked wins; expired from its expiry on."""
    if revoked_at is not None:
        return TokenState.REVOKED
    if expires_at is not None and expires_at <= now:
        return TokenState.EXPIRED
    return TokenState.ACTIVE


class AccessToken(LimitFields):
    """A bearer token for the gateway (/v1/). Only its SHA-256 is stored: the token is shown
    once, at creation. Tokens never open the dashboard, and sessions never open /v1/. Its
    limits are its own; its team's hold as well, for all the team's tokens together."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_token_name])
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    allowed_models = models.JSONField(default=list, blank=True)
    # The team that owns the token, for good: usage by team is read through its tokens'
    # names. None: a global admin's or editor's own token. PROTECT, because a team's live
    # token must never outlive its team as a token of no team (accounts.services.team_remove).
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tokens",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "providers_accesstoken"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def state(self, now: datetime | None = None) -> TokenState:
        return token_state(
            revoked_at=self.revoked_at, expires_at=self.expires_at, now=now or timezone.now()
        )
