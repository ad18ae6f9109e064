"""Import providers from a `.env` file, as people keep them for the OpenAI SDK, LiteLLM & co.

`env_file` says what the file describes; this module applies it through the same services as
the dashboard. Unlike the LiteLLM config import, one bad value does not stop the rest: the
provider (or default) it belongs to is skipped and reported with the variable's name. Values
the file does not give are left as they are, and importing the same file twice changes
nothing. No report ever holds a key, at most its masked hint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from ..models import DefaultModel, Provider
from ..services import audit
from ..services.providers import KEEP, default_model_set, provider_create, provider_update
from .env_default import (
    DEFAULT_MODEL,
    PREFERRED_PROVIDER,
    default_target,
    only_target,
    preferred_target,
    prefix_of,
)
from .env_file import (
    IGNORED_SUPERSEDED,
    Candidate,
    EnvFile,
    Skip,
    assign_names,
    read_env_file,
    stored,
)

MAX_ENV_BYTES = 256 * 1024
CREATE, CHANGE, UNCHANGED, SKIPPED = "create", "change", "unchanged", "skipped"

LINE_UNREADABLE = (
    "Line {line} is not NAME=value and was skipped (its text is not shown: it may hold a key)."
)
NOT_SET = "{var} is not set: {message}"


@dataclass(frozen=True)
class Row:
    action: str  # CREATE, CHANGE, UNCHANGED or SKIPPED
    subject: str
    detail: str = ""
    variables: tuple[str, ...] = ()


@dataclass
class EnvImportReport:
    dry_run: bool
    rows: list[Row] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (variable, reason)
    unreadable: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Set when the import was rolled back because it would not do what its preview showed.
    stale: bool = False

    def of(self, action: str) -> list[Row]:
        return [row for row in self.rows if row.action == action]

    @property
    def has_changes(self) -> bool:
        return any(row.action in (CREATE, CHANGE) for row in self.rows)

    @property
    def digest(self) -> str:
        """Fingerprint of what the import does, to hold a confirmation to its preview."""
        rows = [[row.action, row.subject, row.detail] for row in self.rows]
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()

    def summary(self) -> str:
        counts = ((CREATE, "created"), (CHANGE, "changed"), (UNCHANGED, "unchanged"))
        parts = [f"{len(self.of(a))} {label}" for a, label in counts]
        parts.append(f"{len(self.of(SKIPPED))} skipped")
        return ", ".join(parts)


# --- Applying through the services -------------------------------------------------------------


def _reason(c: Candidate, exc: ValidationError) -> str:
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    parts = []
    for fld, messages in exc.message_dict.items():
        text, var = " ".join(messages), c.sources.get(fld)
        if var is None:
            parts.append(text)
        else:
            parts.append(
                f"{var}: {text}" if fld in c.given else NOT_SET.format(var=var, message=text)
            )
    return "; ".join(parts)


def _described(p: Provider) -> str:
    parts = [p.kind_info.label, p.effective_base_url]
    if p.api_key_hint:
        parts.append(f"key {p.api_key_hint}")
    if p.api_version:
        parts.append(f"API version {p.api_version}")
    labels = {setting.name: setting.label for setting in p.kind_info.fields}
    parts.extend(f"{labels.get(k, k).lower()} {v}" for k, v in (p.options or {}).items())
    if p.header_names:
        parts.append(f"headers {', '.join(p.header_names)}")
    if not p.enabled:
        parts.append("disabled")
    return ", ".join(parts)


def _changes(p: Provider, c: Candidate) -> tuple[list[str], dict[str, str]]:
    changes, fields = [], {}
    if p.kind != c.kind.slug:
        changes.append("kind")
        fields["kind"] = c.kind.slug
    if "base_url" in c.given and p.effective_base_url.rstrip("/") != c.effective_base_url:
        changes.append("base URL")
        fields["base_url"] = c.given["base_url"]
    if c.given.get("api_version", p.api_version) != p.api_version:
        changes.append("API version")
        fields["api_version"] = c.given["api_version"]
    merged = {**(p.options or {}), **c.options}
    if merged != (p.options or {}):
        changes.append("settings")
        fields["options"] = merged
    if c.given.get("api_key") not in (None, stored(p.get_api_key)):
        changes.append("API key")
    if c.headers is not None and stored(p.get_headers) != c.headers:
        changes.append("headers")
    if c.display_name is not None and c.display_name != p.display_name:
        changes.append("display name")
        fields["display_name"] = c.display_name
    for attr, value in c.settings.items():
        if getattr(p, attr) != value:
            changes.append(attr.replace("_", " "))
            fields[attr] = value
    return changes, fields


def _update(p: Provider, c: Candidate, report: EnvImportReport, actor) -> Provider:
    changes, fields = _changes(p, c)
    if not changes:
        report.rows.append(Row(UNCHANGED, c.label, _described(p), c.variables))
        return p
    # A new host needs the secrets again (the service refuses to send old ones there).
    moved = bool(fields.keys() & {"kind", "base_url", "options"})
    key = c.given.get("api_key")
    provider = provider_update(
        provider=p,
        actor=actor,
        api_key=key if key is not None and (moved or "API key" in changes) else KEEP,
        headers=c.headers if c.headers is not None and (moved or "headers" in changes) else KEEP,
        **fields,
    )
    report.rows.append(Row(CHANGE, c.label, ", ".join(changes), c.variables))
    return provider


def _apply_provider(c: Candidate, report: EnvImportReport, actor) -> Provider | None:
    if c.problem:
        report.rows.append(Row(SKIPPED, c.label, c.problem, c.variables))
        return None
    existing = Provider.objects.filter(name=c.name).first()
    try:
        if existing is not None:
            provider = _update(existing, c, report, actor)
        else:
            provider = provider_create(
                name=c.name,
                display_name=c.display_name or "",
                kind=c.kind.slug,
                base_url=c.given.get("base_url", ""),
                api_key=c.given.get("api_key", ""),
                headers=c.headers or {},
                api_version=c.given.get("api_version", ""),
                options=c.options,
                actor=actor,
                **c.settings,
            )
            report.rows.append(Row(CREATE, c.label, _described(provider), c.variables))
    except ValidationError as exc:
        report.rows.append(Row(SKIPPED, c.label, _reason(c, exc), c.variables))
        return None
    warnings = getattr(provider, "validation_warnings", ())  # set by the services
    # Reading the file already warned about its base URL, under the variable's name.
    base_url_var = c.sources.get("base_url")
    report.warnings.extend(
        f"{c.label}: {w}" for w in warnings if f"{base_url_var}: {w}" not in report.warnings
    )
    return provider


def _apply_default(target, variables: tuple[str, ...], report: EnvImportReport, actor) -> None:
    """Make `target()` (provider, model) the active default; a Skip it raises is reported."""
    try:
        provider, model = target()
        current = DefaultModel.objects.select_related("provider", "group").filter(id=1).first()
        label = f"{provider.name}/{model}"
        if current is not None and str(current) == label:
            report.rows.append(Row(UNCHANGED, f"default model {label}", "", variables))
            return
        default_model_set(provider=provider, model=model, actor=actor)
    except Skip as exc:
        report.rows.append(Row(SKIPPED, "default model", str(exc), variables))
        return
    except ValidationError as exc:
        detail = f"{variables[-1]}: {' '.join(exc.messages)}"
        report.rows.append(Row(SKIPPED, "default model", detail, variables))
        return
    detail = f"was {current}" if current is not None else ""
    report.rows.append(
        Row(CHANGE if current else CREATE, f"default model {label}", detail, variables)
    )


def _apply_defaults(env: EnvFile, done: list, report: EnvImportReport, actor) -> None:
    """DEFAULT_MODEL wins; else PREFERRED_PROVIDER's provider's default model; else the only
    provider default model the file gives."""
    value, preferred = env.value(DEFAULT_MODEL), env.value(PREFERRED_PROVIDER)
    if value:
        env.used.add(DEFAULT_MODEL)
        if preferred:
            env.reasons[PREFERRED_PROVIDER] = IGNORED_SUPERSEDED.format(used=DEFAULT_MODEL)
        _apply_default(partial(default_target, value, done), (DEFAULT_MODEL,), report, actor)
        return
    with_model = [(c, p) for c, p in done if c.default_model]
    if preferred:
        env.used.add(PREFERRED_PROVIDER)
        fits = [c for c, _ in with_model if prefix_of(preferred) in {c.kind.slug, c.home.slug}]
        variables = (PREFERRED_PROVIDER, *(c.sources["default_model"] for c in fits[:1]))
        _apply_default(partial(preferred_target, preferred, done), variables, report, actor)
    elif with_model:
        variables = tuple(c.sources["default_model"] for c, _ in with_model)
        _apply_default(partial(only_target, with_model), variables, report, actor)


@sensitive_variables("text", "env")
def import_env(
    *,
    text: str,
    dry_run: bool,
    actor: audit.Actor,
    expected: str | None = None,
    read_files: bool = False,
) -> EnvImportReport:
    """Create or update providers, and set the default model, from `.env` text.

    A dry run is the real import rolled back, so its report is exactly what the import would
    do. With `expected` (the digest of a preview's report) the import is kept only if it does
    exactly what that preview showed; otherwise it is rolled back and `stale` is set.
    `read_files`: read the key files variables name (the command line only).
    """
    report = EnvImportReport(dry_run=dry_run)
    env = read_env_file(text, read_files=read_files)
    report.unreadable = [LINE_UNREADABLE.format(line=n) for n in env.unreadable]
    report.warnings = env.warnings
    with transaction.atomic():
        assign_names(env)
        done = [(c, _apply_provider(c, report, actor)) for c in env.candidates if not c.duplicate]
        _apply_defaults(env, done, report, actor)
        report.stale = expected is not None and report.digest != expected
        if dry_run or report.stale:
            transaction.set_rollback(True)
    report.ignored = env.ignored()
    return report
