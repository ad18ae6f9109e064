"""Re-encrypting every stored secret under the first key of ROUTING_ENCRYPTION_KEYS."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from .. import crypto
from ..models import Provider
from ..routing import live
from . import audit

_SECRET_COLUMNS = ("api_key_ciphertext", "headers_ciphertext")


@dataclass
class RotationReport:
    rotated: int = 0
    already_current: int = 0
    undecryptable: list[str] = field(default_factory=list)


def rotate_keys(*, actor: audit.Actor = None) -> RotationReport:
    """Safe to re-run and to resume after a crash: each provider is rotated in its own
    transaction, and a secret already under the first key is left alone. A secret no key
    can decrypt is reported and left exactly as it is, never blanked."""
    report = RotationReport()
    for pk in Provider.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            live.lock_config()
            provider = Provider.objects.select_for_update().filter(pk=pk).first()
            if provider is None:
                continue
            changed = []
            for column in _SECRET_COLUMNS:
                token = getattr(provider, column)
                if not token:
                    continue
                if not crypto.is_decryptable(token):
                    report.undecryptable.append(provider.name)
                    continue
                if crypto.needs_rotation(token):
                    setattr(provider, column, crypto.rotate(token))
                    changed.append(column)
            if changed:
                Provider.objects.filter(pk=pk).update(
                    **{column: getattr(provider, column) for column in changed}
                )
                report.rotated += 1
            elif provider.name not in report.undecryptable:
                report.already_current += 1
    with transaction.atomic():
        live.lock_config()
        audit.record(
            actor=actor,
            action="keys.rotate",
            target="encryption",
            changes={
                "rotated": report.rotated,
                "already_current": report.already_current,
                "undecryptable": sorted(set(report.undecryptable)),
            },
        )
        live.bump_version()
    return report
