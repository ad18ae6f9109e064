from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from . import crypto, kinds
from .validators import (
    validate_group_name,
    validate_model_id,
    validate_provider_name,
)

MODEL_CALL_TIMEOUT = 600.0
# A connection test lists models: it needs seconds, not a generation's minutes.
CONNECTION_TEST_TIMEOUT = 10.0


class KeyState(models.TextChoices):
    NONE = "none", "no key"
    SET = "set", "set"
    UNDECRYPTABLE = "undecryptable", "undecryptable"


class LastTest(models.Model):
    """The outcome of a row's last "Test" (a provider's connection test, a group's test
    call), kept on the row so that its page shows it (services.last_test records it)."""

    MESSAGE_LENGTH = 500

    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_latency_ms = models.FloatField(null=True, blank=True)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_message = models.CharField(max_length=MESSAGE_LENGTH, blank=True)

    class Meta:
        abstract = True


class Provider(LastTest):
    name = models.CharField(max_length=63, unique=True, validators=[validate_provider_name])
    # Free text shown on every page; `name` is what model addresses use ("together/<model>").
    display_name = models.CharField("Display name", max_length=100, blank=True)
    kind = models.CharField(max_length=32, choices=kinds.CHOICES)
    base_url = models.CharField("Base URL", max_length=2000, blank=True)
    # Secrets are stored only as MultiFernet tokens; the hint ("sk-…abcd") is what pages show.
    api_key_ciphertext = models.TextField(blank=True, editable=False)
    api_key_hint = models.CharField(max_length=16, blank=True, editable=False)
    # Header names are shown; their values are secret and live in one encrypted JSON object.
    header_names = models.JSONField(default=list, blank=True, editable=False)
    headers_ciphertext = models.TextField(blank=True, editable=False)
    api_version = models.CharField("API version", max_length=32, blank=True)
    # Settings only some kinds have (their KindFields: Bedrock's region, Vertex AI's project
    # and location), by name. Never secret: secrets live in the key's ciphertext.
    options = models.JSONField("Kind settings", default=dict, blank=True)
    # Model calls: long answers and reasoning models take minutes (the OpenAI SDK's own
    # default is 600 s). The connection test keeps its own short limit.
    timeout = models.FloatField(
        default=MODEL_CALL_TIMEOUT, validators=[MinValueValidator(0.5), MaxValueValidator(3600)]
    )
    max_retries = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(10)])
    drop_params = models.BooleanField(
        "Drop parameters this provider does not support", default=False
    )
    # Model (or deployment) names the admin declares, for kinds whose API cannot list the
    # names that can be called (Azure OpenAI deployments).
    declared_models = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    # Bumped on every save, so a second editor working from a stale form is refused.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discovered_models = models.JSONField(default=list, blank=True, editable=False)
    # Health (issue #6): failures in a row, and since when the provider counts as unhealthy
    # (ROUTING_HEALTH_FAILURE_THRESHOLD failures in a row; cleared by the next success).
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    unhealthy_since = models.DateTimeField(null=True, blank=True, editable=False)
    drain_when_unhealthy = models.BooleanField(
        "Take out of routing groups while unhealthy", default=False
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def kind_info(self) -> kinds.ProviderKind:
        return kinds.KINDS[self.kind]

    @property
    def title(self) -> str:
        """What pages call the provider: its display name, else its name."""
        return self.display_name or self.name

    @property
    def test_timeout(self) -> float:
        """The connection test's limit: the provider's timeout, at most CONNECTION_TEST_TIMEOUT."""
        return min(self.timeout, CONNECTION_TEST_TIMEOUT)

    @property
    def effective_base_url(self) -> str:
        return self.base_url or self.kind_info.default_base_url_for(self.options)

    @property
    def settings_shown(self) -> list[tuple[str, str]]:
        """The kind's own settings as (label, value), for pages; none of them is secret."""
        return [(f.label, (self.options or {}).get(f.name, "")) for f in self.kind_info.fields]

    @property
    def key_state(self) -> str:
        if not self.api_key_ciphertext:
            return KeyState.NONE
        if crypto.is_decryptable(self.api_key_ciphertext):
            return KeyState.SET
        return KeyState.UNDECRYPTABLE

    def get_api_key(self) -> str:
        """The plaintext key, or "" when none is stored; raises UndecryptableSecret."""
        return crypto.decrypt(self.api_key_ciphertext) if self.api_key_ciphertext else ""

    def get_headers(self) -> dict[str, str]:
        import json

        if not self.headers_ciphertext:
            return {}
        return json.loads(crypto.decrypt(self.headers_ciphertext))


class ProbeResult(models.Model):
    """One connection test of a provider: the health history behind the provider page's
    chart. Only the last few per provider are kept (services.health.HISTORY_LENGTH)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="probes")
    at = models.DateTimeField()
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True)
    # Who ran it: "health-check", "cli:alice", a username, ...
    source = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["provider", "-at"], name="probe_provider_at")]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'error'}"


class ConfigState(models.Model):
    """One row whose version moves on every configuration change: the truth that every
    process compares its cached clients against."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="single_config_state")]


class RoutingStrategy(models.TextChoices):
    # Values are LiteLLM Router's routing_strategy names.
    SIMPLE_SHUFFLE = "simple-shuffle", "Weighted random (simple shuffle)"
    LEAST_BUSY = "least-busy", "Least busy"
    LATENCY = "latency-based-routing", "Lowest latency"
    USAGE = "usage-based-routing-v2", "Lowest usage (rpm/tpm)"


class RoutingGroup(LastTest):
    """A named model ("fast", "quality") served by an ordered list of deployments, with
    fallback groups tried in order when every deployment fails."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_group_name])
    description = models.CharField(max_length=200, blank=True)
    drop_params = models.BooleanField(
        "Drop parameters a deployment's provider does not support", default=False
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    group = models.ForeignKey(RoutingGroup, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    model = models.CharField(max_length=200, validators=[validate_model_id])
    position = models.PositiveSmallIntegerField(default=0)
    weight = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    rpm = models.PositiveIntegerField("Requests per minute", null=True, blank=True)
    tpm = models.PositiveIntegerField("Tokens per minute", null=True, blank=True)
    timeout = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.5), MaxValueValidator(3600)]
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.provider.name}/{self.model}"


class GroupFallback(models.Model):
    group = models.ForeignKey(RoutingGroup, on_delete=models.CASCADE, related_name="fallback_links")
    fallback = models.ForeignKey(RoutingGroup, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["group", "fallback"], name="unique_fallback"),
            models.CheckConstraint(
                condition=~models.Q(group=models.F("fallback")), name="no_self_fallback"
            ),
        ]


class RouterSettings(models.Model):
    """Router-wide settings, as LiteLLM's Router has them (one row)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    routing_strategy = models.CharField(
        max_length=40, choices=RoutingStrategy.choices, default=RoutingStrategy.SIMPLE_SHUFFLE
    )
    num_retries = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(10)])
    timeout = models.FloatField(
        default=MODEL_CALL_TIMEOUT, validators=[MinValueValidator(0.5), MaxValueValidator(3600)]
    )
    cooldown_time = models.FloatField(
        "Cooldown after failures (seconds)",
        default=30.0,
        validators=[MinValueValidator(0), MaxValueValidator(3600)],
    )
    allowed_fails = models.PositiveSmallIntegerField(default=3, validators=[MaxValueValidator(100)])

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="single_router")]


class DefaultModel(models.Model):
    """The active default: one provider model, or one routing group. The fixed primary key
    plus the check constraints make the database hold at most one row, and that row names
    exactly one of the two."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    group = models.ForeignKey(
        RoutingGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    previous_group = models.ForeignKey(
        RoutingGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_by_name = models.CharField(max_length=150, blank=True)
    previous_provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_model = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="single_default"),
            models.CheckConstraint(
                condition=(
                    models.Q(group__isnull=True, provider__isnull=False) & ~models.Q(model="")
                )
                | models.Q(group__isnull=False, provider__isnull=True, model=""),
                name="default_is_model_or_group",
            ),
        ]

    def __str__(self) -> str:
        if self.group_id:
            return self.group.name
        return f"{self.provider.name}/{self.model}"

    @property
    def previous_label(self) -> str:
        if self.previous_group_id:
            return self.previous_group.name
        if self.previous_provider_id and self.previous_model:
            return f"{self.previous_provider.name}/{self.previous_model}"
        return ""


class AuditEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=50)
    target = models.CharField(max_length=200, blank=True, db_index=True)
    # {field: [old, new]}; secrets appear only as "changed" / "removed" / "set".
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["actor_name", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target}"
