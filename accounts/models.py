from __future__ import annotations

from django.conf import settings
from django.db import models

from limits.models import LimitFields
from providers.validators import validate_team_name

# The table keeps the name it had when this model lived in providers/ (issue 14).


class ThrottleHit(models.Model):
    """One counted event for a throttle: a failed login (per account and per address) or a
    connection test (per person). Rows live in the database so that every process, and every
    worker, sees the same counts; accounts.throttle deletes them once they are too old."""

    scope = models.CharField(max_length=16)
    key = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        db_table = "providers_throttlehit"
        indexes = [
            models.Index(fields=["scope", "key", "at"], name="throttle_scope_key_at"),
            models.Index(fields=["at"], name="throttle_at"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} {self.at:%Y-%m-%d %H:%M:%S}"


class TeamRole(models.TextChoices):
    MEMBER = "member"
    ADMIN = "admin"


class Team(LimitFields):
    """A slice of the gateway that one group of people runs: its members, the tokens it owns
    and the models those tokens may call. Providers and routing groups stay global. Its
    limits hold for all its tokens together."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_team_name])
    display_name = models.CharField(max_length=100, blank=True)
    # Routing groups, PROVIDER/MODEL entries and `default`; empty allows every model. A token
    # of the team may be limited further, never wider (gateway.services).
    allowed_models = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def title(self) -> str:
        return self.display_name or self.name

    def allows(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    role = models.CharField(max_length=6, choices=TeamRole.choices, default=TeamRole.MEMBER)
    # Memberships the IdP's groups gave (ROUTING_OIDC_TEAM_MAP) are re-applied at each
    # sign-in; ones an admin added by hand are left alone.
    from_sso = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"
