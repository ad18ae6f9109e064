"""validate_allowed_models: what a token may be limited to must exist. The token form and
`routing token create --allow` both go through it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from gateway import services as tokens
from gateway.models import AccessToken, TokenState, token_state
from providers.models import Provider, RoutingGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def known(make_provider):
    RoutingGroup.objects.create(name="fast")
    listed = make_provider(name="listed")
    Provider.objects.filter(pk=listed.pk).update(discovered_models=["gpt-4o-mini"])
    make_provider(name="untested")


def test_existing_entries_are_kept_in_order_without_repeats(known):
    entries = [" fast", "default", "listed/gpt-4o-mini", "untested/anything:1b", "fast"]
    assert tokens.validate_allowed_models(entries) == [
        "fast",
        "default",
        "listed/gpt-4o-mini",
        "untested/anything:1b",
    ]


def test_every_missing_entry_is_named_at_once(known):
    with pytest.raises(ValidationError) as caught:
        tokens.validate_allowed_models(["slow", "ghost/m", "listed/gpt-5", "bad!id"])
    assert caught.value.messages == [
        tokens.UNKNOWN_ALLOWED_GROUP.format(entry="slow"),
        tokens.UNKNOWN_ALLOWED_PROVIDER.format(entry="ghost/m", provider="ghost"),
        tokens.UNLISTED_ALLOWED_MODEL.format(
            entry="listed/gpt-5", provider="listed", model="gpt-5"
        ),
        caught.value.messages[3],
    ]
    assert caught.value.messages[3].startswith("Allowed model 'bad!id' is not valid")


def test_the_command_line_refuses_a_group_that_does_not_exist(known):
    out, err = io.StringIO(), io.StringIO()
    message = tokens.UNKNOWN_ALLOWED_GROUP.format(entry="slow")
    with pytest.raises(CommandError, match=f"allowed-models: {message[:40]}"):
        call_command("routing", "token", "create", "app", "--allow", "slow", stdout=out, stderr=err)
    assert not AccessToken.objects.exists()


def test_token_create_reports_the_name_and_the_models_together(known):
    with pytest.raises(ValidationError) as caught:
        tokens.token_create(name="Bad Name", allowed_models=["slow"])
    assert set(caught.value.message_dict) == {"name", "allowed_models"}


def test_token_state_is_one_rule_revoked_first_then_expired_from_its_expiry_on():
    now = timezone.now()
    assert token_state(revoked_at=None, expires_at=None, now=now) == TokenState.ACTIVE
    assert token_state(revoked_at=None, expires_at=now + timedelta(seconds=1), now=now) == "active"
    assert token_state(revoked_at=None, expires_at=now, now=now) == TokenState.EXPIRED
    assert token_state(revoked_at=now, expires_at=now - timedelta(days=1), now=now) == "revoked"
