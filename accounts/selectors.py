"""Reads of the users page and of the team pages."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import (
    Count,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from gateway.models import AccessToken
from gateway.selectors import TokenRow, token_rows
from limits import selectors as limit_selectors
from limits.selectors import Use
from providers.models import AuditEvent
from usage.selectors import RANGES, Filters, Totals, team_tokens, window

from . import services
from .models import Team, TeamMembership
from .roles import ROLES, can_run_team_tokens, has_role, role_from, team_roles

# The team page's audit section: the latest entries; the audit log (editors and up) has all.
TEAM_AUDIT_ROWS = 20
TEAM_USAGE_RANGE = "24h"


def users_with_roles() -> list:
    """Every user by name, each with `.role` set, in two queries."""
    role_groups = Prefetch("groups", queryset=Group.objects.filter(name__in=ROLES))
    users = list(get_user_model().objects.order_by("username").prefetch_related(role_groups))
    for user in users:
        user.role = role_from(
            is_superuser=user.is_superuser, groups=(g.name for g in user.groups.all())
        )
    return users


# --- teams ---------------------------------------------------------------------------


def _count(rows: QuerySet) -> Coalesce:
    # A subquery per count: two joins in one query would multiply members by tokens.
    counted = rows.filter(team=OuterRef("pk")).order_by().values("team").annotate(n=Count("*"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)


def teams_visible_to(user) -> list[Team]:
    """The teams the user may see (every one for a global viewer and up, else their own), by
    name, each with `.member_count`, `.live_token_count`, `.my_role` (their team role or
    None) and `.use` (of its limits, all its tokens together), in four queries."""
    teams = Team.objects.annotate(
        member_count=_count(TeamMembership.objects.all()),
        live_token_count=_count(AccessToken.objects.filter(revoked_at__isnull=True)),
    )
    mine = team_roles(user)
    if not has_role(user, "viewer"):
        teams = teams.filter(name__in=list(mine))
    rows = list(teams)
    names = team_tokens(teams=[team.name for team in rows]) if rows else {}
    use = limit_selectors.teams_use(rows, names)
    for team in rows:
        team.my_role = mine.get(team.name)
        team.use = use[team.name]
    return rows


def team_token_names(team: Team) -> QuerySet:
    """The names of every token the team owns, revoked ones too, as a subquery: usage and
    audit by team are read through them (token names are never reused)."""
    return AccessToken.objects.filter(team=team).values("name")


def team_usage(team: Team) -> Totals:
    """The team's requests, errors, tokens and cost of the last 24 hours, from the same
    hourly roll-up the usage page reads for that range: one aggregate."""
    w = window(RANGES[TEAM_USAGE_RANGE], until=timezone.now(), filters=Filters())
    rows = w.token_totals().filter(token_name__in=team_token_names(team))
    sums = rows.aggregate(
        requests=Coalesce(Sum("requests"), 0),
        errors=Coalesce(Sum("errors"), 0),
        prompt=Coalesce(Sum("prompt_tokens"), 0),
        completion=Coalesce(Sum("completion_tokens"), 0),
        cost=Sum("cost"),
    )
    return Totals(
        requests=sums["requests"],
        errors=sums["errors"],
        tokens=sums["prompt"] + sums["completion"],
        cost=sums["cost"],
    )


def team_audit(team: Team) -> list[AuditEvent]:
    """The latest audit entries about the team or one of its tokens, newest first."""
    token_targets = AccessToken.objects.filter(team=team).values(
        target=Concat(Value("token:"), "name")
    )
    own = Q(target=services.team_target(team))
    events = AuditEvent.objects.filter(own | Q(target__in=token_targets))
    return list(events.only("at", "actor_name", "action", "target", "changes")[:TEAM_AUDIT_ROWS])


@dataclass(frozen=True)
class TeamPage:
    team: Team
    my_role: str | None
    members: list[TeamMembership]
    tokens: list[TokenRow]
    usage: Totals
    # The team's use of its limits (all its tokens together), and what they refused.
    limits: Use
    # None: the user may not read the team's audit entries.
    audit: list[AuditEvent] | None


def team_page(team: Team, user) -> TeamPage:
    """Everything the team's page shows, in a fixed number of queries whatever the number of
    members, tokens or entries."""
    members = list(team.memberships.select_related("user").order_by("user__username"))
    # One read of the last minute and the spend serves the team and each of its tokens.
    reads = limit_selectors.read(team_token_names(team))
    tokens = token_rows(AccessToken.objects.filter(team=team), reads=reads)
    names = [row.token.name for row in tokens]
    return TeamPage(
        team=team,
        my_role=team_roles(user).get(team.name),
        members=members,
        tokens=tokens,
        usage=team_usage(team),
        limits=limit_selectors.use_of(team.limits, names, reads=reads),
        audit=team_audit(team) if can_run_team_tokens(user, team.name) else None,
    )
