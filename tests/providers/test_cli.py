import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from providers.management.commands.routing import Command
from providers.models import AuditEvent, DefaultModel, Provider
from tests.conftest import SECRET, shared_database_url

ROOT = Path(__file__).resolve().parents[2]


def routing(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("routing", *args, stdout=out, stderr=io.StringIO())
    finally:
        sys.stdin = old_stdin
    return out.getvalue()


@pytest.fixture
def cli(db, local_upstreams):
    return routing


def test_add_with_key_from_env_list_masks_it(cli, monkeypatch, upstream):
    monkeypatch.setenv("TEAM_OPENAI_KEY", SECRET)
    cli(
        "provider",
        "add",
        "--name",
        "openai-prod",
        "--kind",
        "openai",
        "--base-url",
        upstream.base_url + "/v1",
        "--api-key-env",
        "TEAM_OPENAI_KEY",
    )
    listing = cli("provider", "list")
    assert "openai-prod" in listing and "sk-…J9k0" in listing
    assert SECRET not in listing
    assert Provider.objects.get().get_api_key() == SECRET


def test_list_has_a_display_name_column(cli, make_provider):
    make_provider(name="together", kind="together", display_name="Together (Acme account)")
    make_provider(name="plain")
    make_provider(name="odd", display_name="Tab\there\x1b[2J")
    lines = cli("provider", "list").splitlines()
    assert len(lines) == 4  # the header and one line a provider, whatever the display name
    header, start = lines[0], lines[0].index("DISPLAY NAME")
    assert header.startswith("NAME") and header.index("KIND") > start
    rows = {line.split()[0]: line[start:] for line in lines[1:]}
    assert rows["together"].startswith("Together (Acme account)  together")
    assert rows["plain"].startswith("-  ")  # none: the column says so
    assert rows["odd"].startswith("Tab here [2J  ")  # no tab, no terminal escape
    assert "\x1b" not in "".join(lines)


def test_add_with_key_from_stdin_and_headers(cli):
    cli(
        "provider",
        "add",
        "--name",
        "azure-eu",
        "--kind",
        "azure",
        "--base-url",
        "https://contoso.openai.azure.com",
        "--api-key-stdin",
        "--api-version",
        "2024-10-21",
        "--header",
        "X-Team: hdr-value-secret",
        "--timeout",
        "30",
        stdin=SECRET + "\n",
    )
    provider = Provider.objects.get()
    assert (provider.api_version, provider.timeout) == ("2024-10-21", 30)
    assert provider.get_headers() == {"X-Team": "hdr-value-secret"}
    shown = cli("provider", "show", "azure-eu")
    assert "X-Team" in shown and "hdr-value-secret" not in shown and SECRET not in shown


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "x", "--kind", "openai", "--api-key-env", "UNSET_VAR_XYZ"], "UNSET_VAR_XYZ"),
        (["--name", "Bad!", "--kind", "ollama"], "name:"),
        (
            ["--name", "x", "--kind", "openai_compatible", "--base-url", "http://10.0.0.5/v1"],
            "base-url:",
        ),
        (["--name", "x", "--kind", "ollama", "--header", "no colon"], "Name: value"),
    ],
)
def test_invalid_add_is_one_clear_error_and_stores_nothing(cli, args, message):
    with pytest.raises(CommandError) as info:
        cli("provider", "add", *args)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not Provider.objects.exists()
    assert not AuditEvent.objects.exists()


def test_default_set_show_and_remove_guard(cli, upstream):
    cli(
        "provider",
        "add",
        "--name",
        "local",
        "--kind",
        "vllm",
        "--base-url",
        upstream.base_url + "/v1",
    )
    assert "local/meta-llama/Llama-3.1-8B" in cli(
        "default", "set", "local", "meta-llama/Llama-3.1-8B"
    )
    assert "version 1" in cli("default", "show")
    with pytest.raises(CommandError, match="Switch the default"):
        cli("provider", "remove", "local")
    assert DefaultModel.objects.get().provider.name == "local"


def test_drop_params_is_set_on_add_and_changed_on_edit(cli, upstream):
    base = upstream.base_url + "/v1"
    cli("provider", "add", "--name", "edge", "--kind", "vllm", "--base-url", base, "--drop-params")
    assert Provider.objects.get(name="edge").drop_params is True
    assert "drop params:  yes" in cli("provider", "show", "edge")
    cli("provider", "edit", "edge", "--no-drop-params")
    assert Provider.objects.get(name="edge").drop_params is False
    cli("provider", "edit", "edge", "--timeout", "30")  # not given: left as it is
    cli("provider", "edit", "edge", "--drop-params")
    edge = Provider.objects.get(name="edge")
    assert (edge.drop_params, edge.timeout) == (True, 30)
    updates = AuditEvent.objects.filter(action="provider.update").order_by("pk")
    assert [e.changes.get("drop_params") for e in updates] == [[True, False], None, [False, True]]


def test_edit_changes_only_what_is_given(cli, monkeypatch, upstream):
    base = upstream.base_url + "/v1"
    cli("provider", "add", "--name", "edge", "--kind", "vllm", "--base-url", base)
    monkeypatch.setenv("EDGE_KEY", SECRET)
    out = cli(
        "provider", "edit", "edge", "--timeout", "42", "--api-key-env", "EDGE_KEY",
        "--header", "X-Team: ml", "--max-retries", "2",
    )  # fmt: skip
    assert out.strip() == "Changed provider edge."
    edge = Provider.objects.get(name="edge")
    assert (edge.timeout, edge.max_retries, edge.base_url, edge.version) == (42, 2, base, 2)
    assert edge.get_api_key() == SECRET and edge.get_headers() == {"X-Team": "ml"}
    event = AuditEvent.objects.filter(action="provider.update").get()
    assert event.actor_name.startswith("cli:") and SECRET not in str(event.changes)
    assert event.changes["api_key"] == "changed" and event.changes["timeout"] == [600, 42]

    cli("default", "set", "edge", "m")
    with pytest.raises(CommandError, match="holds the active default model"):
        cli("provider", "edit", "edge", "--disable")
    cli("provider", "edit", "edge", "--remove-key")
    assert Provider.objects.get(name="edge").api_key_ciphertext == ""
    assert Provider.objects.get(name="edge").enabled
    with pytest.raises(CommandError, match="No provider named 'nope'"):
        cli("provider", "edit", "nope", "--timeout", "5")


def test_remove_and_unknown_provider(cli):
    cli("provider", "add", "--name", "gone", "--kind", "ollama")
    assert "Removed" in cli("provider", "remove", "gone")
    with pytest.raises(CommandError, match="No provider named 'gone'"):
        cli("provider", "show", "gone")


def _add_up(cli, upstream) -> None:
    """Provider "up": OpenAI at the local upstream, its key read from $CLI_TEST_KEY."""
    cli(
        "provider",
        "add",
        "--name",
        "up",
        "--kind",
        "openai",
        "--base-url",
        upstream.base_url + "/v1",
        "--api-key-env",
        "CLI_TEST_KEY",
    )


def test_provider_test_reports_ok_with_latency(cli, upstream):
    upstream.models = ["gpt-4o", "gpt-4o-mini"]
    os.environ["CLI_TEST_KEY"] = SECRET
    _add_up(cli, upstream)
    out = cli("provider", "test", "up")
    assert out.startswith("up: ok,") and "2 models found" in out
    assert upstream.last.path == "/v1/models"
    assert upstream.last.headers["authorization"] == f"Bearer {SECRET}"


def test_provider_test_failure_exits_1_with_redacted_error(cli, upstream, monkeypatch):
    monkeypatch.setenv("CLI_TEST_KEY", SECRET)
    _add_up(cli, upstream)
    upstream.fail_next(401, {"error": {"message": f"bad key {SECRET}"}})
    with pytest.raises(CommandError) as info:
        cli("provider", "test", "up")
    assert info.value.returncode == 1
    assert "HTTP 401" in str(info.value) and SECRET not in str(info.value)
    assert Provider.objects.get().last_test_ok is False


def test_rotate_key_command(cli, settings):
    from cryptography.fernet import Fernet

    cli("provider", "add", "--name", "a", "--kind", "openai", "--api-key-stdin", stdin=SECRET)
    settings.ROUTING_ENCRYPTION_KEYS = (
        Fernet.generate_key().decode(),
        *settings.ROUTING_ENCRYPTION_KEYS,
    )
    assert "Re-encrypted 1 provider(s)" in cli("rotate-key")
    assert "Re-encrypted 0 provider(s); 1 already" in cli("rotate-key")


@pytest.mark.django_db(transaction=True)
def test_real_command_line_exit_status_and_single_stderr_line(local_upstreams):
    from django.conf import settings as dj

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        # Test keys pass the production checks only on a loopback deployment, like bin/run.
        "ROUTING_HTTPS_REDIRECT": "0",
    }
    env["DATABASE_URL"] = shared_database_url()
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "routing",
            "provider",
            "add",
            "--name",
            "x",
            "--kind",
            "openai",
            "--base-url",
            "https://127.0.0.1/v1",
            "--api-key-stdin",
        ],
        input=SECRET,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "base-url:" in lines[0]
    assert SECRET not in result.stderr + result.stdout
    assert not Provider.objects.exists()


def test_every_subcommand_has_its_handler_in_the_table():
    parser = Command().create_parser("manage.py", "routing")
    found = set()
    for command, sub in _choices(parser).items():
        actions = _choices(sub)
        if not actions:
            found.add((command, None))
        for action, action_parser in actions.items():
            # A third level (`team member add`) is keyed "member add".
            deeper = _choices(action_parser)
            found |= {(command, f"{action} {d}") for d in deeper} if deeper else {(command, action)}
    assert found == set(Command.HANDLERS)


def _choices(parser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}
