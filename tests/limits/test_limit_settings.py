"""Setting a token's and a team's limits: the command line's flags, the services' one rule
for each value (limits.rules), the audit, and what the gateway's snapshot carries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import Team
from gateway.models import AccessToken
from gateway.services import token_limits_set
from limits import rules
from limits.rules import Budget, Limits
from providers.management.commands.routing import NO_LIMIT_GIVEN
from providers.models import AuditEvent
from providers.routing import live

pytestmark = pytest.mark.django_db


def routing(*args: str) -> str:
    out = StringIO()
    call_command("routing", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def audited(action: str) -> list[dict]:
    rows = AuditEvent.objects.filter(action=action).order_by("id")
    return list(rows.values_list("changes", flat=True))


def test_token_create_takes_every_limit_and_token_list_shows_them():
    routing("token", "create", "ci", "--rpm", "60", "--tpm", "100000", "--max-parallel", "4",
            "--budget", "50/month")  # fmt: skip
    token = AccessToken.objects.get(name="ci")
    assert token.limits == Limits(60, 100000, 4, Budget(Decimal("50"), "month"))
    (changes,) = audited("token.create")
    assert {k: changes[k] for k in ("rpm", "tpm", "max_parallel", "budget")} == {
        "rpm": 60, "tpm": 100000, "max_parallel": 4, "budget": "50/month"
    }  # fmt: skip
    header, row = routing("token", "list").splitlines()
    assert "LIMITS" in header.split()
    assert "60rpm 100000tpm 4par $50/month" in row
    entry = next(iter(live.snapshot().tokens.values()))
    assert entry.limits == token.limits


def test_token_limits_changes_only_what_is_given():
    routing("token", "create", "ci", "--rpm", "60", "--tpm", "1000", "--budget", "5/day")
    out = routing("token", "limits", "ci", "--tpm", "none", "--max-parallel", "2")
    assert out.strip() == ("Token ci: 60 requests per minute, 2 concurrent requests, $5 per day.")
    token = AccessToken.objects.get(name="ci")
    assert token.limits == Limits(60, None, 2, Budget(Decimal("5"), "day"))
    assert audited("token.limits") == [{"tpm": [1000, None], "max_parallel": [None, 2]}]
    out = routing("token", "limits", "ci", "--rpm", "none", "--max-parallel", "none",
                  "--budget", "none")  # fmt: skip
    assert out.strip() == "Token ci: no limits of its own."


def test_token_limits_without_a_flag_says_which_there_are():
    routing("token", "create", "ci", "--rpm", "60")
    with pytest.raises(CommandError, match="Give at least one limit") as caught:
        routing("token", "limits", "ci")
    assert str(caught.value) == NO_LIMIT_GIVEN
    assert AccessToken.objects.get(name="ci").rpm == 60


@pytest.mark.parametrize("value", ["50", "0/month", "-5/day", "50/year", "1.23456/day", "abc/day"])
def test_a_bad_budget_is_refused_and_nothing_is_stored(value):
    routing("token", "create", "ci", "--budget", "9/week")
    with pytest.raises(CommandError, match="A budget is an amount in US dollars and a period"):
        routing("token", "limits", "ci", f"--budget={value}")
    with pytest.raises(CommandError, match="A budget is an amount"):
        routing("token", "create", "other", f"--budget={value}")
    assert list(AccessToken.objects.values_list("name", "budget_usd", "budget_period")) == [
        ("ci", Decimal("9"), "week")
    ]


@pytest.mark.parametrize("flag", ["--rpm", "--tpm", "--max-parallel"])
@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_bad_count_is_refused_naming_its_flag(flag, value):
    with pytest.raises(CommandError, match=f"{flag} takes a whole number"):
        routing("token", "create", "ci", flag, value)
    assert not AccessToken.objects.exists()


def test_team_limits_hold_for_the_team_and_reach_the_snapshot():
    routing("team", "add", "red")
    routing("token", "create", "r1", "--team", "red")
    out = routing("team", "limits", "red", "--budget", "$1,000/Week", "--max-parallel", "3")
    assert out.strip() == (
        "Team red: 3 concurrent requests, $1000 per week, all its tokens together."
    )
    team = Team.objects.get(name="red")
    assert team.limits == Limits(None, None, 3, Budget(Decimal("1000"), "week"))
    assert audited("team.update") == [{"max_parallel": [None, 3], "budget": [None, "1000/week"]}]
    entry = next(iter(live.snapshot().tokens.values()))
    assert (entry.limits, entry.team_limits) == (Limits(), team.limits)
    assert "3par $1000/week" in routing("team", "list").splitlines()[1]


def test_the_service_reports_every_bad_limit_at_once_and_changes_nothing():
    routing("token", "create", "ci", "--rpm", "5")
    token = AccessToken.objects.get(name="ci")
    with pytest.raises(ValidationError) as caught:
        token_limits_set(
            token=token, rpm=0, tpm=True, max_parallel=2, budget=Budget(Decimal(0), "day"),
            actor="test",
        )  # fmt: skip
    assert caught.value.message_dict == {
        "rpm": [rules.RPM_BAD], "tpm": [rules.TPM_BAD], "budget": [rules.BUDGET_BAD]
    }  # fmt: skip
    token.refresh_from_db()
    assert token.limits == Limits(rpm=5)
    assert audited("token.limits") == []


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", _at(2026, 12, 2, 18, 5), _at(2026, 12, 2), _at(2026, 12, 3)),
        # 2026-12-02 is a Wednesday: the week began on Monday the 30th of November.
        ("week", _at(2026, 12, 2, 18, 5), _at(2026, 11, 30), _at(2026, 12, 7)),
        ("month", _at(2026, 12, 31, 23, 59), _at(2026, 12, 1), _at(2027, 1, 1)),
        ("month", _at(2026, 2, 10), _at(2026, 2, 1), _at(2026, 3, 1)),
    ],
)  # fmt: skip
def test_budget_periods_are_utc_calendar_periods(period, now, start, end):
    assert rules.period_bounds(period, now) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))


def test_a_total_budget_never_turns():
    assert rules.period_bounds("total", _at(2026, 12, 2)) == (None, None)
