"""Reads of the token lists (/tokens/ and a team's page), and those of the /v1 API that are
not in the per-process snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from limits import selectors as limit_selectors
from limits.selectors import Reads, Use
from providers.models import Provider

from .models import AccessToken


@dataclass(frozen=True)
class TokenRow:
    token: AccessToken
    state: str
    use: Use  # against its own limits


def token_rows(
    tokens: QuerySet[AccessToken] | None = None, *, reads: Reads | None = None
) -> list[TokenRow]:
    """The tokens (every one by default) with their state and their use of their limits, in
    three queries (one when `reads`, limits.selectors.read, covers them already): their
    creator and team come along, and the hash never leaves the database."""
    everyone = tokens is None
    tokens = AccessToken.objects.all() if everyone else tokens
    now = timezone.now()
    found = list(tokens.select_related("created_by", "team").defer("token_hash"))
    if reads is None:
        reads = limit_selectors.read(None if everyone else [t.name for t in found], now=now)
    return [TokenRow(t, t.state(now), reads.use(t.limits, [t.name])) for t in found]


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
