"""Reads of the provider store for the overview, the provider pages and the group editor."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from ..models import Provider


def provider_search(*, q: str = "") -> QuerySet[Provider]:
    """The overview table: providers whose name or display name contains q (all when empty),
    unevaluated, for the page to paginate."""
    providers = Provider.objects.all()
    if q:
        providers = providers.filter(Q(name__icontains=q) | Q(display_name__icontains=q))
    return providers


def provider_get(*, name: str) -> Provider | None:
    return Provider.objects.filter(name=name).first()


def providers_enabled() -> list[Provider]:
    return list(Provider.objects.filter(enabled=True))


def default_model_choices() -> list[Provider]:
    """The providers the default-model form offers, with what its suggestions read."""
    return list(
        Provider.objects.filter(enabled=True).only("name", "display_name", "discovered_models")
    )


def deployment_choices() -> list[Provider]:
    """Every provider a group's deployment may name, disabled ones included (the editor
    marks them), with what the editor reads."""
    return list(Provider.objects.only("id", "name", "display_name", "enabled", "discovered_models"))
