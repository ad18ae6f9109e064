"""os.environ/NAME references in a LiteLLM config never read this app's own settings."""

import io

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.html import escape

from providers import services
from providers.importexport.litellm_read import ENV_RESERVED
from providers.models import Provider
from tests.conftest import SECRET

SERVER_SECRET = "server-own-" + "s3cr3t-value-0123456789"


def _config(ref: str, where: str = "api_key") -> str:
    params = {"model": "groq/llama-3.3-70b-versatile"}
    if where == "api_key":
        params["api_key"] = f"os.environ/{ref}"
    else:
        params["api_key"] = "os.environ/GROQ_API_KEY"
        params["extra_headers"] = {"X-Org": f"os.environ/{ref}"}
    return yaml.safe_dump({"model_list": [{"model_name": "fast", "litellm_params": params}]})


RESERVED = ["SECRET_KEY", "DATABASE_URL", "ROUTING_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE"]


@pytest.mark.parametrize("var", RESERVED)
def test_the_cli_refuses_a_reference_to_the_apps_own_settings(db, tmp_path, monkeypatch, var):
    monkeypatch.setenv(var, SERVER_SECRET)
    config = tmp_path / "config.yaml"
    config.write_text(_config(var))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="Nothing imported: 1 problem"):
        call_command("routing", "import-litellm", str(config), stdout=out, stderr=err)
    expected = ENV_RESERVED.format(var=var, where="litellm_params.api_key")
    assert err.getvalue().strip() == f"Entry 1 (fast): {expected}"
    assert SERVER_SECRET not in out.getvalue() + err.getvalue()
    assert not Provider.objects.exists()


def test_a_header_reference_is_refused_too(db, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", SERVER_SECRET)
    report = services.import_config(
        data=services.parse_yaml(_config("SECRET_KEY", where="header")),
        environ={"GROQ_API_KEY": SECRET, "SECRET_KEY": SERVER_SECRET},
        dry_run=False,
        actor="test",
    )
    assert report.errors == [
        f"Entry 1 (fast): {ENV_RESERVED.format(var='SECRET_KEY', where='header X-Org')}"
    ]
    assert not Provider.objects.exists()


def test_the_dashboard_refuses_it_even_from_the_uploaded_environment(client, login_as):
    login_as("editor")
    data = {
        "config": SimpleUploadedFile("config.yaml", _config("ROUTING_ENCRYPTION_KEYS").encode()),
        "environment": f"ROUTING_ENCRYPTION_KEYS={SERVER_SECRET}\n",
    }
    response = client.post(reverse("config_import"), data)
    html = response.content.decode()
    message = ENV_RESERVED.format(var="ROUTING_ENCRYPTION_KEYS", where="litellm_params.api_key")
    assert escape(f"Entry 1 (fast): {message}") in html
    assert "preview" not in response.context and SERVER_SECRET not in html


def test_an_ordinary_variable_still_resolves(db, tmp_path, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    config = tmp_path / "config.yaml"
    config.write_text(_config("GROQ_API_KEY"))
    call_command("routing", "import-litellm", str(config), stdout=io.StringIO())
    assert Provider.objects.get().get_api_key() == SECRET


def test_the_export_never_writes_a_reserved_name(make_provider):
    # A provider named "routing" would otherwise export ROUTING_API_KEY, which the import
    # refuses: the export's own files must import again.
    make_provider(name="routing", kind="groq")
    make_provider(name="django", kind="groq", api_key=SECRET + "2")
    config, env = services.export_config(include_secrets=True)
    refs = {e["litellm_params"]["api_key"] for e in config["model_list"]}
    assert refs == {"os.environ/_ROUTING_API_KEY", "os.environ/_DJANGO_API_KEY"}
    Provider.objects.all().delete()
    report = services.import_config(data=config, environ=env, dry_run=False, actor="test")
    assert report.ok, report.errors
    assert Provider.objects.get(name="routing").get_api_key() == SECRET


def test_a_display_name_goes_through_the_export_and_back(make_provider):
    make_provider(name="together", kind="together", display_name="Together (Acme)")
    config, env = services.export_config(include_secrets=True)
    (entry,) = config["model_list"]
    assert entry["model_info"] == {
        "provider": "together",
        "kind": "together",
        "display_name": "Together (Acme)",
    }
    Provider.objects.all().delete()
    report = services.import_config(data=config, environ=env, dry_run=False, actor="test")
    assert report.ok and not report.warnings
    assert Provider.objects.get().display_name == "Together (Acme)"

    entry["model_info"]["display_name"] = "Together"
    report = services.import_config(data=config, environ=env, dry_run=False, actor="test")
    assert report.updated == ["provider together (display name)"]
    assert Provider.objects.get().display_name == "Together"
