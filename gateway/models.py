from __future__ import annotations

from django.conf import settings
from django.db import models

from providers.validators import validate_token_name

# The table keeps the name it had when this model lived in providers/ (issue 14): the
# move was a change of Django's state only, not a copy of rows.


class AccessToken(models.Model):
    """A bearer token for the gateway (/v1/). Only its SHA-256 is stored: the token is shown
    once, at creation. Tokens never open the dashboard, and sessions never open /v1/."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_token_name])
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    allowed_models = models.JSONField(default=list, blank=True)
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
