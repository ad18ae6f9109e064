"""LiteLLM proxy config.yaml: export, import, round trip, CLI and dashboard."""

import io
import os
import re
import stat

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from providers import services
from providers.models import (
    AuditEvent,
    DefaultModel,
    Deployment,
    GroupFallback,
    Provider,
    RouterSettings,
    RoutingGroup,
)
from providers.routing.llm import litellm
from providers.services import DeploymentSpec as D
from tests.conftest import SECRET, error_summary

HEADER_SECRET = "org-" + "Z9y8X7w6V5u4T3s2"
AZURE_SECRET = "az-" + "Q1w2E3r4T5y6U7i8O9p0"
GEMINI_SECRET = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
HI = [{"role": "user", "content": "hi"}]


def _resolve(value, env):
    """os.environ/NAME references replaced, as the LiteLLM proxy does when it loads a file."""
    if isinstance(value, dict):
        return {k: _resolve(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, env) for v in value]
    if isinstance(value, str) and value.startswith("os.environ/"):
        return env[value.removeprefix("os.environ/")]
    return value


def _export(include_secrets=False):
    config, env = services.export_config(include_secrets=include_secrets)
    return services.render_yaml(config), env


def _counts():
    models = (Provider, RoutingGroup, Deployment, GroupFallback, RouterSettings, DefaultModel)
    return {m.__name__: m.objects.count() for m in (*models, AuditEvent)}


def _wipe():
    for model in (DefaultModel, GroupFallback, Deployment, RoutingGroup, Provider, RouterSettings):
        model.objects.all().delete()


def _import(text, env, dry_run=False):
    return services.import_config(
        data=services.parse_yaml(text), environ=env, dry_run=dry_run, actor="test"
    )


def routing(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("routing", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def team(upstream_factory, make_provider):
    """Four enabled providers of different kinds, a disabled one, two groups with a
    fallback, changed router settings."""
    a, b = upstream_factory("a"), upstream_factory("b")
    make_provider(
        name="acme",
        base_url=a.base_url + "/v1",
        headers={"X-Org": HEADER_SECRET},
        timeout=20.0,
        max_retries=1,
    )
    make_provider(name="local", kind="ollama", base_url=b.base_url, api_key="")
    make_provider(
        name="azure-eu",
        kind="azure",
        base_url=a.base_url,
        api_key=AZURE_SECRET,
        api_version="2024-10-21",
    )
    make_provider(name="gem", kind="gemini", api_key=GEMINI_SECRET)  # the default base URL
    make_provider(name="off", kind="openai_compatible", base_url=a.base_url + "/v9", api_key="")
    services.provider_update(provider=Provider.objects.get(name="off"), enabled=False)
    services.group_save(
        name="fast", deployments=[D("acme", "small", weight=3, rpm=100), D("local", "llama3.2")]
    )
    services.group_save(
        name="quality",
        deployments=[D("azure-eu", "gpt-4o", tpm=1000, timeout=45.0)],
        fallbacks=["fast"],
    )
    services.router_settings_update(num_retries=1, cooldown_time=10.0, allowed_fails=5)
    return a, b


# --- Export ----------------------------------------------------------------------------


def test_exported_file_drives_a_litellm_router_and_the_keys_arrive(team):
    a, b = team
    services.default_model_set(provider=Provider.objects.get(name="acme"), model="gpt-4o-mini")
    text, env = _export(include_secrets=True)
    config = _resolve(yaml.safe_load(text), services.parse_env(services.render_env(env)))
    router = litellm().Router(model_list=config["model_list"], **config["router_settings"])

    router.completion(model="acme/any-model", messages=HI)
    assert a.last.json()["model"] == "any-model"
    assert a.last.headers["authorization"] == f"Bearer {SECRET}"
    assert a.last.headers["x-org"] == HEADER_SECRET

    router.completion(model="default", messages=HI)
    assert a.last.json()["model"] == "gpt-4o-mini"

    router.completion(model="quality", messages=HI)
    assert a.last.path == "/openai/deployments/gpt-4o/chat/completions"
    assert a.last.headers["api-key"] == AZURE_SECRET

    response = router.completion(model="local/llama3.2", messages=HI)
    assert response.choices[0].message.content == "Hello from b"
    assert b.last.path == "/api/chat" and b.last.json()["model"] == "llama3.2"


def test_a_default_group_is_a_model_group_alias(team):
    services.default_model_set(group=RoutingGroup.objects.get(name="quality"))
    config = yaml.safe_load(_export()[0])
    assert config["router_settings"]["model_group_alias"] == {"default": "quality"}
    assert "default" not in [e["model_name"] for e in config["model_list"]]


def test_the_yaml_shape(team):
    config = yaml.safe_load(_export()[0])
    names = [e["model_name"] for e in config["model_list"]]
    assert names == ["acme/*", "azure-eu/*", "gem/*", "local/*", "fast", "fast", "quality"]
    acme, _, gem, local, fast_acme, fast_local, quality = config["model_list"]
    assert gem["litellm_params"]["api_base"] == "https://generativelanguage.googleapis.com/v1beta"
    assert acme["litellm_params"]["api_key"] == "os.environ/ACME_API_KEY"
    assert acme["litellm_params"]["extra_headers"] == {"X-Org": "os.environ/ACME_HEADER_X_ORG"}
    assert acme["model_info"] == {"provider": "acme", "kind": "openai"}
    assert "api_key" not in local["litellm_params"]  # no key, and no placeholder either
    assert fast_acme["litellm_params"] | {"api_base": "?"} == {
        "model": "openai/small",
        "api_base": "?",
        "api_key": "os.environ/ACME_API_KEY",
        "timeout": 20.0,
        "max_retries": 0,
        "extra_headers": {"X-Org": "os.environ/ACME_HEADER_X_ORG"},
        "weight": 3,
        "rpm": 100,
    }
    assert fast_local["litellm_params"]["model"] == "ollama_chat/llama3.2"
    assert quality["litellm_params"]["timeout"] == 45.0
    assert quality["litellm_params"]["api_version"] == "2024-10-21"
    assert config["router_settings"] == {
        "routing_strategy": "simple-shuffle",
        "num_retries": 1,
        "timeout": 600.0,
        "cooldown_time": 10.0,
        "allowed_fails": 5,
        "fallbacks": [{"quality": ["fast"]}],
    }


def test_export_of_an_empty_configuration(db):
    config = yaml.safe_load(_export()[0])
    assert config["model_list"] == []
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"


def test_secrets_never_in_the_yaml_env_file_is_private(team, tmp_path):
    path = tmp_path / "secrets.env"
    out, err = routing("export", "--env-file", str(path))
    for secret in (SECRET, HEADER_SECRET, AZURE_SECRET, GEMINI_SECRET):
        assert secret not in out and secret not in err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    env = services.parse_env(path.read_text())
    assert env == {
        "ACME_API_KEY": SECRET,
        "ACME_HEADER_X_ORG": HEADER_SECRET,
        "AZURE_EU_API_KEY": AZURE_SECRET,
        "GEM_API_KEY": GEMINI_SECRET,
    }
    assert "Wrote 4 secret value(s)" in err and "off" in err  # the disabled provider


def test_env_file_never_widens_permissions(team, tmp_path):
    shared = tmp_path / "shared.env"
    shared.write_text("OLD=1\n")
    shared.chmod(0o644)
    with pytest.raises(CommandError, match="readable by others"):
        routing("export", "--env-file", str(shared))
    assert shared.read_text() == "OLD=1\n"
    private = tmp_path / "private.env"
    private.write_text("OLD=1\n" * 100)
    private.chmod(0o600)
    routing("export", "--env-file", str(private))
    assert "OLD" not in private.read_text() and SECRET in private.read_text()
    link = tmp_path / "link.env"
    link.symlink_to(private)
    with pytest.raises(CommandError):
        routing("export", "--env-file", str(link))


def test_cli_export_prints_yaml_only(team):
    out, err = routing("export")
    config = yaml.safe_load(out)
    assert config["model_list"] and config["router_settings"]
    assert "Not exported (disabled): off." in err
    assert "Not exported" not in out


def test_env_values_with_special_characters_survive(tmp_path):
    env = {"A": "plain-value", "B": "has 'quote' and \\ and $HOME and # hash", "C": ""}
    assert services.parse_env(services.render_env(env)) == env


# --- Import ----------------------------------------------------------------------------


@pytest.mark.parametrize("default", ["group", "model"])
def test_round_trip_into_an_empty_database_gives_the_same_file(team, default):
    if default == "group":
        services.default_model_set(group=RoutingGroup.objects.get(name="quality"))
    else:
        # The model a group deployment uses too: the two entries share dicts.
        services.default_model_set(provider=Provider.objects.get(name="acme"), model="small")
    text, env = _export(include_secrets=True)
    assert "&id" not in text
    env = services.parse_env(services.render_env(env))
    _wipe()

    report = _import(text, env)
    assert report.ok, report.errors
    assert _export()[0] == text
    assert Provider.objects.get(name="acme").get_headers() == {"X-Org": HEADER_SECRET}
    assert Provider.objects.get(name="gem").base_url == ""  # still the kind's default

    before = _counts()
    again = _import(text, env)
    assert again.ok and not again.created and not again.updated
    assert "group fast" in again.unchanged and "provider acme" in again.unchanged
    assert _counts() == before  # not even an audit event


def test_drop_params_travel_in_the_export_and_back(team):
    # The provider's switch rides on its entries, the group's on the group's deployments.
    services.provider_update(provider=Provider.objects.get(name="acme"), drop_params=True)
    quality = RoutingGroup.objects.get(name="quality")
    services.group_save(
        name="quality",
        deployments=[D("azure-eu", "gpt-4o", tpm=1000, timeout=45.0)],
        fallbacks=["fast"],
        drop_params=True,
        group=quality,
    )
    text, env = _export(include_secrets=True)
    dropping = {
        (item["model_name"], item["model_info"]["provider"])
        for item in yaml.safe_load(text)["model_list"]
        if item["litellm_params"].get("drop_params") is True
    }
    assert dropping == {("acme/*", "acme"), ("fast", "acme"), ("quality", "azure-eu")}
    _wipe()

    report = _import(text, services.parse_env(services.render_env(env)))
    assert report.ok, report.errors
    dropped = dict(Provider.objects.values_list("name", "drop_params"))
    assert dropped == {"acme": True, "local": False, "azure-eu": False, "gem": False}
    groups = dict(RoutingGroup.objects.values_list("name", "drop_params"))
    assert groups == {"fast": False, "quality": True}
    assert _export()[0] == text


@pytest.mark.parametrize("value, ok", [(True, True), (False, True), ("yes", False)])
def test_a_config_with_litellms_drop_params_is_imported(db, value, ok):
    from providers.importexport.litellm_read import NOT_A_BOOLEAN

    params = {"model": "groq/llama-3.3-70b", "api_key": "os.environ/GROQ_KEY"}
    entry = {"model_name": "groq/llama-3.3-70b", "litellm_params": {**params, "drop_params": value}}
    report = _import(yaml.safe_dump({"model_list": [entry]}), {"GROQ_KEY": SECRET})
    if ok:
        assert report.ok, report.errors
        assert Provider.objects.get(name="groq").drop_params is value
    else:
        assert report.errors == [
            f"Entry 1 (groq/llama-3.3-70b): {NOT_A_BOOLEAN.format(key='drop_params')}"
        ]
        assert not Provider.objects.exists()


def test_dry_run_changes_nothing(team):
    text, env = _export(include_secrets=True)
    _wipe()
    before = _counts()
    report = _import(text, env, dry_run=True)
    assert report.ok, report.errors
    assert "provider acme (openai)" in report.created
    assert any(item.startswith("group quality") for item in report.created)
    assert _counts() == before


def test_an_invalid_entry_imports_nothing(make_provider):
    text = """
model_list:
  - model_name: fast
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/OK_KEY}
  - model_name: metadata
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://169.254.169.254/v1
      api_key: os.environ/OK_KEY
"""
    before = _counts()
    report = _import(text, {"OK_KEY": SECRET})
    assert len(report.errors) == 1
    assert "Entry 2 (metadata)" in report.errors[0] and "metadata" in report.errors[0].lower()
    assert SECRET not in str(report)
    assert _counts() == before


def test_a_missing_variable_is_an_error_for_that_entry(db):
    text = """
model_list:
  - model_name: fast
    litellm_params: {model: groq/llama-3.3-70b-versatile, api_key: os.environ/GROQ_KEY}
"""
    report = _import(text, {})
    assert report.errors == [
        "Entry 1 (fast): environment variable GROQ_KEY is not set (the file reads "
        "litellm_params.api_key from it)."
    ]
    assert not Provider.objects.exists()


def test_entries_with_the_same_connection_share_one_provider(local_upstreams, db):
    text = """
model_list:
  - model_name: fast
    litellm_params: {model: openai/small, api_base: "http://127.0.0.1:8001/v1", api_key: k-one}
  - model_name: quality
    litellm_params: {model: openai/big, api_base: "http://127.0.0.1:8001/v1/", api_key: k-one}
  - model_name: quality
    litellm_params: {model: openai/big, api_base: "http://127.0.0.1:8001/v1", api_key: k-two}
  - model_name: local
    litellm_params: {model: hosted_vllm/meta-llama/Llama-3.1-8B-Instruct}
  - model_name: local
    litellm_params: {model: "ollama/llama3.2"}
  - model_name: remote
    litellm_params: {model: together_ai/some/model, api_key: os.environ/T}
"""
    report = _import(text, {"T": "together-key"})
    assert report.ok, report.errors
    kinds = dict(Provider.objects.values_list("name", "kind"))
    assert kinds == {
        "openai-compatible-127-0-0-1": "openai_compatible",
        "openai-compatible-127-0-0-1-2": "openai_compatible",
        "vllm": "vllm",
        "ollama": "ollama",
        "together": "together",
    }
    fast, quality = RoutingGroup.objects.get(name="fast"), RoutingGroup.objects.get(name="quality")
    assert [str(d) for d in fast.deployments.all()] == ["openai-compatible-127-0-0-1/small"]
    assert [str(d) for d in quality.deployments.all()] == [
        "openai-compatible-127-0-0-1/big",
        "openai-compatible-127-0-0-1-2/big",
    ]
    # Importing again finds the same providers by their connection, not by name.
    again = _import(text, {"T": "together-key"})
    assert again.ok and not again.created and not again.updated


def test_reimport_updates_what_changed(team):
    text, env = _export(include_secrets=True)
    services.group_save(
        name="fast",
        group=RoutingGroup.objects.get(name="fast"),
        deployments=[D("acme", "other")],
        description="kept",
    )
    acme = Provider.objects.get(name="acme")
    services.provider_update(provider=acme, api_key="sk-other-" + "0123456789abcdef", timeout=3.0)
    report = _import(text, env)
    assert report.ok, report.errors
    assert report.updated == [
        "provider acme (key, timeout)",
        "group fast (acme/small, local/llama3.2)",
    ]
    assert Provider.objects.get(name="acme").get_api_key() == SECRET
    assert RoutingGroup.objects.get(name="fast").description == "kept"
    assert _export()[0] == text


def test_one_provider_name_with_two_keys_is_an_error(db):
    text = """
model_list:
  - model_name: fast
    litellm_params: {model: openai/a, api_key: key-one}
    model_info: {provider: acme}
  - model_name: slow
    litellm_params: {model: openai/b, api_key: key-two}
    model_info: {provider: acme}
"""
    report = _import(text, {})
    assert report.errors == [
        "Entry 2 (slow): provider 'acme' gets different settings (key) than in Entry 1 (fast); "
        "one provider has one base URL, key, API version, headers, timeout and retry count."
    ]
    assert "key-one" not in str(report) and "key-two" not in str(report)
    assert not Provider.objects.exists()


def test_unsupported_settings_are_reported_one_by_one(db):
    text = """
model_list:
  - model_name: gpt-4.1
    litellm_params: {model: openai/gpt-4.1, api_key: os.environ/K}
  - model_name: fast
    litellm_params: {model: bedrock/claude, aws_region_name: eu-west-1, aws_profile_name: x}
  - model_name: fast
    litellm_params: {model: mystery/model}
router_settings:
  redis_host: localhost
general_settings:
  master_key: sk-1234
"""
    report = _import(text, {"K": SECRET})
    assert any(
        e.startswith("Entry 2 (fast): litellm_params aws_profile_name") for e in report.errors
    )
    assert any(
        e.startswith("Entry 3 (fast): litellm_params.model 'mystery/model'") for e in report.errors
    )
    assert any("redis_host" in e for e in report.errors)
    assert any(
        e.startswith("Entry 1 (gpt-4.1): model_name 'gpt-4.1' cannot") for e in report.errors
    )
    assert "Ignored the 'general_settings' section" in report.warnings[0]
    assert not Provider.objects.exists()


def test_cli_import_dry_run_then_import(team, tmp_path, monkeypatch):
    env_path = tmp_path / "s.env"
    out, _ = routing("export", "--env-file", str(env_path))
    config = tmp_path / "config.yaml"
    config.write_text(out)
    _wipe()
    for name, value in services.parse_env(env_path.read_text()).items():
        monkeypatch.setenv(name, value)

    dry, _ = routing("import-litellm", str(config), "--dry-run")
    assert "create     provider acme (openai)" in dry and "nothing was changed" in dry
    assert not Provider.objects.exists()

    done, _ = routing("import-litellm", str(config))
    assert "Imported: 6 created, 1 updated." in done  # 4 providers, 2 groups; router settings
    assert set(Provider.objects.values_list("name", flat=True)) == {
        "acme",
        "azure-eu",
        "gem",
        "local",
    }


def test_cli_import_fails_whole_and_never_prints_a_key(db, tmp_path, monkeypatch):
    monkeypatch.setenv("BAD_KEY", SECRET)
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: fast\n"
        "    litellm_params: {model: openai/m, api_base: 'http://169.254.169.254', "
        "api_key: os.environ/BAD_KEY}\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="Nothing imported: 1 problem") as raised:
        call_command("routing", "import-litellm", str(config), stdout=out, stderr=err)
    assert raised.value.returncode == 1
    assert "Entry 1 (fast)" in err.getvalue()
    assert SECRET not in out.getvalue() + err.getvalue() + str(raised.value)
    assert not Provider.objects.exists()


def test_cli_import_of_broken_yaml_does_not_quote_the_file(db, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"model_list:\n  - api_key: {SECRET}: oops\n")
    with pytest.raises(CommandError, match="not valid YAML") as raised:
        routing("import-litellm", str(config))
    assert SECRET not in str(raised.value)


# --- Dashboard -------------------------------------------------------------------------


def test_editor_downloads_the_export(team, client, login_as):
    login_as("editor")
    response = client.get(reverse("config_export"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="routing-config.yaml"'
    body = response.content.decode()
    assert yaml.safe_load(body)["model_list"]
    assert "os.environ/ACME_API_KEY" in body
    for secret in (SECRET, HEADER_SECRET, AZURE_SECRET, GEMINI_SECRET):
        assert secret not in body


def test_viewers_may_neither_export_nor_import(client, login_as):
    login_as("viewer")
    assert client.get(reverse("config_export")).status_code == 403
    assert client.get(reverse("config_import")).status_code == 403
    assert client.post(reverse("config_import")).status_code == 403


def _upload(client, text, env_text="", **extra):
    data = {"config": SimpleUploadedFile("config.yaml", text.encode()), "environment": env_text}
    return client.post(reverse("config_import"), {**data, **extra})


def test_preview_shows_the_plan_and_changes_nothing_then_import_applies(team, client, login_as):
    text, env = _export(include_secrets=True)
    _wipe()
    login_as("editor")
    before = _counts()
    preview = _upload(client, text, services.render_env(env))
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Preview" in html and "provider acme (openai)" in html and "group quality" in html
    for secret in (SECRET, HEADER_SECRET, AZURE_SECRET, GEMINI_SECRET):
        assert secret not in html
    assert _counts() == before

    preview_id = preview.context["preview"]
    applied = client.post(reverse("config_import"), {"preview": preview_id})
    assert applied.status_code == 302 and applied["Location"] == reverse("overview")
    assert Provider.objects.get(name="acme").get_api_key() == SECRET
    assert AuditEvent.objects.filter(actor_name="editor", action="group.create").count() == 2
    assert _export()[0] == text


def test_preview_lists_problems_and_offers_no_import(client, login_as):
    login_as("editor")
    text = (
        "model_list:\n  - model_name: fast\n"
        "    litellm_params: {model: openai/m, api_key: os.environ/K}\n"
    )
    response = _upload(client, text)
    html = response.content.decode()
    assert "environment variable K is not set" in html
    assert "preview" not in response.context
    not_yaml = _upload(client, "model_list: [")
    assert "not valid YAML" in not_yaml.content.decode()


def test_env_values_come_from_the_upload_only(client, login_as, monkeypatch):
    # The server's own environment must not fill references: an editor could otherwise send
    # the server's secrets to a host of their choosing.
    monkeypatch.setenv("SERVER_ONLY", "server-secret")
    login_as("editor")
    text = (
        "model_list:\n  - model_name: fast\n"
        "    litellm_params: {model: openai/m, api_key: os.environ/SERVER_ONLY}\n"
    )
    assert "SERVER_ONLY is not set" in _upload(client, text).content.decode()
    assert services.parse_env("SERVER_ONLY=${SECRET_KEY}") == {"SERVER_ONLY": "${SECRET_KEY}"}


def test_a_token_from_another_user_is_refused(team, client, login_as):
    text, env = _export(include_secrets=True)
    _wipe()
    login_as("editor")
    preview_id = _upload(client, text, services.render_env(env)).context["preview"]
    login_as("editor", username="other")
    response = client.post(reverse("config_import"), {"preview": preview_id}, follow=True)
    assert "expired" in response.content.decode()
    assert not Provider.objects.exists()


def test_the_upload_form_lists_every_problem_in_the_error_summary(client, login_as):
    from providers import forms

    login_as("editor")
    page = client.get(reverse("config_import")).content.decode()
    form = re.search(r'<form[^>]*enctype="multipart/form-data"[^>]*>', page)[0]
    assert "novalidate" not in form
    config = re.search(r'<input[^>]*name="config"[^>]*>', page)[0]
    assert "required" in config  # caught by the browser before the round trip
    missing = client.post(reverse("config_import"), {"environment": ""}).content.decode()
    missing = error_summary(missing)
    assert '<a href="#id_config">LiteLLM config file: This field is required.</a>' in missing
    # Both files unreadable: both said in one answer, each linking to its field.
    data = {
        "config": SimpleUploadedFile("config.yaml", b"\xff\xfe bad"),
        "env_file": SimpleUploadedFile(".env", b"\xff\xfe bad"),
    }
    summary = error_summary(client.post(reverse("config_import"), data).content.decode())
    assert f'<a href="#id_config">LiteLLM config file: {forms.UPLOAD_NOT_TEXT}</a>' in summary
    assert f'<a href="#id_env_file">Environment file: {forms.UPLOAD_NOT_TEXT}</a>' in summary
    assert not Provider.objects.exists()
