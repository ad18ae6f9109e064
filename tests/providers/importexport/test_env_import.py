"""Import from .env: what each convention becomes, skipped values, idempotence, the dashboard."""

import ipaddress
import re
import socket
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from dotenv import dotenv_values

from providers import addresses, services, validators
from providers.forms import UPLOAD_NOT_TEXT
from providers.forms_import import BOTH_GIVEN, NOTHING_GIVEN
from providers.importexport.env_default import DEFAULT_AMBIGUOUS
from providers.importexport.env_file import IGNORED_UNKNOWN
from providers.importexport.env_import import CHANGE, CREATE, SKIPPED, UNCHANGED, import_env
from providers.models import AuditEvent, ConfigState, DefaultModel, Provider
from providers.views import env_import as view
from tests.conftest import SECRET, error_summary

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "env"
PUBLIC_HOSTS = {
    "contoso-eu.openai.azure.com",
    "contoso-ai.services.ai.azure.com",
    "openrouter.ai",
    "llm.acme-corp.com",
    "api.together.xyz",
}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """Known public names resolve to a public address; anything else does not resolve."""

    def resolve(host):
        if host not in PUBLIC_HOSTS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address("93.184.216.34")]

    monkeypatch.setattr(addresses, "resolve_host", resolve)


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def secrets_in(name: str) -> list[str]:
    """Every key (and header value) a fixture holds, to prove none is ever shown."""
    values = dotenv_values(FIXTURES / name, interpolate=False)
    found = [v for k, v in values.items() if v and ("KEY" in k or "HEADERS" in k)]
    found += ["acme-research", "sk-FAKEunterminatedquote0123456789"]
    return found


def run(name_or_text: str, dry_run=False, **kwargs):
    body = text(name_or_text) if name_or_text.endswith(".env") else name_or_text
    return import_env(text=body, dry_run=dry_run, actor="test", **kwargs)


def rows(report, action=None):
    return [(r.action, r.subject) for r in report.rows if action in (None, r.action)]


def key_of(name: str) -> str:
    return Provider.objects.get(name=name).get_api_key()


# --- What each convention becomes ---------------------------------------------------------


def test_a_project_env_creates_its_providers_and_the_default(db):
    report = run("project.env")

    assert rows(report) == [
        (CREATE, "provider openai (OpenAI)"),
        (CREATE, "provider anthropic (Anthropic)"),
        (CREATE, "provider gemini (Google Gemini (AI Studio))"),
        (CREATE, "default model openai/gpt-4o-mini"),
    ]
    assert key_of("openai") == "sk-proj-FAKEa1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"
    assert key_of("anthropic") == "sk-ant-api03-FAKE-Zz9Yy8Xx7Ww6Vv5Uu4Tt3"
    assert key_of("gemini") == "AIzaSyFAKE0123456789abcdefghijklmnopq"  # GEMINI_ wins
    assert Provider.objects.get(name="openai").base_url == ""  # the kind's default
    assert str(services.default_model_get()) == "openai/gpt-4o-mini"
    assert dict(report.ignored) == {
        "DATABASE_URL": IGNORED_UNKNOWN,
        "DEBUG": IGNORED_UNKNOWN,
        "GOOGLE_API_KEY": "GEMINI_API_KEY is used instead",
    }
    assert report.rows[0].detail == "OpenAI, https://api.openai.com/v1, key sk-…sTuV"


def test_a_litellm_env_covers_azure_and_the_hosted_kinds(db):
    report = run("litellm.env")

    providers = {p.name: p for p in Provider.objects.all()}
    assert {name: p.kind for name, p in providers.items()} == {
        "contoso-eu": "azure",
        "contoso-ai": "azure_ai",
        "openrouter": "openrouter",
        "groq": "groq",
        "together": "together",
        "mistral": "mistral",
        "deepseek": "deepseek",
    }
    azure = providers["contoso-eu"]
    assert (azure.base_url, azure.api_version) == (
        "https://contoso-eu.openai.azure.com",
        "2024-10-21",
    )
    assert providers["openrouter"].base_url == ""  # OPENROUTER_BASE_URL is OpenRouter's own
    assert key_of("together") == "FAKEtogether0123456789abcdef0123456789ab"
    assert str(services.default_model_get()) == "contoso-eu/gpt-4o-eu"
    assert {var for var, _ in report.ignored} == {"LITELLM_MASTER_KEY", "LITELLM_LOG"}
    assert not report.of(SKIPPED)


def test_local_servers_get_a_scheme_and_this_machine_for_a_bind_all_address(db):
    run("local.env")

    ollama, lm_studio, vllm = (
        Provider.objects.get(kind=k) for k in ("ollama", "lm_studio", "vllm")
    )
    assert ollama.name == "ollama"
    assert ollama.base_url == "http://127.0.0.1:11434"  # from OLLAMA_HOST=0.0.0.0:11434
    assert lm_studio.base_url == "http://localhost:1234/v1"
    assert vllm.base_url == ""  # the kind's default
    assert vllm.get_api_key() == ""  # "EMPTY" is vLLM's placeholder, sent anyway
    assert str(services.default_model_get()) == "ollama/llama3.1:8b"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("localhost:11500", "http://localhost:11500"),
        ("http://[::]:11434", "http://[::1]:11434"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
    ],
)
def test_ollama_host_spellings(db, value, expected):
    run(f"OLLAMA_HOST={value}\n")
    assert Provider.objects.get(kind="ollama").effective_base_url == expected


def test_openai_variables_pointing_elsewhere_make_a_compatible_provider(db):
    run("openai_elsewhere.env")

    provider = Provider.objects.get()
    assert (provider.name, provider.kind) == ("openrouter", "openai_compatible")
    assert provider.base_url == "https://openrouter.ai/api/v1"
    assert str(services.default_model_get()) == "openrouter/anthropic/claude-3.5-sonnet"


def test_compatible_endpoints_named_by_the_file_or_by_their_host(db):
    run("compatible.env")

    acme, together = Provider.objects.get(name="acme-llm"), Provider.objects.get(name="together")
    assert acme.kind == together.kind == "openai_compatible"
    assert acme.get_headers() == {"X-Org-Id": "acme-research", "X-Team": "ml"}
    assert together.base_url == "https://api.together.xyz/v1"
    default = services.default_model_get()
    assert str(default) == "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"


def test_openai_compat_default_goes_to_the_compat_variables_provider(db):
    # OPENAI_BASE_URL elsewhere makes an OpenAI-compatible provider too, yet openai_compat/
    # means the OPENAI_COMPATIBLE_* one.
    report = run("openrouter_and_gateway.env")

    assert sorted(Provider.objects.values_list("name", "kind")) == [
        ("lab-gateway", "openai_compatible"),
        ("openrouter", "openai_compatible"),
    ]
    assert str(services.default_model_get()) == "lab-gateway/acme/support-bot-v3"
    assert (CREATE, "default model lab-gateway/acme/support-bot-v3") in rows(report)


def test_an_ambiguous_default_is_skipped_naming_the_candidates(db):
    # openai/ fits both endpoints equally (neither is OpenAI's own OPENAI_API_KEY).
    body = text("compatible.env").replace("DEFAULT_MODEL=openai_compat/", "DEFAULT_MODEL=openai/")
    report = run(body)

    (row,) = report.of(SKIPPED)
    assert row.subject == "default model"
    assert row.detail == DEFAULT_AMBIGUOUS.format(
        var="DEFAULT_MODEL",
        prefix="openai",
        candidates="together (from OPENAI_COMPAT_API_KEY, OPENAI_COMPAT_API_BASE) or acme-llm "
        "(from OPENAI_COMPATIBLE_API_KEY, OPENAI_COMPATIBLE_BASE_URL, "
        "OPENAI_COMPATIBLE_PROVIDER_NAME, OPENAI_COMPATIBLE_CUSTOM_HEADERS)",
    )
    assert Provider.objects.count() == 2 and DefaultModel.objects.count() == 0


def test_the_default_prefers_the_variables_named_after_its_prefix(db):
    body = text("compatible.env").replace(
        "DEFAULT_MODEL=openai_compat/", "DEFAULT_MODEL=openai_compatible/"
    )
    run(body)
    assert str(services.default_model_get()) == "acme-llm/meta-llama/Llama-3.3-70B-Instruct-Turbo"


def test_an_unresolvable_host_is_warned_about_once(db):
    report = run("openrouter_and_gateway.env")
    assert report.warnings == [
        "OPENAI_COMPATIBLE_BASE_URL: inference.lab.acme-corp.com could not be resolved right "
        "now; the URL was accepted and the address will be checked again when the app connects."
    ]


def test_the_imported_provider_answers_with_the_files_key_and_headers(
    upstream, local_upstreams, db
):
    env = (
        f"OPENAI_COMPATIBLE_BASE_URL={upstream.base_url}/v1\n"
        f"OPENAI_COMPATIBLE_API_KEY={SECRET}\n"
        'OPENAI_COMPATIBLE_CUSTOM_HEADERS={"X-Org-Id": "acme"}\n'
        "DEFAULT_MODEL=openai_compat/my-model\n"
    )
    run(env)

    services.completion(HI)
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.json()["model"] == "my-model"
    assert upstream.last.headers["authorization"] == f"Bearer {SECRET}"
    assert upstream.last.headers["x-org-id"] == "acme"


def test_no_interpolation_the_servers_environment_is_never_read(db, monkeypatch):
    monkeypatch.setenv("SERVER_ONLY_SECRET", "server-side-value")
    run("GROQ_API_KEY=${SERVER_ONLY_SECRET}\n")
    assert key_of("groq") == "${SERVER_ONLY_SECRET}"


# --- Skipped and ignored ---------------------------------------------------------------------


def test_a_broken_file_skips_what_is_wrong_and_keeps_the_rest(db):
    report = run("broken.env")

    assert [p.name for p in Provider.objects.all()] == ["groq"]
    assert key_of("groq") == "gsk_FAKEgoodkey0123456789abcdefABCDEF01"
    skipped = {r.subject: r.detail for r in report.of(SKIPPED)}
    compat = "OpenAI-compatible endpoint"
    assert skipped == {
        f"{compat} (OPENAI_API_KEY, OPENAI_BASE_URL)": (
            "OPENAI_BASE_URL: " + validators.ADDRESS_METADATA % {"address": "169.254.169.254"}
        ),
        "OpenRouter (OPENROUTER_API_KEY, OPENROUTER_BASE_URL)": (
            "OPENROUTER_BASE_URL: " + validators.ADDRESS_PRIVATE % {"address": "10.0.0.5"}
        ),
        f"{compat} (OPENAI_COMPAT_API_KEY, OPENAI_COMPAT_API_BASE)": (
            "OPENAI_COMPAT_API_BASE: " + validators.ADDRESS_LOOPBACK % {"address": "localhost"}
        ),
        f"{compat} (OPENAI_COMPATIBLE_API_KEY, OPENAI_COMPATIBLE_BASE_URL, "
        "OPENAI_COMPATIBLE_CUSTOM_HEADERS)": (
            "OPENAI_COMPATIBLE_CUSTOM_HEADERS: not a JSON object of header names and text "
            'values, e.g. {"X-Org-Id": "acme"}.'
        ),
        "default model": "DEFAULT_MODEL: " + validators.MODEL_ID_DOTDOT,
    }
    assert report.unreadable == [
        "Line 3 is not NAME=value and was skipped (its text is not shown: it may hold a key).",
        "Line 4 is not NAME=value and was skipped (its text is not shown: it may hold a key).",
    ]
    assert dict(report.ignored) == {
        "MISTRAL_API_KEY": "no value",
        "AZURE_API_VERSION": "used only together with AZURE_API_KEY or AZURE_API_BASE",
    }
    assert DefaultModel.objects.count() == 0


def test_a_missing_required_value_names_the_variable_to_set(db):
    report = run(
        "AZURE_API_KEY=FAKEazure0123456789abcdef\nAZURE_API_BASE=https://contoso-eu.openai.azure.com\n"
    )
    (row,) = report.of(SKIPPED)
    assert (
        row.detail
        == "AZURE_API_VERSION is not set: Azure OpenAI needs an API version, e.g. 2024-10-21."
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("DEFAULT_MODEL=gpt-4o", "write the model in LiteLLM's <prefix>/<model id> form"),
        (
            "DEFAULT_MODEL=mistral/mistral-small",
            "no provider in this file is reached with the prefix mistral/",
        ),
    ],
)
def test_the_default_must_name_a_provider_of_the_same_file(db, line, reason):
    report = run(f"GROQ_API_KEY=gsk_FAKE0123456789abcdef\n{line}\n")
    (row,) = report.of(SKIPPED)
    assert row.subject == "default model" and reason in row.detail
    assert rows(report, CREATE) == [(CREATE, "provider groq (Groq)")]


def test_nothing_in_any_report_shows_a_key(db):
    for name in (
        "project.env",
        "litellm.env",
        "compatible.env",
        "broken.env",
        "openai_elsewhere.env",
        "openrouter_and_gateway.env",
    ):
        report = run(name, dry_run=True)
        shown = repr(report)
        for secret in secrets_in(name):
            assert secret not in shown, (name, secret[:6])


def test_two_spellings_of_the_same_provider_make_one(db):
    key = (
        "AZURE_API_KEY=FAKEazure0123456789abcdef\nAZURE_OPENAI_API_KEY=FAKEazure0123456789abcdef\n"
    )
    base = "https://contoso-eu.openai.azure.com"
    body = (
        f"{key}AZURE_API_BASE={base}\nAZURE_OPENAI_ENDPOINT={base}/\nAZURE_API_VERSION=2024-10-21\n"
    )
    report = run(body)
    assert rows(report) == [(CREATE, "provider contoso-eu (Azure OpenAI)")]
    assert dict(report.ignored) == {
        "AZURE_OPENAI_API_KEY": "describes the same provider as AZURE_API_KEY",
        "AZURE_OPENAI_ENDPOINT": "describes the same provider as AZURE_API_KEY",
    }


# --- Existing providers, idempotence, dry run ------------------------------------------------


def _state():
    version = ConfigState.objects.filter(id=1).values_list("version", flat=True).first()
    providers = list(
        Provider.objects.values_list("name", "kind", "base_url", "api_key_ciphertext", "version")
    )
    return AuditEvent.objects.count(), version, providers, str(services.default_model_get())


@pytest.mark.parametrize(
    "name",
    [
        "project.env",
        "litellm.env",
        "local.env",
        "compatible.env",
        "openai_elsewhere.env",
        "broken.env",
    ],
)
def test_importing_the_same_file_again_changes_nothing(db, name):
    first = run(name)
    before = _state()
    again = run(name)

    assert _state() == before
    assert not again.of(CREATE) and not again.of(CHANGE)
    assert len(again.of(UNCHANGED)) == len(first.of(CREATE))
    assert again.of(SKIPPED) == first.of(SKIPPED)


def test_dry_run_reports_exactly_and_saves_nothing(db):
    before = _state()
    preview = run("litellm.env", dry_run=True)
    assert _state() == before
    applied = run("litellm.env")
    assert rows(preview) == rows(applied) and preview.digest == applied.digest


def test_a_provider_with_the_same_name_is_updated_and_the_change_named(make_provider):
    make_provider(name="openai", api_key=SECRET)
    body = "OPENAI_API_KEY=sk-proj-FAKEnewkey0123456789abcdef\n"

    preview = run(body, dry_run=True)
    assert [(r.action, r.subject, r.detail) for r in preview.rows] == [
        (CHANGE, "provider openai (OpenAI)", "API key")
    ]
    assert key_of("openai") == SECRET
    run(body)
    assert key_of("openai") == "sk-proj-FAKEnewkey0123456789abcdef"
    assert AuditEvent.objects.filter(action="provider.update", target="openai").count() == 1


def test_a_new_base_url_is_reported_and_sent_with_the_files_key(make_provider):
    make_provider(
        name="acme-llm", kind="openai_compatible", base_url="https://llm.acme-corp.com/v0"
    )
    report = run("compatible.env")
    changed = {r.subject: r.detail for r in report.of(CHANGE)}
    assert changed == {
        "provider acme-llm (OpenAI-compatible endpoint)": "base URL, API key, headers"
    }
    acme = Provider.objects.get(name="acme-llm")
    assert acme.base_url == "https://llm.acme-corp.com/v1"
    assert acme.get_api_key() == "acme-FAKE-0123456789abcdef0123456789"


def test_values_the_file_does_not_give_are_left_alone(make_provider):
    make_provider(
        name="azure-eu",
        kind="azure",
        base_url="https://contoso-eu.openai.azure.com",
        api_key="FAKEazure0123456789abcdef0123456789",
        api_version="2024-06-01",
    )
    report = run(
        "AZURE_OPENAI_API_KEY=FAKEazure0123456789abcdef0123456789\n"
        "AZURE_OPENAI_ENDPOINT=https://contoso-eu.openai.azure.com/\n"
    )
    assert rows(report) == [(UNCHANGED, "provider azure-eu (Azure OpenAI)")]
    assert Provider.objects.get(name="azure-eu").api_version == "2024-06-01"


def test_the_same_key_under_another_name_is_that_provider(make_provider):
    make_provider(name="openai-prod", api_key="sk-proj-FAKEa1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV")
    report = run("project.env")
    assert rows(report)[0] == (UNCHANGED, "provider openai-prod (OpenAI)")
    assert not Provider.objects.filter(name="openai").exists()
    assert str(services.default_model_get()) == "openai-prod/gpt-4o-mini"


def test_derived_names_are_unique(make_provider):
    make_provider(name="openrouter", kind="anthropic")  # another kind: never taken over
    run(
        "OPENAI_API_KEY=sk-or-v1-FAKE0123456789abcdef\nOPENAI_BASE_URL=https://openrouter.ai/api/v1\n"
        "OPENROUTER_API_KEY=sk-or-v1-FAKEother0123456789abcdef\n"
    )
    kinds = dict(Provider.objects.values_list("name", "kind"))
    assert kinds == {
        "openrouter": "anthropic",
        "openrouter-2": "openai_compatible",
        "openrouter-3": "openrouter",
    }


def test_a_disabled_provider_is_not_enabled_and_cannot_become_the_default(make_provider):
    provider = make_provider(name="groq", kind="groq", api_key="gsk_FAKE0123456789abcdef")
    services.provider_update(provider=provider, enabled=False)
    report = run(
        "GROQ_API_KEY=gsk_FAKE0123456789abcdef\nDEFAULT_MODEL=groq/llama-3.3-70b-versatile\n"
    )
    assert rows(report, UNCHANGED) == [(UNCHANGED, "provider groq (Groq)")]
    assert "disabled" in report.of(SKIPPED)[0].detail
    assert not Provider.objects.get(name="groq").enabled


def test_an_outcome_other_than_the_preview_is_rolled_back(db):
    preview = run("project.env", dry_run=True)
    Provider.objects.all().delete()
    services.provider_create(name="openai", kind="openai", api_key="sk-FAKEsomeoneelse0123456789")
    before = _state()
    report = run("project.env", expected=preview.digest)
    assert report.stale and _state() == before


# --- The dashboard ----------------------------------------------------------------------------


def _upload(client, name="project.env", **data):
    upload = SimpleUploadedFile(".env", text(name).encode(), content_type="text/plain")
    return client.post(reverse("env_import"), {"env_file": upload, **data})


def test_viewers_and_strangers_cannot_import(client, login_as):
    assert client.get(reverse("env_import")).status_code == 302  # to the login page
    login_as("viewer")
    assert client.get(reverse("env_import")).status_code == 403
    assert client.post(reverse("env_import"), {"text": "GROQ_API_KEY=x"}).status_code == 403
    assert Provider.objects.count() == 0


def test_the_page_explains_itself_before_any_upload(client, login_as):
    login_as("editor")
    page = client.get(reverse("env_import")).content.decode()
    assert '<label for="id_env_file">' in page and '<label for="id_text">' in page
    assert "<code>OLLAMA_HOST</code>" in page  # recognised variables, from the registry
    assert reverse("env_import") in client.get(reverse("config_import")).content.decode()


def test_preview_then_confirm_applies_what_was_previewed(client, login_as):
    login_as("editor")
    preview = _upload(client)
    page = preview.content.decode()
    assert Provider.objects.count() == 0
    assert "provider openai (OpenAI)" in page and "<code>DATABASE_URL</code>" in page
    preview_id = preview.context["preview"]

    applied = client.post(reverse("env_import"), {"preview": preview_id})
    assert applied.status_code == 200
    assert sorted(Provider.objects.values_list("name", flat=True)) == [
        "anthropic",
        "gemini",
        "openai",
    ]
    assert (
        "Imported the .env file: 4 created, 0 changed, 0 unchanged, 0 skipped."
        in applied.content.decode()
    )

    again = client.post(reverse("env_import"), {"preview": preview_id}, follow=True)
    assert view.PREVIEW_EXPIRED in again.content.decode()


def test_no_key_reaches_the_page_or_the_session_in_clear(client, login_as):
    login_as("editor")
    pages = [_upload(client, name).content.decode() for name in ("project.env", "broken.env")]
    pasted = client.post(reverse("env_import"), {"text": text("compatible.env")})
    pages.append(pasted.content.decode())
    stored = "".join(s.session_data for s in Session.objects.all())
    for secret in (
        secrets_in("project.env") + secrets_in("broken.env") + secrets_in("compatible.env")
    ):
        assert all(secret not in page for page in pages), secret[:6]
        assert secret not in stored
    assert "acme-llm" in pages[2]  # the pasted text was previewed, never echoed back


def test_a_preview_id_from_another_session_is_refused(client, login_as):
    login_as("editor")
    preview_id = _upload(client).context["preview"]
    login_as("editor", username="other")
    response = client.post(reverse("env_import"), {"preview": preview_id}, follow=True)
    assert view.PREVIEW_EXPIRED in response.content.decode()
    assert Provider.objects.count() == 0


def test_a_change_since_the_preview_shows_a_new_preview_instead(client, login_as):
    login_as("editor")
    preview_id = _upload(client).context["preview"]
    services.provider_create(name="openai", kind="openai", api_key="sk-FAKEsomeoneelse0123456789")

    response = client.post(reverse("env_import"), {"preview": preview_id})
    page = response.content.decode()
    assert view.PREVIEW_STALE in page and "changed: API key" in page
    assert key_of("openai") == "sk-FAKEsomeoneelse0123456789"
    client.post(reverse("env_import"), {"preview": response.context["preview"]})
    assert key_of("openai") == "sk-proj-FAKEa1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"


def test_each_recognised_variable_is_listed_once(client, login_as):
    login_as("editor")
    page = client.get(reverse("env_import")).content.decode()
    # AZURE_API_VERSION belongs to both Azure OpenAI conventions.
    assert page.count("<code>AZURE_API_VERSION</code>") == 1
    assert page.count("<code>OPENAI_API_VERSION</code>") == 1


def test_empty_and_unknown_input(client, login_as):
    login_as("editor")
    assert NOTHING_GIVEN in client.post(reverse("env_import"), {"text": "  "}).content.decode()
    response = client.post(reverse("env_import"), {"text": "# nothing here\nFOO=bar\n"})
    page = response.content.decode()
    assert "This file describes no provider" in page and "<code>FOO</code>" in page
    assert 'name="preview"' not in page  # nothing to confirm


def test_the_upload_form_lists_its_problems_in_the_error_summary(client, login_as):
    login_as("editor")
    page = client.get(reverse("env_import")).content.decode()
    form = re.search(r'<form[^>]*enctype="multipart/form-data"[^>]*>', page)[0]
    assert "novalidate" not in form  # the browser checks what it can before the round trip
    assert (
        error_summary(client.post(reverse("env_import"), {"text": ""}).content.decode()).count(
            NOTHING_GIVEN
        )
        == 1
    )
    both = {"env_file": SimpleUploadedFile(".env", b"GROQ_API_KEY=x\n"), "text": "A=b"}
    html = client.post(reverse("env_import"), both).content.decode()
    assert BOTH_GIVEN in error_summary(html)
    assert html.count(BOTH_GIVEN) == 1  # once, in the summary
    not_text = {"env_file": SimpleUploadedFile(".env", b"\xff\xfe\x00bad")}
    summary = error_summary(client.post(reverse("env_import"), not_text).content.decode())
    assert UPLOAD_NOT_TEXT in summary
    assert not Provider.objects.exists()
