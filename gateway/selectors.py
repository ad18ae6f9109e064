"""Reads of the token lists (/tokens/ and a team's page), and those of the /v1 API that are
not in the per-process snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from providers.models import Provider

from .models import AccessToken


@dataclass(frozen=True)
class TokenRow:
    token: AccessToken
    state: str


def token_rows(tokens: QuerySet[AccessToken] | None = None) -> list[TokenRow]:
    """The tokens (every one by default) with their state, in one query: their creator and
    team come along, and the hash never leaves the database."""
    if tokens is None:
        tokens = AccessToken.objects.all()
    now = timezone.now()
    tokens = tokens.select_related("created_by", "team").defer("token_hash")
    return [TokenRow(token, token.state(now)) for token in tokens]


def providers_with_health() -> QuerySet[Provider]:
    """The enabled providers with what GET /v1/providers shows of them; unevaluated, so
    that the async view iterates it without a thread."""
    return Provider.objects.filter(enabled=True).only(
        "name",
        "display_name",
        "kind",
        "last_test_ok",
        "last_test_latency_ms",
        "last_test_at",
        "unhealthy_since",
    )
