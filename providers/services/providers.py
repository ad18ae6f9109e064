"""Writes to providers and the default model. Every write validates, runs in one
transaction, records an audit event and bumps the configuration version."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from .. import crypto, kinds
from ..models import DefaultModel, Provider, RoutingGroup
from ..redact import mask
from ..routing import live
from ..validators import validate_base_url, validate_header, validate_model_id
from . import audit

KEEP: Any = object()  # "leave the stored secret as it is"

KEY_REQUIRED_FOR_NEW_HOST = (
    "The base URL now points to a different host: enter the API key again (or choose "
    "'Remove key'), so that the stored key is never sent to a host it was not saved for."
)
HEADERS_REQUIRED_FOR_NEW_HOST = (
    "The base URL now points to a different host: enter the custom headers again, so that "
    "their stored values are never sent to a host they were not saved for."
)
STALE_VERSION = (
    "Someone else changed provider {name!r} while you were editing it. Reload the page to see "
    "their change, then make yours again."
)
DEFAULT_PROVIDER_DELETE = (
    "Provider {name!r} holds the active default model. Switch the default to another provider "
    "first, then remove this one."
)
DEFAULT_PROVIDER_DISABLE = (
    "Provider {name!r} holds the active default model. Switch the default to another provider "
    "before disabling it."
)
DEFAULT_PROVIDER_DISABLED = "Provider {name!r} is disabled: enable it before making it the default."
PROVIDER_IN_GROUPS = (
    "Provider {name!r} serves routing groups ({groups}). Remove it from those groups first, "
    "or disable it to take it out of routing for now."
)
NOTHING_TO_REVERT = "There is no previous default model to return to."
DECLARED_MODELS_NOT_FOR_KIND = (
    "{label} lists its models itself: deployments are only named for kinds that cannot list "
    "theirs (Azure OpenAI)."
)
DECLARED_MODEL_INVALID = "Deployment {name!r}: {error}"

_PLAIN_FIELDS = (
    "name",
    "display_name",
    "kind",
    "base_url",
    "api_version",
    "options",
    "timeout",
    "max_retries",
    "drop_params",
    "enabled",
)
# The "Deployments" an admin names on a provider whose kind cannot list callable models.
_PLAIN_FIELDS += ("declared_models",)


def parse_model_names(text: str) -> list[str]:
    """Model names typed as one text (comma or newline separated), in order, once each."""
    names = (part.strip() for line in text.splitlines() for part in line.split(","))
    return list(dict.fromkeys(name for name in names if name))


def _refuse_declared_for_kind(provider: Provider, given: Any) -> None:
    """Deployments given for a kind that lists its own models are a mistake worth saying."""
    kind = kinds.KINDS.get(provider.kind)
    if given and kind is not None and not kind.shows_declared_models:
        message = DECLARED_MODELS_NOT_FOR_KIND.format(label=kind.label)
        raise ValidationError({"declared_models": [message]})


def validate_declared_models(names: list[str]) -> list[str]:
    """Each name checked as a model ID; every bad one reported, with its name."""
    cleaned, problems = [], []
    for name in names:
        try:
            cleaned.append(validate_model_id(str(name).strip()))
        except ValidationError as exc:
            problems.append(DECLARED_MODEL_INVALID.format(name=name, error=" ".join(exc.messages)))
    if problems:
        raise ValidationError(problems)
    return list(dict.fromkeys(cleaned))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _holds_secrets(func: Callable[..., Provider]) -> Callable[..., Provider]:
    """transaction.atomic, with the key and header values kept out of error reports: from
    the service's own frame, and from the atomic wrapper's, which holds the arguments too."""
    return sensitive_variables()(
        transaction.atomic(sensitive_variables("api_key", "headers")(func))
    )


@sensitive_variables("api_key")
def _set_api_key(provider: Provider, api_key: str) -> None:
    kind = kinds.KINDS.get(provider.kind)
    hint = mask(api_key)
    if kind is not None:
        try:
            api_key = kind.clean_api_key(api_key)
        except ValidationError as exc:
            raise ValidationError({"api_key": exc.messages}) from None
        hint = kind.key_hint(api_key) if api_key else ""
    provider.api_key_ciphertext = crypto.encrypt(api_key) if api_key else ""
    provider.api_key_hint = hint


@sensitive_variables("headers")
def _set_headers(provider: Provider, headers: dict[str, str]) -> None:
    provider.header_names = sorted(headers)
    provider.headers_ciphertext = crypto.encrypt(json.dumps(headers)) if headers else ""


def _clean_headers(headers: dict[str, str]) -> dict[str, str]:
    cleaned = {}
    for name, value in headers.items():
        clean_name, clean_value = validate_header(name, value)
        cleaned[clean_name] = clean_value
    return cleaned


def _validate(provider: Provider) -> list[str]:
    """Validate everything about the row; return warnings worth showing."""
    errors: dict[str, list] = {}
    warnings: list[str] = []
    kind = None
    try:
        kind = kinds.get_kind(provider.kind)
    except ValidationError as exc:
        errors["kind"] = exc.messages
    if kind is not None:
        provider.options = kind.clean_options(provider.options)
        for field, message in kind.field_errors(
            base_url=provider.base_url,
            has_api_key=bool(provider.api_key_ciphertext),
            api_version=provider.api_version,
            options=provider.options,
        ).items():
            errors.setdefault(field, []).append(message)
        if not kind.shows_declared_models:
            provider.declared_models = []  # a kind that lists its models names none
        try:
            provider.declared_models = validate_declared_models(provider.declared_models or [])
        except ValidationError as exc:
            errors["declared_models"] = exc.messages
        if kind.shows_declared_models and "declared_models" not in errors:
            # Callable at once: suggestions and /v1/models do not wait for the next test.
            provider.discovered_models = kind.callable_models(
                listed=[], declared=provider.declared_models
            )
        if provider.base_url and "base_url" not in errors:
            try:
                checked = validate_base_url(provider.base_url, local=kind.local)
                provider.base_url = checked.url
                warnings.extend(checked.warnings)
            except ValidationError as exc:
                errors["base_url"] = exc.messages
    try:
        provider.full_clean(exclude=list(errors))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return warnings


def _diff(before: dict[str, Any], provider: Provider) -> dict[str, Any]:
    return {
        field: [before[field], getattr(provider, field)]
        for field in _PLAIN_FIELDS
        if before[field] != getattr(provider, field)
    }


@_holds_secrets
def provider_create(
    *,
    name: str,
    kind: str,
    display_name: str = "",
    base_url: str = "",
    api_key: str = "",
    headers: dict[str, str] | None = None,
    api_version: str = "",
    options: dict[str, str] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    drop_params: bool = False,
    enabled: bool = True,
    declared_models: list[str] | None = None,
    actor: audit.Actor = None,
) -> Provider:
    provider = Provider(
        name=name.strip(),
        display_name=display_name.strip(),
        kind=kind,
        base_url=base_url.strip(),
        api_version=api_version.strip(),
        options=dict(options or {}),
        drop_params=drop_params,
        enabled=enabled,
        declared_models=list(declared_models or []),
        created_by=audit.actor_user(actor),
        updated_by=audit.actor_user(actor),
    )
    if timeout is not None:
        provider.timeout = timeout
    if max_retries is not None:
        provider.max_retries = max_retries
    _refuse_declared_for_kind(provider, declared_models)
    _set_api_key(provider, api_key.strip())
    _set_headers(provider, _clean_headers(headers or {}))
    provider.validation_warnings = _validate(provider)
    live.lock_config()
    provider.save()
    changes: dict[str, Any] = {f: [None, getattr(provider, f)] for f in _PLAIN_FIELDS}
    if api_key:
        changes["api_key"] = "set"
    if headers:
        changes["headers"] = f"set ({', '.join(provider.header_names)})"
    audit.record(actor=actor, action="provider.create", target=provider.name, changes=changes)
    live.bump_version()
    return provider


@_holds_secrets
def provider_update(
    *,
    provider: Provider,
    actor: audit.Actor = None,
    expected_version: int | None = None,
    api_key: Any = KEEP,
    headers: Any = KEEP,
    **fields: Any,
) -> Provider:
    """Change fields of a provider. `api_key`/`headers`: KEEP leaves them, "" / {} removes."""
    unknown = set(fields) - set(_PLAIN_FIELDS)
    if unknown:
        raise TypeError(f"provider_update() got unexpected fields: {sorted(unknown)}")
    live.lock_config()
    # Lock the row: two editors saving at once must not both pass the version check.
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    if expected_version is not None and locked.version != expected_version:
        raise ValidationError(STALE_VERSION.format(name=locked.name), code="stale")
    if fields.get("enabled") is False and locked.enabled:
        _refuse_if_default(locked, DEFAULT_PROVIDER_DISABLE)

    before = {field: getattr(locked, field) for field in _PLAIN_FIELDS}
    old_origin = _origin(locked.effective_base_url)
    for field, value in fields.items():
        setattr(locked, field, value.strip() if isinstance(value, str) else value)
    _refuse_declared_for_kind(locked, fields.get("declared_models"))
    errors = {}
    if _origin(locked.effective_base_url) != old_origin:
        if api_key is KEEP and locked.api_key_ciphertext:
            errors["api_key"] = [KEY_REQUIRED_FOR_NEW_HOST]
        if headers is KEEP and locked.headers_ciphertext:
            errors["headers"] = [HEADERS_REQUIRED_FOR_NEW_HOST]
    if errors:
        raise ValidationError(errors)

    changes = _diff(before, locked)
    if api_key is not KEEP:
        api_key = api_key.strip()
        if api_key or locked.api_key_ciphertext:
            changes["api_key"] = "changed" if api_key else "removed"
        _set_api_key(locked, api_key)
    if headers is not KEEP:
        cleaned = _clean_headers(headers)
        changes["headers"] = f"changed ({', '.join(sorted(cleaned)) or 'none'})"
        _set_headers(locked, cleaned)
    locked.validation_warnings = _validate(locked)
    locked.version += 1
    locked.updated_by = audit.actor_user(actor)
    locked.save()
    audit.record(actor=actor, action="provider.update", target=locked.name, changes=changes)
    live.bump_version()
    return locked


def _refuse_if_default(provider: Provider, message: str) -> None:
    if DefaultModel.objects.filter(id=1, provider=provider).exists():
        raise ValidationError(message.format(name=provider.name), code="holds_default")


@transaction.atomic
def provider_remove(*, provider: Provider, actor: audit.Actor = None) -> None:
    live.lock_config()
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    _refuse_if_default(locked, DEFAULT_PROVIDER_DELETE)
    groups = sorted(set(locked.deployments.values_list("group__name", flat=True)))
    if groups:
        raise ValidationError(
            PROVIDER_IN_GROUPS.format(name=locked.name, groups=", ".join(groups)), code="in_use"
        )
    # The "previous default" pointer is only a convenience for Revert; drop it with the row.
    name = locked.name
    locked.delete()
    audit.record(actor=actor, action="provider.remove", target=name, changes={})
    live.bump_version()


@transaction.atomic
def default_model_set(
    *,
    provider: Provider | None = None,
    model: str = "",
    group: RoutingGroup | None = None,
    actor: audit.Actor = None,
) -> DefaultModel:
    """Make one provider model, or one routing group, the active default."""
    if (group is None) == (provider is None):
        raise TypeError("default_model_set() takes a provider and model, or a group")
    # Concurrent switches are applied and audited one after the other, serialized on the
    # configuration row (live.py's lock order). The default row could not be that lock: the
    # first switch creates it, and a missing row locks nothing.
    live.lock_config()
    if provider is not None:
        model = validate_model_id(model.strip())
        provider = Provider.objects.select_for_update().get(pk=provider.pk)
        if not provider.enabled:
            raise ValidationError(DEFAULT_PROVIDER_DISABLED.format(name=provider.name))
        provider.kind_info.check_model(base_url=provider.effective_base_url, model=model)
        label = f"{provider.name}/{model}"
    else:
        group = RoutingGroup.objects.get(pk=group.pk)
        model = ""
        label = group.name
    current = (
        # of=("self",): PostgreSQL refuses to lock the nullable side of the outer joins.
        DefaultModel.objects.select_for_update(of=("self",))
        .select_related("provider", "group")
        .filter(id=1)
        .first()
    )
    if current is None:
        current = DefaultModel(id=1, version=0)
        previous = None
    else:
        previous = str(current)
        current.previous_provider, current.previous_model = current.provider, current.model
        current.previous_group = current.group
    current.provider, current.model, current.group = provider, model, group
    current.version += 1
    current.changed_by = audit.actor_user(actor)
    current.changed_by_name = audit.actor_name(actor)
    current.full_clean()
    current.save()
    audit.record(
        actor=actor, action="default.set", target="default", changes={"default": [previous, label]}
    )
    live.bump_version()
    return current


@transaction.atomic
def default_model_revert(*, actor: audit.Actor = None) -> DefaultModel:
    # Locked before reading, so that two reverts at once each see the other's result.
    live.lock_config()
    current = (
        DefaultModel.objects.select_related("previous_provider", "previous_group")
        .filter(id=1)
        .first()
    )
    if current is None or not current.previous_label:
        raise ValidationError(NOTHING_TO_REVERT, code="nothing_to_revert")
    if current.previous_group is not None:
        return default_model_set(group=current.previous_group, actor=actor)
    return default_model_set(
        provider=current.previous_provider, model=current.previous_model, actor=actor
    )


def default_model_get() -> DefaultModel | None:
    return (
        DefaultModel.objects.select_related(
            "provider", "group", "previous_provider", "previous_group"
        )
        .filter(id=1)
        .first()
    )


KEY_NOT_SENT_NEW_HOST = (
    "Tested without the stored API key: the base URL points to a different host than the one "
    "it was saved for. Enter the key again to test with it."
)


@sensitive_variables("api_key", "headers")
def provider_draft(
    *,
    kind: str,
    base_url: str = "",
    api_key: Any = KEEP,
    headers: Any = KEEP,
    api_version: str = "",
    options: dict[str, str] | None = None,
    timeout: float | None = None,
    declared_models: list[str] | None = None,
    saved: Provider | None = None,
) -> Provider:
    """An unsaved Provider from the values typed in the add/edit form, for "Test connection"
    before saving; never saved. The kind's required fields are checked as for a save. A
    stored key or stored headers (KEEP, on an edit form) are used only while the draft
    points at the host they were saved with; `draft.notes` then says what was left out."""
    draft = Provider(
        name=saved.name if saved is not None else "",
        kind=kind,
        base_url=base_url.strip(),
        api_version=api_version.strip(),
    )
    kind_info = kinds.get_kind(kind)
    draft.options = kind_info.clean_options(options)
    draft.notes = []
    draft.declared_models = list(declared_models or [])
    if timeout is not None:
        draft.timeout = timeout
    same_host = saved is not None and _origin(draft.effective_base_url) == _origin(
        saved.effective_base_url
    )
    if api_key is not KEEP:
        _set_api_key(draft, api_key.strip())
    elif saved is not None and saved.api_key_ciphertext:
        if same_host:
            draft.api_key_ciphertext, draft.api_key_hint = (
                saved.api_key_ciphertext,
                saved.api_key_hint,
            )
        else:
            draft.notes.append(KEY_NOT_SENT_NEW_HOST)
    if headers is not KEEP:
        _set_headers(draft, _clean_headers(headers))
    elif saved is not None and saved.headers_ciphertext and same_host:
        draft.header_names, draft.headers_ciphertext = saved.header_names, saved.headers_ciphertext
    errors = kind_info.field_errors(
        base_url=draft.base_url,
        has_api_key=bool(draft.api_key_ciphertext),
        api_version=draft.api_version,
        options=draft.options,
    )
    if "api_key" in errors and KEY_NOT_SENT_NEW_HOST in draft.notes:
        errors["api_key"] = KEY_REQUIRED_FOR_NEW_HOST
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})
    return draft
