"""Teams and their limits in the LiteLLM config: exported in routing_admin.teams with
LiteLLM's team field names, read back by import-litellm (created, updated, unchanged, shown
by the dry run), so that export and import round-trip; LiteLLM itself still loads the file."""

import io
from decimal import Decimal

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from accounts import services as team_services
from accounts.models import Team
from gateway.services import token_create
from limits.rules import RPM_BAD, Budget
from providers import services
from providers.importexport import litellm_teams
from providers.models import AuditEvent, Provider, RoutingGroup
from providers.routing.llm import litellm
from providers.services import DeploymentSpec as D

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def teams(upstream_factory, make_provider):
    """A provider and a group, and teams with every kind of limit."""
    upstream = upstream_factory("a")
    make_provider(name="acme", base_url=upstream.base_url + "/v1")
    services.group_save(name="fast", deployments=[D("acme", "small")])
    search = team_services.team_create(
        name="search", display_name="Search team", allowed_models=["fast"], actor="t"
    )
    team_services.team_update(
        team=search,
        rpm=600,
        tpm=100000,
        max_parallel=8,
        budget=Budget(Decimal("50"), "month"),
        actor="t",
    )
    for name, budget in (("daily", "12.3456/day"), ("weekly", "7/week"), ("forever", "100/total")):
        usd, period = budget.split("/")
        team = team_services.team_create(name=name, allowed_models=["acme/small"], actor="t")
        team_services.team_update(team=team, budget=Budget(Decimal(usd), period), actor="t")
    team_services.team_create(name="open", actor="t")  # no limits, every model
    return upstream


def _export(include_secrets=False):
    config, env = services.export_config(include_secrets=include_secrets)
    return services.render_yaml(config), env


def _import(text, env=None, dry_run=False):
    return services.import_config(
        data=services.parse_yaml(text), environ=env or {}, dry_run=dry_run, actor="test"
    )


def _by_id(config):
    return {t["team_id"]: t for t in config[litellm_teams.SECTION][litellm_teams.TEAMS]}


def test_teams_are_exported_with_litellms_team_fields(teams):
    config = yaml.safe_load(_export()[0])
    assert list(config) == ["model_list", "router_settings", "routing_admin"]
    found = _by_id(config)
    assert list(found) == ["daily", "forever", "open", "search", "weekly"]
    assert found["search"] == {
        "team_id": "search",
        "team_alias": "Search team",
        "models": ["fast"],
        "rpm_limit": 600,
        "tpm_limit": 100000,
        "max_parallel_requests": 8,
        "max_budget": 50.0,
        "budget_duration": "1mo",
    }
    assert found["daily"]["max_budget"] == 12.3456 and found["daily"]["budget_duration"] == "1d"
    assert found["weekly"]["budget_duration"] == "1w"
    # A total budget never resets: LiteLLM's max_budget without a budget_duration.
    assert found["forever"] == {"team_id": "forever", "models": ["acme/small"], "max_budget": 100.0}
    assert found["open"] == {"team_id": "open", "models": []}


def test_no_teams_no_section(make_provider):
    make_provider(name="acme")
    assert "routing_admin" not in yaml.safe_load(_export()[0])


def test_the_file_with_teams_still_drives_a_litellm_router(teams):
    # The section is beside what LiteLLM reads; what it reads is unchanged by it.
    text, env = _export(include_secrets=True)
    config = yaml.safe_load(text)
    params = config["model_list"][0]["litellm_params"]
    params["api_key"] = env[params["api_key"].removeprefix("os.environ/")]
    router = litellm().Router(model_list=config["model_list"][:1])
    router.completion(model="acme/small", messages=HI)
    assert teams.last.json()["model"] == "small"


def test_round_trip_into_a_database_without_teams(teams):
    text, env = _export(include_secrets=True)
    Team.objects.all().delete()
    report = _import(text, env)
    assert report.ok, report.errors
    limits = "600 requests per minute, 100000 tokens per minute, 8 concurrent requests"
    assert f"team search (fast; {limits}, $50 per month)" in report.created
    assert "team open (every model; no limits)" in report.created
    assert _export()[0] == text
    search = Team.objects.get(name="search")
    assert search.budget == Budget(Decimal("50"), "month") and search.display_name == "Search team"
    assert Team.objects.get(name="daily").budget == Budget(Decimal("12.3456"), "day")
    # One audit entry per team created, its limits in it.
    created = AuditEvent.objects.filter(action="team.create", target="team:search")
    event = created.order_by("-id").first()
    assert event.changes["rpm"] == 600 and event.changes["budget"] == "50/month"

    before = AuditEvent.objects.count()
    again = _import(text, env)
    assert again.ok and "team search" in again.unchanged and not again.created
    assert AuditEvent.objects.count() == before


def test_an_import_brings_a_team_back_to_the_file(teams):
    text, env = _export(include_secrets=True)
    search = Team.objects.get(name="search")
    team_services.team_update(team=search, rpm=1, tpm=None, allowed_models=[], actor="t")
    team_services.team_update(
        team=Team.objects.get(name="open"), budget=Budget(Decimal("1"), "day"), actor="t"
    )
    report = _import(text, env)
    assert report.ok, report.errors
    assert "team search (models, rpm_limit, tpm_limit)" in report.updated
    # A limit the file leaves out is no limit.
    assert "team open (max_budget)" in report.updated
    assert Team.objects.get(name="open").budget is None
    assert _export()[0] == text


def test_the_dry_run_shows_the_teams_and_changes_nothing(teams):
    text, env = _export(include_secrets=True)
    Team.objects.all().delete()
    report = _import(text, env, dry_run=True)
    assert report.ok and any(item.startswith("team search (fast;") for item in report.created)
    assert not Team.objects.exists()


def test_the_dashboards_preview_shows_the_teams(teams, client, login_as):
    text, env = _export(include_secrets=True)
    Team.objects.all().delete()
    login_as("editor")
    data = {
        "config": SimpleUploadedFile("config.yaml", text.encode()),
        "environment": services.render_env(env),
    }
    html = client.post(reverse("config_import"), data).content.decode()
    assert "team search (fast; 600 requests per minute" in html
    assert "team weekly (acme/small; $7 per week)" in html
    assert not Team.objects.exists()
    applied = client.post(reverse("config_import"), {"preview": "x"})
    assert applied.status_code == 302 and not Team.objects.exists()


def _config(*teams, section=None):
    return yaml.safe_dump({"model_list": [], "routing_admin": section or {"teams": list(teams)}})


def test_bad_teams_import_nothing_and_say_why_in_the_files_words(teams):
    text = _config(
        {"team_id": "new-a", "rpm_limit": 0},
        {"team_id": "new-b", "max_budget": 5, "budget_duration": "30d"},
        {"team_id": "new-c", "models": ["nosuch"]},
        {"team_id": "new-d", "max_budget": "lots"},
        {"team_alias": "no id"},
        {"team_id": "new-e"},
        {"team_id": "new-e"},
    )
    report = _import(text)
    assert f"Team new-a: rpm_limit: {RPM_BAD}" in report.errors
    assert litellm_teams.DURATION_UNSUPPORTED.format(name="new-b", value="30d") in report.errors
    assert any(e.startswith("Team new-c: models: Allowed model 'nosuch'") for e in report.errors)
    assert litellm_teams.BUDGET_NOT_A_NUMBER.format(name="new-d") in report.errors
    assert litellm_teams.TEAM_ID_MISSING.format(n=5) in report.errors
    assert litellm_teams.TEAM_TWICE.format(name="new-e") in report.errors
    assert not Team.objects.filter(name__startswith="new-").exists()


def test_litellms_other_team_fields_are_ignored_with_a_warning(db):
    text = _config({"team_id": "ops", "members": ["a"], "blocked": False, "rpm_limit": 5})
    report = _import(text)
    assert report.ok, report.errors
    assert report.warnings == [
        "Team ops: ignored blocked, members (Routing Admin keeps team_id, team_alias, models, "
        "rpm_limit, tpm_limit, max_parallel_requests, max_budget, budget_duration)."
    ]
    assert Team.objects.get(name="ops").rpm == 5
    # The section is ours: no "ignored section" warning for it, unlike LiteLLM's own.
    bad = _import(yaml.safe_dump({"model_list": [], "routing_admin": ["teams"]}))
    assert bad.errors == [litellm_teams.SECTION_NOT_MAPPING]


def test_the_cli_export_says_tokens_are_not_exported(teams):
    token_create(name="search-ci", team=Team.objects.get(name="search"), actor="t")
    out, err = io.StringIO(), io.StringIO()
    call_command("routing", "export", stdout=out, stderr=err)
    assert "routing_admin:" in out.getvalue() and "search-ci" not in out.getvalue()
    assert "Not exported: 1 access token(s)" in err.getvalue()
    assert Provider.objects.exists() and RoutingGroup.objects.exists()
