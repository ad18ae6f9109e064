import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from gateway.models import AccessToken
from gateway.services import hash_token
from providers.models import AuditEvent, RoutingGroup
from usage.models import RequestLog
from usage.services import PRUNE_DAYS_NEGATIVE


def routing(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("routing", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def fast(db) -> RoutingGroup:
    return RoutingGroup.objects.create(name="fast")


def test_token_create_names_the_allowed_model_that_is_invalid(fast):
    with pytest.raises(CommandError, match=r"allowed-models: Allowed model 'bad!id' is not valid"):
        routing("token", "create", "ci-app", "--allow", "fast", "--allow", "bad!id")
    assert not AccessToken.objects.exists()


def test_token_create_prints_it_once_and_stores_only_the_hash(fast):
    out, err = routing("token", "create", "ci-app", "--expires-in-days", "7", "--allow", "fast")
    raw = out.strip()
    assert raw.startswith("ra-") and "not shown again" in err
    token = AccessToken.objects.get(name="ci-app")
    assert token.token_hash == hash_token(raw) and raw not in repr(
        AccessToken.objects.values().get()
    )
    assert token.allowed_models == ["fast"] and token.expires_at > timezone.now()
    listing, _ = routing("token", "list")
    assert "ci-app" in listing and "active" in listing and raw not in listing
    assert raw not in repr(list(AuditEvent.objects.values()))


def test_token_revoke_and_errors(db):
    routing("token", "create", "app")
    assert "Revoked" in routing("token", "revoke", "app")[0]
    assert "revoked" in routing("token", "list")[0]
    with pytest.raises(CommandError, match="already revoked"):
        routing("token", "revoke", "app")
    with pytest.raises(CommandError, match="No token named 'ghost'"):
        routing("token", "revoke", "ghost")
    with pytest.raises(CommandError, match="name:"):
        routing("token", "create", "Bad Name")


def test_prune_requests_keeps_the_retention_window(db, settings):
    settings.ROUTING_REQUEST_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    RequestLog.objects.bulk_create(
        RequestLog(at=now - timedelta(days=age), requested_model="m", ok=True, latency_ms=1)
        for age in (1, 29, 31, 90)
    )
    out, _ = routing("prune-requests")
    assert "Deleted 2" in out and RequestLog.objects.count() == 2
    routing("prune-requests", "--days", "7")
    assert RequestLog.objects.count() == 1


@pytest.mark.parametrize("days", ["-5", "-0.5", "nan"])
def test_prune_requests_refuses_negative_days_and_deletes_nothing(db, days):
    RequestLog.objects.create(at=timezone.now(), requested_model="m", ok=True, latency_ms=1)
    with pytest.raises(CommandError) as refused:
        routing("prune-requests", "--days", days)
    assert str(refused.value) == PRUNE_DAYS_NEGATIVE.format(days=float(days))
    assert RequestLog.objects.count() == 1


def test_prune_requests_with_zero_days_deletes_everything_up_to_now(db):
    RequestLog.objects.create(
        at=timezone.now() - timedelta(seconds=1), requested_model="m", ok=True, latency_ms=1
    )
    assert "Deleted 1" in routing("prune-requests", "--days", "0")[0]
    assert not RequestLog.objects.exists()


def test_prune_requests_beyond_the_calendar_is_refused(db):
    with pytest.raises(CommandError, match="goes back before the year 1"):
        routing("prune-requests", "--days", "1e9")
