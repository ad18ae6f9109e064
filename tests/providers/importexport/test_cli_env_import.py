"""`routing import-env FILE [--dry-run]`."""

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from providers import services
from providers.models import AuditEvent, Provider
from tests.providers.importexport.test_env_import import (  # noqa: F401 - dns is a fixture
    FIXTURES,
    dns,
    secrets_in,
)


def routing(*args, stdin: str | None = None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("routing", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def test_dry_run_prints_the_plan_and_changes_nothing(db):
    out, err = routing("import-env", fixture("project.env"), "--dry-run")

    assert out.splitlines() == [
        "create     provider openai (OpenAI): OpenAI, https://api.openai.com/v1, key sk-…sTuV",
        "create     provider anthropic (Anthropic): Anthropic, https://api.anthropic.com, "
        "key sk-…4Tt3",
        "create     provider gemini (Google Gemini (AI Studio)): Google Gemini (AI Studio), "
        "https://generativelanguage.googleapis.com, key AIz…nopq",
        "create     default model openai/gpt-4o-mini",
        "ignored    DATABASE_URL (not a variable this import knows)",
        "ignored    DEBUG (not a variable this import knows)",
        "ignored    GOOGLE_API_KEY (GEMINI_API_KEY is used instead)",
        "Dry run, nothing was changed: 4 created, 0 changed, 0 unchanged, 0 skipped.",
    ]
    assert err == ""
    assert Provider.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_import_then_reimport_is_a_no_op(db):
    out, _ = routing("import-env", fixture("litellm.env"))
    assert out.endswith("Imported: 8 created, 0 changed, 0 unchanged, 0 skipped.\n")
    events = AuditEvent.objects.count()

    out, _ = routing("import-env", fixture("litellm.env"))
    assert out.endswith("Imported: 0 created, 0 changed, 8 unchanged, 0 skipped.\n")
    assert "unchanged  provider contoso-eu (Azure OpenAI)" in out
    assert AuditEvent.objects.count() == events


def test_skipped_items_exit_1_the_rest_is_imported_and_no_key_is_printed(db):
    with pytest.raises(CommandError) as excinfo:
        routing("import-env", fixture("broken.env"))
    assert excinfo.value.returncode == 1
    assert "5 item(s) skipped, listed above; the rest was imported." in str(excinfo.value)
    assert list(Provider.objects.values_list("name", flat=True)) == ["groq"]

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):
        call_command("routing", "import-env", fixture("broken.env"), stdout=out, stderr=err)
    out, err = out.getvalue(), err.getvalue()
    assert "Warning: Line 3 is not NAME=value" in err
    assert (
        "skipped    OpenRouter (OPENROUTER_API_KEY, OPENROUTER_BASE_URL): OPENROUTER_BASE_URL: "
        in err
    )
    assert "unchanged  provider groq (Groq)" in out
    for secret in secrets_in("broken.env"):
        assert secret not in out and secret not in err, secret[:6]


def test_no_key_is_printed_for_any_fixture(db):
    for name in ("project.env", "litellm.env", "compatible.env", "openai_elsewhere.env"):
        out, err = routing("import-env", fixture(name))
        for secret in secrets_in(name):
            assert secret not in out and secret not in err, (name, secret[:6])


def test_the_default_follows_the_prefixs_variables_and_each_warning_is_printed_once(db):
    out, err = routing("import-env", fixture("openrouter_and_gateway.env"))

    assert "create     default model lab-gateway/acme/support-bot-v3" in out
    assert err.splitlines() == [
        "Warning: OPENAI_COMPATIBLE_BASE_URL: inference.lab.acme-corp.com could not be "
        "resolved right now; the URL was accepted and the address will be checked again when "
        "the app connects."
    ]
    for secret in secrets_in("openrouter_and_gateway.env"):
        assert secret not in out and secret not in err, secret[:6]


def test_reads_standard_input(db, monkeypatch):
    out, _ = routing(
        "import-env",
        "-",
        stdin="export GROQ_API_KEY=gsk_FAKE0123456789abcdef\n",
        monkeypatch=monkeypatch,
    )
    assert "create     provider groq (Groq)" in out
    assert Provider.objects.get(name="groq").get_api_key() == "gsk_FAKE0123456789abcdef"


def test_an_unreadable_file_is_one_line(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read .*missing.env: No such file"):
        routing("import-env", str(tmp_path / "missing.env"))
    binary = tmp_path / "binary.env"
    binary.write_bytes(b"\xff\xfe\x00OPENAI")
    with pytest.raises(CommandError, match="it is not UTF-8 text"):
        routing("import-env", str(binary))


def test_an_empty_file_says_so(db, tmp_path):
    path = Path(tmp_path / "empty.env")
    path.write_text("# nothing yet\n")
    out, _ = routing("import-env", str(path))
    assert "The file describes no provider this import knows." in out
    assert services.default_model_get() is None
