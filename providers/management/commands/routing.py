"""`python manage.py routing ...`: the command line. Stable: scripts rely on these names.

Every subcommand calls the same services and validators as the dashboard.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import ROLES
from accounts.services import user_create
from providers import kinds, services
from providers.models import KeyState, Provider, RoutingGroup
from providers.services import parse_model_names
from routing_admin.run_once import ALREADY_RUNNING, exclusively

NO_SUCH_PROVIDER = (
    "No provider named {name!r}. `python manage.py routing provider list` shows them."
)
TOKENS_NOT_EXPORTED = (
    "Not exported: {count} access token(s); only their hashes are stored, so create them "
    "again where the file is imported. Teams and their limits are in routing_admin.teams."
)
COUNT_ARGUMENT = "{flag} takes a whole number of {what} (at least 1), or none."
NO_LIMIT_GIVEN = "Give at least one limit: --rpm, --tpm, --max-parallel or --budget."
# The limit flags: (flag, option name, what it counts).
LIMIT_COUNTS = (
    ("--rpm", "rpm", "requests per minute"),
    ("--tpm", "tpm", "tokens per minute"),
    ("--max-parallel", "max_parallel", "concurrent requests"),
)
NO_SUCH_TEAM = "No team named {name!r}. `python manage.py routing team list` shows them."
NO_SUCH_GROUP = (
    "No routing group named {name!r}. To use one provider's model, give both: "
    "`routing default set PROVIDER MODEL`."
)
API_KEY_ENV_EMPTY = "Environment variable {var} is not set or empty; export the key in it first."
API_KEY_STDIN_EMPTY = "No API key arrived on standard input; pipe it in, e.g. `printenv KEY | ...`."
SETTING_FORMAT = "Write each --setting as NAME=VALUE, e.g. --setting region=us-east-1."
SETTING_HELP = (
    "A setting of the kind's own (Bedrock: region, access_key_id; Vertex AI: project, "
    "location), NAME=VALUE; repeat for several."
)
HEADER_FORMAT = '--header must look like "Name: value" (got a value without a colon).'
TEST_WHICH = "Name one provider to test, or give --all for every enabled one (not both)."
EDIT_NOTHING = "Nothing to change: give at least one option; --help lists them."
DISPLAY_NAME_HELP = "Free text pages show instead of the name, e.g. 'Together (Acme)'."
CONCURRENCY_POSITIVE = "--concurrency must be at least 1."
DEPLOYMENTS_HELP = (
    "Azure OpenAI: the deployment names to offer as models, comma separated ('' for none)."
)
PASSWORD_STDIN_EMPTY = "No password arrived on standard input; pipe it in: `printenv PW | ...`."


# Fields whose command-line flag is not their name with dashes.
_FLAG_OF_FIELD = {"declared_models": "deployments"}


def _one_line(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        parts = []
        for field, errors in exc.message_dict.items():
            flag = _FLAG_OF_FIELD.get(field, field.replace("_", "-"))
            label = "" if field == "__all__" else f"{flag}: "
            parts.append(label + " ".join(errors))
        return "; ".join(parts)
    return " ".join(exc.messages)


def _provider(name: str) -> Provider:
    provider = Provider.objects.filter(name=name).first()
    if provider is None:
        raise CommandError(NO_SUCH_PROVIDER.format(name=name))
    return provider


def _count(flag: str, what: str):
    def parse(value: str) -> int | None:
        if value.strip().lower() in ("none", "off"):
            return None
        try:
            count = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(COUNT_ARGUMENT.format(flag=flag, what=what)) from None
        if count < 1:
            raise argparse.ArgumentTypeError(COUNT_ARGUMENT.format(flag=flag, what=what))
        return count

    return parse


def _budget(value: str):
    from limits.rules import parse_budget

    try:
        return parse_budget(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(_one_line(exc)) from None


def _limit_arguments(parser: argparse.ArgumentParser, *, keep: bool = False) -> None:
    """--rpm, --tpm, --max-parallel and --budget; `keep`: one left out stays as it is."""
    from limits.rules import KEEP

    default = KEEP if keep else None
    for flag, dest, what in LIMIT_COUNTS:
        parser.add_argument(
            flag,
            dest=dest,
            type=_count(flag, what),
            default=default,
            metavar="N",
            help=f"{what.capitalize()}, across every worker and machine; none lifts it.",
        )
    parser.add_argument(
        "--budget",
        type=_budget,
        default=default,
        metavar="USD/PERIOD",
        help="US dollars per day, week, month or in total (50/month), a hard stop; none lifts it.",
    )


def _limits_given(options: dict) -> dict:
    from limits.rules import KEEP

    given = {dest: options[dest] for _, dest, _ in LIMIT_COUNTS}
    given["budget"] = options["budget"]
    if all(value is KEEP for value in given.values()):
        raise CommandError(NO_LIMIT_GIVEN)
    return given


def _team(name: str):
    from accounts.models import Team

    team = Team.objects.filter(name=name).first()
    if team is None:
        raise CommandError(NO_SUCH_TEAM.format(name=name))
    return team


def _cell(text: str) -> str:
    """Free text (a display name) as one table cell: a tab, newline or terminal escape
    would break the columns, or the terminal, so each such character shows as a space."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as lines of left-aligned columns, two spaces apart (the first row: headings)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(map(str.ljust, row, widths)).rstrip() for row in rows]


def _key_display(provider: Provider) -> str:
    state = provider.key_state
    if state == KeyState.UNDECRYPTABLE:
        return "(undecryptable)"
    if state == KeyState.NONE:
        return "(none)"
    return provider.api_key_hint or "(set)"


def _test_display(provider: Provider) -> str:
    if provider.last_test_ok is None:
        return "never tested"
    if provider.last_test_ok:
        return f"ok {provider.last_test_latency_ms:.0f} ms"
    return "error"


def _concurrency_argument(parser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="Test at most N providers at a time (default 8); each has its own timeout.",
    )


def _health_line(provider: Provider, result: services.ConnectionResult) -> str:
    """One line per provider for logs: never a key (test messages are redacted)."""
    if result.ok:
        line = f"{provider.name}: ok, {result.latency_ms:.0f} ms, {result.message}"
    else:
        line = f"{provider.name}: FAILED, {result.message}"
        line += f" ({provider.consecutive_failures} in a row"
        line += ", unhealthy)" if provider.unhealthy_since else ")"
    if result.health_change:
        line += f" [now {result.health_change}]"
    return line


def _read_env_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CommandError(f"Cannot read {name}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"Cannot read {name}: it is not UTF-8 text.") from None


_EDIT_FIELDS = (
    "display_name",
    "base_url",
    "api_version",
    "timeout",
    "max_retries",
    "drop_params",
    "enabled",
)
DROP_PARAMS_HELP = (
    "Drop parameters this provider does not support (the form's switch), instead of "
    "refusing the call."
)


def _edit_arguments(provider_commands) -> None:
    edit = provider_commands.add_parser(
        "edit", help="Change a provider; options not given are left as they are."
    )
    edit.add_argument("name")
    edit.add_argument(
        "--display-name", default=None, metavar="TEXT", help=DISPLAY_NAME_HELP + " '' clears it"
    )
    edit.add_argument("--base-url", default=None)
    key = edit.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", metavar="VAR", help="Read the new key from this variable.")
    key.add_argument("--api-key-stdin", action="store_true", help="Read the new key from stdin.")
    key.add_argument("--remove-key", action="store_true", help="Remove the stored key.")
    edit.add_argument("--api-version", default=None)
    edit.add_argument(
        "--setting",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help=SETTING_HELP + " Others are left as they are; NAME= clears one.",
    )
    edit.add_argument(
        "--header",
        action="append",
        default=None,
        metavar='"Name: value"',
        help="Replaces every stored header (repeat for several).",
    )
    edit.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    edit.add_argument("--max-retries", type=int, default=None, metavar="N")
    edit.add_argument("--deployments", default=None, metavar='"A,B"', help=DEPLOYMENTS_HELP)
    edit.add_argument(
        "--drop-params",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=DROP_PARAMS_HELP + " --no-drop-params turns it off.",
    )
    enabled = edit.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_true", default=None)
    enabled.add_argument("--disable", dest="enabled", action="store_false")


def _api_key_option(options: dict) -> str | None:
    """The key given by --api-key-env or --api-key-stdin, or None when neither was."""
    if options["api_key_env"]:
        api_key = os.environ.get(options["api_key_env"], "").strip()
        if not api_key:
            raise CommandError(API_KEY_ENV_EMPTY.format(var=options["api_key_env"]))
        return api_key
    if options["api_key_stdin"]:
        api_key = sys.stdin.read().strip()
        if not api_key:
            raise CommandError(API_KEY_STDIN_EMPTY)
        return api_key
    return None


def _setting_options(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CommandError(SETTING_FORMAT)
        settings[name.strip()] = value.strip()
    return settings


def _header_options(lines: list[str]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise CommandError(HEADER_FORMAT)
        headers[name.strip()] = value.strip()
    return headers


class Command(BaseCommand):
    help = "Manage providers, the default model and encryption keys."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

        provider = commands.add_parser(
            "provider", help="Add, list, show, test or remove providers."
        )
        provider_commands = provider.add_subparsers(dest="action", required=True, metavar="ACTION")
        add = provider_commands.add_parser("add", help="Add a provider.")
        add.add_argument("--name", required=True)
        add.add_argument("--display-name", default="", metavar="TEXT", help=DISPLAY_NAME_HELP)
        add.add_argument("--kind", required=True, choices=list(kinds.KINDS))
        add.add_argument("--base-url", default="")
        key = add.add_mutually_exclusive_group()
        key.add_argument("--api-key-env", metavar="VAR", help="Read the key from this variable.")
        key.add_argument("--api-key-stdin", action="store_true", help="Read the key from stdin.")
        add.add_argument("--api-version", default="")
        add.add_argument(
            "--setting", action="append", default=[], metavar="NAME=VALUE", help=SETTING_HELP
        )
        add.add_argument("--header", action="append", default=[], metavar='"Name: value"')
        add.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
        add.add_argument("--deployments", default=None, metavar='"A,B"', help=DEPLOYMENTS_HELP)
        add.add_argument("--drop-params", action="store_true", help=DROP_PARAMS_HELP)
        _edit_arguments(provider_commands)
        provider_commands.add_parser("list", help="List providers (keys masked).")
        for action, text in (
            ("show", "Show one provider."),
            ("remove", "Remove a provider."),
        ):
            provider_commands.add_parser(action, help=text).add_argument("name")
        test = provider_commands.add_parser(
            "test", help="Test a provider's connection, or every enabled one with --all."
        )
        test.add_argument("name", nargs="?")
        test.add_argument("--all", action="store_true", help="Test every enabled provider.")
        _concurrency_argument(test)

        health_check = commands.add_parser(
            "health-check",
            help="Test every enabled provider and record its health (for cron or a timer); "
            "exit 1 when any failed.",
        )
        _concurrency_argument(health_check)

        default = commands.add_parser("default", help="Show or set the active default model.")
        default_commands = default.add_subparsers(dest="action", required=True, metavar="ACTION")
        set_default = default_commands.add_parser(
            "set", help="Set the default: PROVIDER MODEL, or a routing GROUP."
        )
        set_default.add_argument("provider", metavar="PROVIDER|GROUP")
        set_default.add_argument("model", nargs="?", metavar="MODEL")
        default_commands.add_parser("show", help="Show the active default model.")

        commands.add_parser("rotate-key", help="Re-encrypt every secret under the first key.")

        token = commands.add_parser("token", help="Create, list or revoke gateway tokens.")
        token_commands = token.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = token_commands.add_parser("create", help="Create a token (printed once).")
        create.add_argument("name")
        create.add_argument("--expires-in-days", type=float, default=None, metavar="DAYS")
        create.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="MODEL",
            help="Limit the token to this group, provider/model or 'default' (repeatable).",
        )
        create.add_argument(
            "--team",
            default=None,
            metavar="TEAM",
            help="The team that owns the token; it may call only what the team may.",
        )
        _limit_arguments(create)
        token_commands.add_parser("list", help="List tokens (never their value).")
        token_limits = token_commands.add_parser("limits", help="Set or lift a token's limits.")
        token_limits.add_argument("name")
        _limit_arguments(token_limits, keep=True)
        token_commands.add_parser("revoke", help="Revoke a token.").add_argument("name")

        prune = commands.add_parser("prune-requests", help="Delete old request-log records.")
        prune.add_argument(
            "--days",
            type=float,
            default=None,
            help="Keep this many days (default: ROUTING_REQUEST_LOG_RETENTION_DAYS, 30).",
        )

        export = commands.add_parser(
            "export",
            help="Print a LiteLLM proxy config.yaml (keys as os.environ/NAME references).",
        )
        export.add_argument(
            "--env-file",
            metavar="FILE",
            help="Also write the values of those references to FILE (mode 0600).",
        )
        import_litellm = commands.add_parser(
            "import-litellm",
            help="Create providers, groups and router settings from a LiteLLM config.yaml.",
        )
        import_litellm.add_argument("file", metavar="FILE")
        import_litellm.add_argument(
            "--dry-run", action="store_true", help="Show what would change; change nothing."
        )
        import_env = commands.add_parser(
            "import-env",
            help="Create or update providers (and the default model) from a .env file.",
        )
        import_env.add_argument("file", metavar="FILE", help="The .env file; - reads stdin.")
        import_env.add_argument(
            "--dry-run", action="store_true", help="Show what would change; change nothing."
        )

        team = commands.add_parser("team", help="Add, list or remove teams, and their members.")
        team_commands = team.add_subparsers(dest="action", required=True, metavar="ACTION")
        team_add = team_commands.add_parser("add", help="Add a team.")
        team_add.add_argument("name")
        team_add.add_argument("--display-name", default="", metavar="TEXT")
        team_add.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="MODEL",
            help="Let the team's tokens call this group, provider/model or 'default' "
            "(repeatable; none: every model).",
        )
        team_commands.add_parser("list", help="List teams.")
        team_limits = team_commands.add_parser(
            "limits", help="Set or lift a team's limits (all its tokens together)."
        )
        team_limits.add_argument("name")
        _limit_arguments(team_limits, keep=True)
        team_commands.add_parser(
            "remove", help="Remove a team (it must own no live token)."
        ).add_argument("name")
        member = team_commands.add_parser("member", help="Add, remove or list a team's members.")
        member_commands = member.add_subparsers(
            dest="member_action", required=True, metavar="ACTION"
        )
        member_add = member_commands.add_parser(
            "add", help="Add a member, or change a member's team role."
        )
        member_add.add_argument("name", metavar="NAME", help="The team.")
        member_add.add_argument("user", metavar="USER", help="The user's name.")
        member_add.add_argument(
            "--role", default="member", choices=["member", "admin"], help="Default: member."
        )
        member_remove = member_commands.add_parser("remove", help="Remove a member.")
        member_remove.add_argument("name", metavar="NAME", help="The team.")
        member_remove.add_argument("user", metavar="USER", help="The user's name.")
        member_commands.add_parser("list", help="List a team's members.").add_argument(
            "name", metavar="NAME", help="The team."
        )

        user = commands.add_parser("user", help="Add users.")
        user_commands = user.add_subparsers(dest="action", required=True, metavar="ACTION")
        user_add = user_commands.add_parser("add", help="Add a user with a role.")
        user_add.add_argument("name")
        user_add.add_argument("--role", required=True, choices=list(ROLES))
        # Required: a password on the command line would end up in shell history and `ps`.
        user_add.add_argument(
            "--password-stdin",
            action="store_true",
            required=True,
            help="Read the password from stdin.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options.get("action")
        if options.get("member_action"):
            action = f"{action} {options['member_action']}"
        handler = self.HANDLERS[options["command"], action]
        actor = f"cli:{getpass.getuser()}"
        with ExitStack() as stack:
            run_once = options["command"] in self.RUN_ONCE
            if run_once and not stack.enter_context(exclusively(options["command"])):
                self.stdout.write(ALREADY_RUNNING.format(name=options["command"]))
                return
            try:
                handler(self, options, actor)
            except ValidationError as exc:
                raise CommandError(_one_line(exc)) from None

    # --- provider ---------------------------------------------------------------------
    def _provider_add(self, options: dict, actor: str) -> None:
        api_key = _api_key_option(options) or ""
        headers = _header_options(options["header"])
        provider = services.provider_create(
            name=options["name"],
            display_name=options["display_name"],
            kind=options["kind"],
            base_url=options["base_url"],
            api_key=api_key,
            headers=headers,
            api_version=options["api_version"],
            options=_setting_options(options["setting"]),
            timeout=options["timeout"],
            declared_models=parse_model_names(options["deployments"] or ""),
            drop_params=options["drop_params"],
            actor=actor,
        )
        for warning in provider.validation_warnings:
            self.stderr.write(f"Warning: {warning}")
        self.stdout.write(f"Added provider {provider.name} ({provider.kind_info.label}).")

    def _provider_edit(self, options: dict, actor: str) -> None:
        provider = _provider(options["name"])
        fields = {field: options[field] for field in _EDIT_FIELDS if options[field] is not None}
        if options["deployments"] is not None:
            fields["declared_models"] = parse_model_names(options["deployments"])
        if options["setting"] is not None:
            fields["options"] = {**provider.options, **_setting_options(options["setting"])}
        api_key = _api_key_option(options)
        if options["remove_key"]:
            api_key = ""
        headers = services.KEEP
        if options["header"] is not None:
            headers = _header_options(options["header"])
        if not fields and api_key is None and headers is services.KEEP:
            raise CommandError(EDIT_NOTHING)
        provider = services.provider_update(
            provider=provider,
            actor=actor,
            api_key=services.KEEP if api_key is None else api_key,
            headers=headers,
            **fields,
        )
        for warning in provider.validation_warnings:
            self.stderr.write(f"Warning: {warning}")
        shown = f" ({provider.display_name})" if provider.display_name else ""
        self.stdout.write(f"Changed provider {provider.name}{shown}.")

    def _provider_list(self, options: dict, actor: str) -> None:
        rows = [("NAME", "DISPLAY NAME", "KIND", "ENABLED", "BASE URL", "KEY", "LAST TEST")]
        for p in Provider.objects.all():
            rows.append(
                (
                    p.name,
                    _cell(p.display_name) or "-",
                    p.kind,
                    "yes" if p.enabled else "no",
                    p.effective_base_url,
                    _key_display(p),
                    _test_display(p),
                )
            )
        if len(rows) == 1:
            self.stdout.write("No providers yet. Add one with `routing provider add`.")
            return
        for line in _table(rows):
            self.stdout.write(line)

    def _provider_show(self, options: dict, actor: str) -> None:
        p = _provider(options["name"])
        fields = [
            ("name", p.name),
            ("display name", p.display_name or "-"),
            ("kind", f"{p.kind} ({p.kind_info.label})"),
            ("base url", p.effective_base_url),
            ("api key", _key_display(p)),
            ("headers", ", ".join(p.header_names) or "(none)"),
            ("api version", p.api_version or "-"),
            *(
                (setting.label.lower(), p.options.get(setting.name) or "-")
                for setting in p.kind_info.fields
            ),
            *((("deployments", ", ".join(p.declared_models) or "-"),) if p.declared_models else ()),
            ("timeout", f"{p.timeout:g} s"),
            ("max retries", str(p.max_retries)),
            ("drop params", "yes" if p.drop_params else "no"),
            ("enabled", "yes" if p.enabled else "no"),
            (
                "last test",
                _test_display(p) + (f" ({p.last_test_message})" if p.last_test_message else ""),
            ),
            ("updated", f"{p.updated_at:%Y-%m-%d %H:%M:%S} UTC"),
        ]
        for label, value in fields:
            self.stdout.write(f"{label + ':':<14}{value}")

    def _provider_remove(self, options: dict, actor: str) -> None:
        provider = _provider(options["name"])
        services.provider_remove(provider=provider, actor=actor)
        self.stdout.write(f"Removed provider {options['name']}.")

    def _provider_test(self, options: dict, actor: str) -> None:
        if options["all"] == bool(options["name"]):
            raise CommandError(TEST_WHICH)
        if options["all"]:
            self._test_enabled(options, actor, progress=True)
            return
        provider = _provider(options["name"])
        result = services.provider_test(provider=provider, actor=actor)
        if not result.ok:
            raise CommandError(f"{provider.name}: {result.message}", returncode=1)
        self.stdout.write(f"{provider.name}: ok, {result.latency_ms:.0f} ms, {result.message}")

    def _health_check(self, options: dict, actor: str) -> None:
        from providers.services import HEALTH_CHECK_ACTOR

        self._test_enabled(options, HEALTH_CHECK_ACTOR, progress=False)

    def _test_enabled(self, options: dict, actor: str, *, progress: bool) -> None:
        """Test every enabled provider concurrently, printing each result as it arrives."""
        if options["concurrency"] < 1:
            raise CommandError(CONCURRENCY_POSITIVE)
        providers = list(Provider.objects.filter(enabled=True))
        if not providers:
            self.stdout.write("No enabled providers to test.")
            return
        done = 0

        def report(provider: Provider, result: services.ConnectionResult) -> None:
            nonlocal done
            done += 1
            prefix = f"[{done}/{len(providers)}] " if progress else ""
            self.stdout.write(prefix + _health_line(provider, result))
            self.stdout.flush()

        results = services.provider_test_many(
            providers=providers,
            max_workers=options["concurrency"],
            actor=actor,
            on_result=report,
        )
        failed = [p.name for p, r in results if not r.ok]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(results)} failed: {', '.join(failed)}.", returncode=1
            )
        self.stdout.write(f"All {len(results)} enabled providers answered.")

    # --- default ----------------------------------------------------------------------
    def _default_set(self, options: dict, actor: str) -> None:
        if options["model"] is None:
            group = RoutingGroup.objects.filter(name=options["provider"]).first()
            if group is None:
                raise CommandError(NO_SUCH_GROUP.format(name=options["provider"]))
            default = services.default_model_set(group=group, actor=actor)
        else:
            provider = _provider(options["provider"])
            default = services.default_model_set(
                provider=provider, model=options["model"], actor=actor
            )
        self.stdout.write(f"Default model is now {default} (version {default.version}).")

    def _default_show(self, options: dict, actor: str) -> None:
        default = services.default_model_get()
        if default is None:
            self.stdout.write("No default model is set. Set one with `routing default set`.")
            return
        self.stdout.write(
            f"{default} (version {default.version}, since {default.changed_at:%Y-%m-%d %H:%M:%S}"
            f" UTC, by {default.changed_by_name or 'unknown'})"
        )

    # --- keys -------------------------------------------------------------------------
    def _rotate_key(self, options: dict, actor: str) -> None:
        report = services.rotate_keys(actor=actor)
        self.stdout.write(
            f"Re-encrypted {report.rotated} provider(s); {report.already_current} already "
            "under the first key."
        )
        if report.undecryptable:
            raise CommandError(
                "Could not decrypt the secrets of: "
                + ", ".join(sorted(set(report.undecryptable)))
                + ". They were left unchanged; add the key they were encrypted with and re-run.",
                returncode=1,
            )

    # --- LiteLLM config ---------------------------------------------------------------
    def _export(self, options: dict, actor: str) -> None:
        env_file = options["env_file"]
        config, env = services.export_config(include_secrets=bool(env_file))
        if env_file:
            services.write_env_file(env_file, env)
            self.stderr.write(f"Wrote {len(env)} secret value(s) to {env_file} (mode 0600).")
        disabled = Provider.objects.filter(enabled=False).values_list("name", flat=True)
        if disabled:
            self.stderr.write(f"Not exported (disabled): {', '.join(disabled)}.")
        from gateway.models import AccessToken

        if tokens := AccessToken.objects.filter(revoked_at__isnull=True).count():
            self.stderr.write(TOKENS_NOT_EXPORTED.format(count=tokens))
        # stdout carries the YAML only, so that `routing export > config.yaml` just works.
        self.stdout.write(services.render_yaml(config), ending="")

    def _import_litellm(self, options: dict, actor: str) -> None:
        path = Path(options["file"])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"Cannot read {path}: it is not UTF-8 text.") from None
        report = services.import_config(
            data=services.parse_yaml(text),
            environ=os.environ,
            dry_run=options["dry_run"],
            actor=actor,
        )
        for warning in report.warnings:
            self.stderr.write(f"Warning: {warning}")
        if report.errors:
            for error in report.errors:
                self.stderr.write(error)
            raise CommandError(
                f"Nothing imported: {len(report.errors)} problem(s), listed above.", returncode=1
            )
        for label, items in (
            ("create", report.created),
            ("update", report.updated),
            ("unchanged", report.unchanged),
        ):
            for item in items:
                self.stdout.write(f"{label:<10} {item}")
        created, updated = len(report.created), len(report.updated)
        if options["dry_run"]:
            self.stdout.write(
                f"Dry run: {created} to create, {updated} to update; nothing was changed."
            )
        else:
            self.stdout.write(f"Imported: {created} created, {updated} updated.")

    def _import_env(self, options: dict, actor: str) -> None:
        from providers.importexport.env_import import SKIPPED, import_env

        text = _read_env_text(options["file"])
        # On this machine, by its operator: the key files the variables name are read.
        report = import_env(text=text, dry_run=options["dry_run"], actor=actor, read_files=True)
        for problem in report.unreadable + report.warnings:
            self.stderr.write(f"Warning: {problem}")
        for row in report.rows:
            detail = f": {row.detail}" if row.detail else ""
            (self.stderr if row.action == SKIPPED else self.stdout).write(
                f"{row.action:<10} {row.subject}{detail}"
            )
        for var, reason in report.ignored:
            self.stdout.write(f"{'ignored':<10} {var} ({reason})")
        if not report.rows:
            self.stdout.write("The file describes no provider this import knows.")
        done = "Dry run, nothing was changed" if options["dry_run"] else "Imported"
        self.stdout.write(f"{done}: {report.summary()}.")
        if report.of(SKIPPED):
            raise CommandError(
                f"{len(report.of(SKIPPED))} item(s) skipped, listed above; the rest "
                + ("would be imported." if options["dry_run"] else "was imported."),
                returncode=1,
            )

    # --- users ------------------------------------------------------------------------
    def _user_add(self, options: dict, actor: str) -> None:
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise CommandError(PASSWORD_STDIN_EMPTY)
        user = user_create(
            username=options["name"], password=password, role=options["role"], actor=actor
        )
        self.stdout.write(f"Added user {user.get_username()} ({options['role']}).")

    # --- gateway tokens ---------------------------------------------------------------
    def _token_create(self, options: dict, actor: str) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from gateway.services import token_create

        days = options["expires_in_days"]
        expires_at = timezone.now() + timedelta(days=days) if days else None
        token, raw = token_create(
            name=options["name"],
            expires_at=expires_at,
            allowed_models=options["allow"],
            team=_team(options["team"]) if options["team"] else None,
            rpm=options["rpm"],
            tpm=options["tpm"],
            max_parallel=options["max_parallel"],
            budget=options["budget"],
            actor=actor,
        )
        self.stderr.write(f"Created token {token.name}. Copy it now: it is not shown again.")
        self.stdout.write(raw)

    def _token_list(self, options: dict, actor: str) -> None:
        from django.utils import timezone

        from gateway.models import AccessToken

        now = timezone.now()
        rows = [("NAME", "TEAM", "PREFIX", "STATE", "EXPIRES", "LAST USED", "LIMITS", "ALLOWED")]
        for t in AccessToken.objects.select_related("team"):
            rows.append(
                (
                    t.name,
                    t.team.name if t.team else "-",
                    t.prefix + "…",
                    t.state(now),
                    f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
                    f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
                    t.limits.compact(),
                    ", ".join(t.allowed_models) or ("the team's" if t.team else "all"),
                )
            )
        if len(rows) == 1:
            self.stdout.write("No tokens yet. Create one with `routing token create NAME`.")
            return
        for line in _table(rows):
            self.stdout.write(line)

    def _token_limits(self, options: dict, actor: str) -> None:
        from gateway.models import AccessToken
        from gateway.services import token_limits_set

        token = AccessToken.objects.filter(name=options["name"]).first()
        if token is None:
            raise CommandError(f"No token named {options['name']!r}.")
        token = token_limits_set(token=token, **_limits_given(options), actor=actor)
        shown = token.limits.describe() if token.limits else "no limits of its own"
        self.stdout.write(f"Token {token.name}: {shown}.")

    def _token_revoke(self, options: dict, actor: str) -> None:
        from gateway.models import AccessToken
        from gateway.services import token_revoke

        token = AccessToken.objects.filter(name=options["name"]).first()
        if token is None:
            raise CommandError(f"No token named {options['name']!r}.")
        token_revoke(token=token, actor=actor)
        self.stdout.write(f"Revoked token {token.name}.")

    # --- teams ------------------------------------------------------------------------
    def _team_add(self, options: dict, actor: str) -> None:
        from accounts.services import team_create

        team = team_create(
            name=options["name"],
            display_name=options["display_name"],
            allowed_models=options["allow"],
            actor=actor,
        )
        self.stdout.write(f"Added team {team.name}.")

    def _team_list(self, options: dict, actor: str) -> None:
        from django.db.models import Count, Q

        from accounts.models import Team

        # By name: Django leaves Meta.ordering out of a GROUP BY query (SQLite happened to
        # answer by name through the unique index; PostgreSQL did not).
        teams = Team.objects.order_by("name").annotate(
            members=Count("memberships", distinct=True),
            live_tokens=Count("tokens", filter=Q(tokens__revoked_at__isnull=True), distinct=True),
        )
        rows = [("NAME", "DISPLAY NAME", "MEMBERS", "LIVE TOKENS", "LIMITS", "MODELS")]
        for t in teams:
            models = ", ".join(t.allowed_models) or "all"
            name = _cell(t.display_name) or "-"
            rows.append(
                (t.name, name, str(t.members), str(t.live_tokens), t.limits.compact(), models)
            )
        if len(rows) == 1:
            self.stdout.write("No teams yet. Add one with `routing team add NAME`.")
            return
        for line in _table(rows):
            self.stdout.write(line)

    def _team_limits(self, options: dict, actor: str) -> None:
        from accounts.services import team_update

        team = team_update(team=_team(options["name"]), **_limits_given(options), actor=actor)
        shown = team.limits.describe()
        self.stdout.write(f"Team {team.name}: {shown}, all its tokens together.")

    def _team_remove(self, options: dict, actor: str) -> None:
        from accounts.services import team_remove

        team = _team(options["name"])
        team_remove(team=team, actor=actor)
        self.stdout.write(f"Removed team {team.name}.")

    def _team_member_add(self, options: dict, actor: str) -> None:
        from accounts.services import team_member_set

        team = _team(options["name"])
        team_member_set(team=team, user=options["user"], role=options["role"], actor=actor)
        self.stdout.write(f"{options['user']} is now team {team.name}'s {options['role']}.")

    def _team_member_remove(self, options: dict, actor: str) -> None:
        from accounts.services import team_member_remove

        team = _team(options["name"])
        team_member_remove(team=team, user=options["user"], actor=actor)
        self.stdout.write(f"Removed {options['user']} from team {team.name}.")

    def _team_member_list(self, options: dict, actor: str) -> None:
        team = _team(options["name"])
        rows = [("USER", "ROLE", "FROM SSO")]
        for m in team.memberships.select_related("user"):
            rows.append((m.user.get_username(), m.role, "yes" if m.from_sso else "no"))
        if len(rows) == 1:
            self.stdout.write(
                f"Team {team.name} has no members. Add one with "
                f"`routing team member add {team.name} USER --role member`."
            )
            return
        for line in _table(rows):
            self.stdout.write(line)

    # --- request log ------------------------------------------------------------------
    def _prune_requests(self, options: dict, actor: str) -> None:
        from usage.services import prune_requests

        deleted, cutoff = prune_requests(days=options["days"])
        self.stdout.write(
            f"Deleted {deleted} request-log record(s) older than {cutoff:%Y-%m-%d %H:%M} UTC."
        )

    # Scheduled work that every machine's cron may start: one run at a time across them all.
    RUN_ONCE = frozenset({"health-check", "prune-requests"})

    # Every (command, action) and the method that runs it, in one place a reader can grep.
    HANDLERS = {
        ("provider", "add"): _provider_add,
        ("provider", "edit"): _provider_edit,
        ("provider", "list"): _provider_list,
        ("provider", "show"): _provider_show,
        ("provider", "remove"): _provider_remove,
        ("provider", "test"): _provider_test,
        ("health-check", None): _health_check,
        ("default", "set"): _default_set,
        ("default", "show"): _default_show,
        ("rotate-key", None): _rotate_key,
        ("token", "create"): _token_create,
        ("token", "list"): _token_list,
        ("token", "revoke"): _token_revoke,
        ("token", "limits"): _token_limits,
        ("prune-requests", None): _prune_requests,
        ("export", None): _export,
        ("import-litellm", None): _import_litellm,
        ("import-env", None): _import_env,
        ("team", "add"): _team_add,
        ("team", "list"): _team_list,
        ("team", "remove"): _team_remove,
        ("team", "limits"): _team_limits,
        ("team", "member add"): _team_member_add,
        ("team", "member remove"): _team_member_remove,
        ("team", "member list"): _team_member_list,
        ("user", "add"): _user_add,
    }
