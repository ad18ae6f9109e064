"""Teams, their models and their limits in the LiteLLM config: written by the export, read
back by the import.

LiteLLM's config.yaml has no place for teams: its proxy keeps them in its own database
(POST /team/new). Its proxy reads the top-level sections it knows (model_list,
router_settings, litellm_settings, general_settings, environment_variables, ...) by name
and leaves any other key alone (litellm/proxy/proxy_server.py, ProxyConfig.load_config), so
teams travel in a section of their own, `routing_admin.teams`, which that proxy ignores.
Each team is written with LiteLLM's own field names for a team, where it has them:

    routing_admin:
      teams:
      - team_id: search            # the team's name
        team_alias: Search team    # its display name
        models: [fast]             # empty: every model, as in LiteLLM
        rpm_limit: 600
        tpm_limit: 100000
        max_parallel_requests: 8
        max_budget: 50.0           # US dollars
        budget_duration: 1mo       # 1d, 1w or 1mo; absent: a total budget

A team in the file is taken whole: a limit it leaves out is no limit. Its members and its
tokens are not exported (a token's value is never stored, only its hash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from ..services import audit
    from .litellm_import import ImportReport

SECTION = "routing_admin"
TEAMS = "teams"
# Our budget periods as LiteLLM's budget_duration; a total budget has none (LiteLLM's
# max_budget without a duration never resets).
DURATIONS = {"day": "1d", "week": "1w", "month": "1mo"}
PERIOD_OF = {"1d": "day", "7d": "week", "1w": "week", "1mo": "month"}
# LiteLLM's field -> the services' argument.
COUNTS = {"rpm_limit": "rpm", "tpm_limit": "tpm", "max_parallel_requests": "max_parallel"}
KEYS = ("team_id", "team_alias", "models", *COUNTS, "max_budget", "budget_duration")
# The services' fields as the file calls them, for their errors.
FILE_FIELD = {
    "name": "team_id",
    "display_name": "team_alias",
    "allowed_models": "models",
    **{arg: key for key, arg in COUNTS.items()},
    "budget": "max_budget",
}

SECTION_NOT_MAPPING = f"{SECTION} must be a mapping (with a list of {TEAMS})."
SECTION_KEY_IGNORED = f"Ignored {SECTION}.{{key}}: only {SECTION}.{TEAMS} is read."
TEAMS_NOT_A_LIST = f"{SECTION}.{TEAMS} must be a list of teams, each a mapping with a team_id."
TEAM_NOT_MAPPING = "Team {n}: not a mapping with a team_id."
TEAM_ID_MISSING = "Team {n}: team_id is missing or not text."
TEAM_TWICE = "Team {name}: it is in the file twice; keep one."
TEAM_KEYS_IGNORED = "Team {name}: ignored {keys} (Routing Admin keeps {known})."
NOT_TEXT = "Team {name}: {key} must be text."
MODELS_NOT_A_LIST = "Team {name}: models must be a list of model names."
BUDGET_NOT_A_NUMBER = "Team {name}: max_budget must be a number of US dollars."
DURATION_UNSUPPORTED = (
    "Team {name}: budget_duration {value!r} is not supported: a budget runs per calendar "
    "day (1d), week (1w) or month (1mo), in UTC, or in total (no budget_duration)."
)
DURATION_WITHOUT_BUDGET = "Team {name}: ignored budget_duration, as there is no max_budget."


@dataclass
class TeamPlan:
    name: str
    display_name: str
    allowed_models: list[str]
    # What the services take: rpm, tpm, max_parallel, budget (None: no such limit).
    limits: dict[str, Any] = field(default_factory=dict)


def export_teams() -> list[dict[str, Any]]:
    """Every team, by name, with its models and limits in LiteLLM's words."""
    from accounts.models import Team

    items = []
    for team in Team.objects.order_by("name"):
        item: dict[str, Any] = {"team_id": team.name}
        if team.display_name:
            item["team_alias"] = team.display_name
        item["models"] = list(team.allowed_models)
        for key, arg in COUNTS.items():
            if getattr(team, arg):
                item[key] = getattr(team, arg)
        if budget := team.budget:
            # A float reads back as the same Decimal: the column keeps 4 decimals at most.
            item["max_budget"] = float(budget.usd)
            if budget.period in DURATIONS:
                item["budget_duration"] = DURATIONS[budget.period]
        items.append(item)
    return items


def _text(raw: dict, key: str, name: str, errors: list[str]) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(NOT_TEXT.format(name=name, key=key))
        return ""
    return value.strip()


def _budget(raw: dict, name: str, errors: list[str], warnings: list[str]):
    from limits.rules import Budget

    usd, duration = raw.get("max_budget"), raw.get("budget_duration")
    if usd is None:
        if duration is not None:
            warnings.append(DURATION_WITHOUT_BUDGET.format(name=name))
        return None
    if duration is not None and duration not in PERIOD_OF:
        errors.append(DURATION_UNSUPPORTED.format(name=name, value=duration))
        return None
    if isinstance(usd, bool) or not isinstance(usd, int | float | str):
        errors.append(BUDGET_NOT_A_NUMBER.format(name=name))
        return None
    try:
        amount = Decimal(str(usd).strip())
    except InvalidOperation:
        errors.append(BUDGET_NOT_A_NUMBER.format(name=name))
        return None
    # limits.rules decides what a budget may be (through team_update), as for every other way.
    return Budget(amount, PERIOD_OF[duration] if duration is not None else "total")


def _team(n: int, raw: Any, errors: list[str], warnings: list[str]) -> TeamPlan | None:
    if not isinstance(raw, dict):
        errors.append(TEAM_NOT_MAPPING.format(n=n))
        return None
    name = raw.get("team_id")
    if not isinstance(name, str) or not name.strip():
        errors.append(TEAM_ID_MISSING.format(n=n))
        return None
    name = name.strip()
    if ignored := sorted(str(key) for key in set(raw) - set(KEYS)):
        known = ", ".join(KEYS)
        warnings.append(TEAM_KEYS_IGNORED.format(name=name, keys=", ".join(ignored), known=known))
    found = len(errors)
    display_name = _text(raw, "team_alias", name, errors)
    models = raw.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        errors.append(MODELS_NOT_A_LIST.format(name=name))
    limits = {arg: raw.get(key) for key, arg in COUNTS.items()}
    limits["budget"] = _budget(raw, name, errors, warnings)
    if len(errors) > found:
        return None
    return TeamPlan(name, display_name, list(models), limits)


def plan_teams(data: dict, errors: list[str], warnings: list[str]) -> list[TeamPlan]:
    """The file's teams, read (what each may be is the services' to say, when applied)."""
    section = data.get(SECTION)
    if section is None:
        return []
    if not isinstance(section, dict):
        errors.append(SECTION_NOT_MAPPING)
        return []
    for key in sorted(str(k) for k in set(section) - {TEAMS}):
        warnings.append(SECTION_KEY_IGNORED.format(key=key))
    raw_teams = section.get(TEAMS) or []
    if not isinstance(raw_teams, list):
        errors.append(TEAMS_NOT_A_LIST)
        return []
    teams: dict[str, TeamPlan] = {}
    for n, raw in enumerate(raw_teams, start=1):
        team = _team(n, raw, errors, warnings)
        if team is None:
            continue
        if team.name in teams:
            errors.append(TEAM_TWICE.format(name=team.name))
            continue
        teams[team.name] = team
    return list(teams.values())


def team_errors(exc: ValidationError) -> str:
    """A service's refusal in the file's words: "max_budget: A budget is ..."."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    return "; ".join(
        ("" if f == "__all__" else f"{FILE_FIELD.get(f, f)}: ") + " ".join(m)
        for f, m in exc.message_dict.items()
    )


def _summary(plan: TeamPlan) -> str:
    from limits.rules import Limits

    models = ", ".join(plan.allowed_models) or "every model"
    return f"{models}; {Limits(**plan.limits).describe()}"


def _changed(team: Any, plan: TeamPlan) -> list[str]:
    """What the file changes of an existing team, in the file's words."""
    from gateway.services import validate_allowed_models

    changed = []
    if team.display_name != plan.display_name:
        changed.append("team_alias")
    try:
        if team.allowed_models != validate_allowed_models(plan.allowed_models):
            changed.append("models")
    except ValidationError:
        changed.append("models")  # team_update reports why
    current = {"rpm": team.rpm, "tpm": team.tpm, "max_parallel": team.max_parallel}
    current["budget"] = team.budget
    changed += [FILE_FIELD[arg] for arg, value in plan.limits.items() if current[arg] != value]
    return changed


def apply_team(plan: TeamPlan, report: ImportReport, actor: audit.Actor) -> None:
    """Create the team or bring it to what the file says, through accounts.services (which
    validate and audit); raises their ValidationError."""
    from accounts.models import Team
    from accounts.services import team_create, team_update

    existing = Team.objects.filter(name=plan.name).first()
    if existing is None:
        team_create(
            name=plan.name,
            display_name=plan.display_name,
            allowed_models=plan.allowed_models,
            **plan.limits,
            actor=actor,
        )
        report.created.append(f"team {plan.name} ({_summary(plan)})")
        return
    changed = _changed(existing, plan)
    if not changed:
        report.unchanged.append(f"team {plan.name}")
        return
    team_update(
        team=existing,
        display_name=plan.display_name,
        allowed_models=plan.allowed_models,
        **plan.limits,
        actor=actor,
    )
    report.updated.append(f"team {plan.name} ({', '.join(changed)})")
