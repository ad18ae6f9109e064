"""Reading a LiteLLM proxy config for import: the YAML and env files, then each model_list
entry on its own (what kind, which provider connection, which model, in which role).

Nothing here touches the database; litellm_plan.py decides what the entries add up to.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from django.core.exceptions import ValidationError

from .. import kinds
from ..validators import validate_provider_name
from .litellm_export import ENV_REF, is_reserved_env_name

# LiteLLM spellings of a kind's prefix that the registry does not use itself.
PREFIX_ALIASES = {"ollama": "ollama_chat"}
MAX_CONFIG_BYTES = 512 * 1024

NOT_YAML = "The file is not valid YAML ({problem} at line {line}, column {column})."
NOT_A_CONFIG = "The file is not a LiteLLM config: expected a mapping with a model_list."
ENTRY_NOT_MAPPING = "not a mapping with model_name and litellm_params."
ENTRY_UNKNOWN_KEYS = "unsupported keys {keys}; an entry has model_name, litellm_params, model_info."
MODEL_NAME_MISSING = "model_name is missing or not text."
PARAMS_MISSING = "litellm_params is missing or not a mapping."
PARAMS_UNSUPPORTED = (
    "litellm_params {keys} are not supported by Routing Admin; remove them, or configure them "
    "in LiteLLM itself."
)
ENV_RESERVED = (
    "{where} reads os.environ/{var}, one of this app's own settings (SECRET_KEY, "
    "DATABASE_URL, ROUTING_*, DJANGO_*), which are never given to a provider. Put the value "
    "in a variable of its own (e.g. OPENAI_API_KEY) and reference that."
)
ENV_MISSING = "environment variable {var} is not set (the file reads {where} from it)."
NOT_TEXT = "{where} must be text."
NOT_A_NUMBER = "litellm_params.{key} must be a number."
NOT_A_BOOLEAN = "litellm_params.{key} must be true or false."
UNKNOWN_KIND = "model_info.kind {kind!r} is not a provider kind; choose one of: {choices}."
UNKNOWN_PREFIX = (
    "litellm_params.model {model!r} does not start with a provider prefix Routing Admin knows "
    "({prefixes}), e.g. openai/gpt-4o-mini."
)
PREFIX_MISMATCH = (
    "litellm_params.model {model!r} does not start with {prefix}/, as kind {kind} does."
)
NAME_MISMATCH = (
    "model_name {model_name!r} names provider {name!r} but model_info.provider says {other!r}."
)
MODEL_MISMATCH = (
    "model_name {model_name!r} must name the same model as litellm_params.model ({model!r}): "
    "Routing Admin addresses a provider's models as <provider>/<model id>, without aliases."
)
GROUP_NAME_INVALID = (
    "model_name {name!r} cannot be a routing group name: use lower-case letters, digits, - and "
    "_, starting with a letter or digit, at most 63 characters (callers use this name, so it "
    "is not renamed for you)."
)
INFO_IGNORED = "{label}: ignored model_info {keys}."
PARAM_IGNORED = "{label}: ignored {keys}: they apply to routing groups only."

_ENTRY_KEYS = {"model_name", "litellm_params", "model_info"}
_PARAM_KEYS = {
    "model",
    "api_base",
    "api_key",
    "api_version",
    "extra_headers",
    "timeout",
    "max_retries",
    "num_retries",
    "drop_params",
    "weight",
    "rpm",
    "tpm",
}
_DEPLOYMENT_KEYS = ("weight", "rpm", "tpm")


def _kind_params(kind: kinds.ProviderKind) -> set[str]:
    """The LiteLLM parameters only some kinds have (Bedrock's aws_*, Vertex AI's vertex_*)."""
    own = {kind.litellm_base_param, *kind.litellm_key_params, *kind.litellm_empty_params}
    return (own | {param for _name, param in kind.litellm_option_params}) - _PARAM_KEYS


_KIND_PARAM_KEYS = {param for kind in kinds.KINDS.values() for param in _kind_params(kind)}
PARAM_NOT_EMPTY = (
    "litellm_params.{key} is not supported by Routing Admin (it stores no such value); remove "
    "it or leave it empty."
)
KEY_UNUSABLE = "litellm_params.{key} must be {what}."


class InvalidEntry(Exception):
    """One entry cannot be imported; the message says why (and never holds a secret)."""


# --- Reading files -----------------------------------------------------------------------


def parse_yaml(text: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # Never str(exc): it quotes the offending line, which may hold a key.
        mark = exc.problem_mark
        raise ValidationError(
            NOT_YAML.format(
                problem=exc.problem or "syntax error",
                line=mark.line + 1 if mark else "?",
                column=mark.column + 1 if mark else "?",
            )
        ) from None
    except yaml.YAMLError:
        raise ValidationError(
            NOT_YAML.format(problem="syntax error", line="?", column="?")
        ) from None
    if not isinstance(data, dict) or "model_list" not in data:
        raise ValidationError(NOT_A_CONFIG)
    return data


def parse_env(text: str) -> dict[str, str]:
    """Values from .env text. No ${VAR} interpolation: it would read this server's own
    environment (its SECRET_KEY, say) into a key that is then sent to a provider."""
    from dotenv import dotenv_values

    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {name: value for name, value in values.items() if value is not None}


# --- Reading entries -----------------------------------------------------------------------


@dataclass(frozen=True)
class Conn:
    """How to reach a provider: entries with equal connections share one provider."""

    kind: str
    base_url: str  # "" when it is the kind's default
    api_key: str
    api_version: str
    headers: tuple[tuple[str, str], ...]
    # The kind's own settings (Provider.options), sorted.
    options: tuple[tuple[str, str], ...] = ()

    @property
    def effective_base_url(self) -> str:
        default = kinds.KINDS[self.kind].default_base_url_for(dict(self.options))
        return (self.base_url or default).rstrip("/")

    @property
    def identity(self) -> tuple:
        return (
            self.kind,
            self.effective_base_url,
            self.api_key,
            self.api_version,
            self.headers,
            self.options,
        )


@dataclass
class Entry:
    label: str
    model_name: str
    role: str  # "group", "provider" (<provider>/...) or "default"
    name: str | None  # the provider's name, when the file gives one
    conn: Conn
    model: str
    params: dict[str, Any]
    display_name: str | None = None  # model_info.display_name, when the file gives one


def _resolve(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith(ENV_REF):
        var = value.removeprefix(ENV_REF)
        if is_reserved_env_name(var):
            raise InvalidEntry(ENV_RESERVED.format(var=var, where=where))
        resolved = environ.get(var)
        if not resolved:
            raise InvalidEntry(ENV_MISSING.format(var=var, where=where))
        return resolved
    return value


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if value is None:
        return ""
    if isinstance(value, datetime.date):
        # YAML reads an unquoted api_version such as 2024-10-21 as a date.
        return value.isoformat()
    if not isinstance(value, str):
        raise InvalidEntry(NOT_TEXT.format(where=f"litellm_params.{key}"))
    return value.strip()


def _number(params: dict[str, Any], key: str, kind: type) -> Any:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEntry(NOT_A_NUMBER.format(key=key))
    if kind is int and value != int(value):
        raise InvalidEntry(NOT_A_NUMBER.format(key=key))
    return kind(value)


def _litellm_base(kind: kinds.ProviderKind, base_url: str) -> str:
    params = kind.litellm_params(
        model="m",
        base_url=base_url,
        api_key="",
        api_version="",
        headers={},
        timeout=1.0,
        max_retries=0,
    )
    return str(params.get(kind.litellm_base_param) or "").rstrip("/")


def _kind_and_model(model: Any, slug: Any, api_base: str) -> tuple[kinds.ProviderKind, str]:
    if not isinstance(model, str) or not model.strip():
        raise InvalidEntry(NOT_TEXT.format(where="litellm_params.model"))
    prefix, _, model_id = model.strip().partition("/")
    prefix = PREFIX_ALIASES.get(prefix, prefix)
    if slug is not None:
        if slug not in kinds.KINDS:
            raise InvalidEntry(UNKNOWN_KIND.format(kind=slug, choices=", ".join(kinds.KINDS)))
        kind = kinds.KINDS[slug]
        if prefix != kind.litellm_prefix or not model_id:
            raise InvalidEntry(
                PREFIX_MISMATCH.format(model=model, prefix=kind.litellm_prefix, kind=slug)
            )
        return kind, kind.model_from_litellm(model_id)
    candidates = [k for k in kinds.KINDS.values() if k.litellm_prefix == prefix]
    if not candidates or not model_id:
        known = sorted({k.litellm_prefix for k in kinds.KINDS.values()} | set(PREFIX_ALIASES))
        raise InvalidEntry(UNKNOWN_PREFIX.format(model=model, prefixes=", ".join(known)))
    # Kinds sharing a prefix (openai, openai_compatible): the one whose default base URL this
    # is, else the one that has no default.
    for kind in candidates:
        if kind.default_base_url and (
            not api_base or api_base.rstrip("/") == _litellm_base(kind, kind.default_base_url)
        ):
            return kind, kind.model_from_litellm(model_id)
    kind = next((k for k in candidates if k.base_url_required), candidates[0])
    return kind, kind.model_from_litellm(model_id)


def _kind_key(kind: kinds.ProviderKind, params: dict[str, Any]) -> str:
    for key in kind.litellm_key_params:
        value = params.get(key)
        if value in (None, ""):
            continue
        try:
            return kind.key_from_litellm(value)
        except ValueError as exc:
            what = "text" if str(exc) == "text" else str(exc)
            raise InvalidEntry(KEY_UNUSABLE.format(key=key, what=what)) from None
    return ""


def _kind_options(kind: kinds.ProviderKind, params: dict[str, Any]) -> tuple:
    if others := sorted((set(params) & _KIND_PARAM_KEYS) - _kind_params(kind)):
        raise InvalidEntry(PARAMS_UNSUPPORTED.format(keys=", ".join(others)))
    for key in kind.litellm_empty_params:
        if _text(params, key):
            raise InvalidEntry(PARAM_NOT_EMPTY.format(key=key))
    options = {name: _text(params, param) for name, param in kind.litellm_option_params}
    return tuple(sorted((name, value) for name, value in options.items() if value))


def _conn(kind: kinds.ProviderKind, params: dict[str, Any]) -> Conn:
    options = _kind_options(kind, params)
    api_base = _text(params, kind.litellm_base_param).rstrip("/")
    default = kind.default_base_url_for(dict(options))
    if kind.default_base_url and api_base == _litellm_base(kind, default):
        api_base = ""
    api_key = _kind_key(kind, params)
    if api_key == kind.placeholder_api_key:
        api_key = ""
    headers = params.get("extra_headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidEntry(NOT_TEXT.format(where="each litellm_params.extra_headers value"))
    return Conn(
        kind=kind.slug,
        base_url=api_base,
        api_key=api_key,
        api_version=_text(params, "api_version"),
        headers=tuple(sorted((str(k).strip(), v.strip()) for k, v in headers.items())),
        options=options,
    )


def _role(model_name: str, info_name: Any, model_id: str) -> tuple[str, str | None]:
    if info_name is not None and not isinstance(info_name, str):
        raise InvalidEntry(NOT_TEXT.format(where="model_info.provider"))
    if model_name == "default":
        return "default", info_name
    if "/" not in model_name:
        return "group", info_name
    name, _, rest = model_name.partition("/")
    if info_name and info_name != name:
        raise InvalidEntry(NAME_MISMATCH.format(model_name=model_name, name=name, other=info_name))
    if rest != model_id:
        raise InvalidEntry(MODEL_MISMATCH.format(model_name=model_name, model=model_id))
    return "provider", name


def parse_entry(n: int, raw: Any, environ: Mapping[str, str], warnings: list[str]) -> Entry:
    if not isinstance(raw, dict):
        raise InvalidEntry(ENTRY_NOT_MAPPING)
    if unknown := sorted(set(raw) - _ENTRY_KEYS):
        raise InvalidEntry(ENTRY_UNKNOWN_KEYS.format(keys=", ".join(unknown)))
    model_name, params, info = (raw.get(k) for k in ("model_name", "litellm_params", "model_info"))
    if not isinstance(model_name, str) or not model_name.strip():
        raise InvalidEntry(MODEL_NAME_MISSING)
    model_name = model_name.strip()
    if not isinstance(params, dict):
        raise InvalidEntry(PARAMS_MISSING)
    info = info if isinstance(info, dict) else {}
    if unknown := sorted(set(params) - _PARAM_KEYS - _KIND_PARAM_KEYS):
        raise InvalidEntry(PARAMS_UNSUPPORTED.format(keys=", ".join(unknown)))
    label = f"Entry {n} ({model_name})"
    if ignored := sorted(set(info) - {"provider", "kind", "display_name"}):
        warnings.append(INFO_IGNORED.format(label=label, keys=", ".join(ignored)))
    params = {k: _resolve(v, f"litellm_params.{k}", environ) for k, v in params.items()}
    if isinstance(params.get("extra_headers"), dict):
        params["extra_headers"] = {
            k: _resolve(v, f"header {k}", environ) for k, v in params["extra_headers"].items()
        }
    kind, model_id = _kind_and_model(
        params.get("model"), info.get("kind"), _text(params, "api_base")
    )
    role, name = _role(model_name, info.get("provider"), model_id)
    if role == "group":
        try:
            validate_provider_name(model_name)
        except ValidationError:
            raise InvalidEntry(GROUP_NAME_INVALID.format(name=model_name)) from None
    if role != "group" and (ignored := [k for k in _DEPLOYMENT_KEYS if k in params]):
        warnings.append(PARAM_IGNORED.format(label=label, keys=", ".join(ignored)))
    for key, number in (("timeout", float), ("max_retries", int), ("num_retries", int)):
        params[key] = _number(params, key, number)
    for key in _DEPLOYMENT_KEYS:
        params[key] = _number(params, key, int)
    # On a provider's entry: the provider's "Drop parameters" switch; on a group's: the group's.
    params["drop_params"] = params.get("drop_params")
    if params["drop_params"] is not None and not isinstance(params["drop_params"], bool):
        raise InvalidEntry(NOT_A_BOOLEAN.format(key="drop_params"))
    display_name = info.get("display_name")
    if display_name is not None and not isinstance(display_name, str):
        raise InvalidEntry(NOT_TEXT.format(where="model_info.display_name"))
    conn = _conn(kind, params)
    return Entry(label, model_name, role, name, conn, model_id, params, display_name)
