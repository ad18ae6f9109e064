"""Import from .env: one file per convention the seed projects use, and what it becomes."""

import ipaddress
import socket
from pathlib import Path

import pytest
from dotenv import dotenv_values

from providers import addresses
from providers.importexport.env_default import DEFAULTS_AMBIGUOUS, PREFERRED_NO_MODEL
from providers.importexport.env_file import ENABLED_INVALID, NAME_UNUSABLE, TIMEOUT_INVALID
from providers.importexport.env_import import SKIPPED, UNCHANGED, import_env
from providers.models import AuditEvent, DefaultModel, Provider
from providers.validators import provider_name_from

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "env" / "conventions"
PUBLIC_HOSTS = {"api.together.xyz", "llm.acme-corp.com", "openrouter.ai"}

TOGETHER_MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
PREFERRED_PROVIDERS = {
    "openrouter": ("openrouter", "", True),
    "acme-llm": ("openai_compatible", "Acme LLM", True),
    "ollama": ("ollama", "", True),
}

# file: ({name: (kind, display name, enabled)}, the active default afterwards)
CONVENTIONS = {
    "display_name.env": (
        {"together": ("openai_compatible", "Together", True)},
        f"together/{TOGETHER_MODEL}",
    ),
    "disabled_with_settings.env": (
        {"custom-provider": ("openai_compatible", "Custom Provider", False)},
        None,
    ),
    "preferred_openrouter.env": (PREFERRED_PROVIDERS, "openrouter/anthropic/claude-3.5-sonnet"),
    "preferred_openai_compatible.env": (PREFERRED_PROVIDERS, "acme-llm/acme-chat-large"),
    "preferred_ollama.env": (PREFERRED_PROVIDERS, "ollama/llama3.1:8b"),
    "compat_base_url.env": (
        {"together": ("openai_compatible", "", True)},
        f"together/{TOGETHER_MODEL}",
    ),
    "default_openai_compat.env": (
        {"together": ("openai_compatible", "", True)},
        f"together/{TOGETHER_MODEL}",
    ),
    "default_openai_compatible_colon.env": (
        {"llm": ("openai_compatible", "", True)},
        "llm/acme-chat-large",
    ),
    "lm_studio.env": (
        {"lm_studio": ("lm_studio", "", True)},
        "lm_studio/qwen2.5-7b-instruct",
    ),
    "vllm.env": ({"vllm": ("vllm", "", True)}, "vllm/meta-llama/Llama-3.1-8B-Instruct"),
    "ollama_v1.env": ({"ollama": ("ollama", "", True)}, "ollama/llama3.1:8b"),
    "default_litellm_vendor.env": (
        {"openrouter": ("openrouter", "", True)},
        "openrouter/anthropic/claude-3.5-sonnet",
    ),
}


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """Known public names resolve to a public address; anything else does not resolve."""

    def resolve(host):
        if host not in PUBLIC_HOSTS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address("93.184.216.34")]

    monkeypatch.setattr(addresses, "resolve_host", resolve)


def run(name: str, dry_run=False):
    text = name if "=" in name else (FIXTURES / name).read_text()
    return import_env(text=text, dry_run=dry_run, actor="test")


def test_every_convention_has_its_fixture():
    assert sorted(p.name for p in FIXTURES.glob("*.env")) == sorted(CONVENTIONS)


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_each_convention_imports_whole(db, name):
    expected, default = CONVENTIONS[name]
    report = run(name)

    assert not report.of(SKIPPED), report.rows
    found = {p.name: (p.kind, p.display_name, p.enabled) for p in Provider.objects.all()}
    assert found == expected
    current = DefaultModel.objects.filter(id=1).first()
    assert (str(current) if current else None) == default
    # Understood, not ignored: every variable of the file is read.
    file_vars = set(dotenv_values(FIXTURES / name))
    assert not file_vars & {var for var, _ in report.ignored}, report.ignored


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_each_convention_imported_again_changes_nothing(db, name):
    run(name)
    events = AuditEvent.objects.count()
    report = run(name)
    assert {row.action for row in report.rows} == {UNCHANGED}
    assert AuditEvent.objects.count() == events


def test_a_disabled_provider_keeps_its_timeout_and_retries(db):
    run("disabled_with_settings.env")
    p = Provider.objects.get(name="custom-provider")
    assert (p.enabled, p.timeout, p.max_retries) == (False, 45.0, 3)
    assert p.title == "Custom Provider"
    created = AuditEvent.objects.get(action="provider.create", target="custom-provider")
    assert created.changes["display_name"] == [None, "Custom Provider"]


def test_ollama_given_with_v1_is_stored_as_the_server(db):
    run("ollama_v1.env")
    p = Provider.objects.get(name="ollama")
    assert p.effective_base_url == "http://localhost:11434"


def test_lm_studio_and_vllm_get_their_keys(db):
    run("lm_studio.env")
    run("vllm.env")
    assert Provider.objects.get(name="lm_studio").get_api_key() == "lmstudio-FAKE0123456789abcdef"
    assert Provider.objects.get(name="vllm").get_api_key() == "token-FAKE0123456789abcdef"


def test_a_changed_display_name_is_reported_and_applied(db):
    run("display_name.env")
    text = (FIXTURES / "display_name.env").read_text().replace("=Together", "=TOGETHER")
    report = run(text)
    (row,) = [r for r in report.rows if r.subject.startswith("provider")]
    assert row.detail == "display name"
    assert Provider.objects.get(name="together").display_name == "TOGETHER"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("OPENAI_COMPATIBLE_PROVIDER_NAME=!!!", NAME_UNUSABLE),
        ("OPENAI_COMPATIBLE_ENABLED=maybe", ENABLED_INVALID),
        ("OPENAI_COMPATIBLE_TIMEOUT=a minute", TIMEOUT_INVALID),
    ],
)
def test_a_bad_setting_skips_its_provider_naming_the_variable(db, line, message):
    text = (
        "OPENAI_COMPATIBLE_BASE_URL=https://llm.acme-corp.com/v1\n"
        "GROQ_API_KEY=gsk_FAKE0123456789abcdef\n"
        f"{line}\n"
    )
    report = run(text)
    (row,) = report.of(SKIPPED)
    assert row.detail == message.format(var=line.partition("=")[0])
    assert list(Provider.objects.values_list("name", flat=True)) == ["groq"]


def test_preferred_provider_without_its_default_model_says_what_to_set(db):
    report = run(
        "PREFERRED_PROVIDER=ollama\nOLLAMA_HOST=127.0.0.1:11434\n"
        "OPENROUTER_API_KEY=sk-or-v1-FAKE0123456789abcdef0123456789abcdef\n"
    )
    (row,) = report.of(SKIPPED)
    assert row.detail == PREFERRED_NO_MODEL.format(
        var="PREFERRED_PROVIDER",
        called="ollama (from OLLAMA_HOST)",
        model_vars="OLLAMA_DEFAULT_MODEL or OLLAMA_MODEL",
        default_var="DEFAULT_MODEL",
    )
    assert not DefaultModel.objects.exists()


def test_several_default_models_without_a_preference_set_none(db):
    text = (FIXTURES / "preferred_ollama.env").read_text().replace("PREFERRED_PROVIDER=", "#")
    report = run(text)
    (row,) = report.of(SKIPPED)
    assert row.detail.startswith(DEFAULTS_AMBIGUOUS.split("(")[0])
    assert not DefaultModel.objects.exists()


def test_default_model_wins_over_preferred_provider(db):
    text = (FIXTURES / "preferred_ollama.env").read_text() + "DEFAULT_MODEL=ollama/qwen3:4b\n"
    report = run(text)
    assert str(DefaultModel.objects.get(id=1)) == "ollama/qwen3:4b"
    assert ("PREFERRED_PROVIDER", "DEFAULT_MODEL is used instead") in report.ignored


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Together", "together"),
        ("Custom Provider", "custom-provider"),
        ("  Acme LLM (EU)  ", "acme-llm-eu"),
        ("Café Ünïcode", "cafe-unicode"),
        ("api.example.com", "api-example-com"),
        ("my_provider", "my_provider"),
        ("???", ""),
    ],
)
def test_the_address_name_a_display_name_gives(text, name):
    assert provider_name_from(text) == name
