"""Which provider and model a `.env` file makes the active default: DEFAULT_MODEL in each form
projects write it, else PREFERRED_PROVIDER's provider's own default model, else the only
provider default model the file gives. Nothing here writes; env_import applies the answer.
"""

from __future__ import annotations

from ..kinds import KINDS
from ..models import Provider
from ..redact import redact
from .env_file import Candidate, Skip

DEFAULT_MODEL = "DEFAULT_MODEL"
PREFERRED_PROVIDER = "PREFERRED_PROVIDER"
# DEFAULT_MODEL=litellm/<vendor>/<model>: "through LiteLLM", which is how this app calls it.
LITELLM_WRAPPER = "litellm/"

DEFAULT_NO_PREFIX = (
    "{var}: write the model in LiteLLM's <prefix>/<model id> form, e.g. openai/gpt-4o-mini "
    "(also accepted: <prefix>:<model id> and litellm/<prefix>/<model id>)."
)
DEFAULT_NO_PROVIDER = (
    "{var}: no provider in this file is reached with the prefix {prefix}/ "
    "(the file's providers use: {known})."
)
DEFAULT_PROVIDER_SKIPPED = "{var}: its provider ({label}) was skipped."
DEFAULT_AMBIGUOUS = (
    "{var}: the prefix {prefix}/ fits more than one provider in this file: {candidates}. "
    "It was not set rather than guessed; choose the default model on the dashboard."
)
PREFERRED_UNKNOWN = "{var}: no provider in this file is of that kind (its providers: {known})."
PREFERRED_NO_MODEL = (
    "{var}: {called} has no default model in this file; set {model_vars}, or {default_var}."
)
PREFERRED_AMBIGUOUS = (
    "{var}: more than one provider in this file is of that kind: {candidates}. It was not set "
    "rather than guessed; use {default_var} instead."
)
DEFAULTS_AMBIGUOUS = (
    "Several providers in this file give a default model ({candidates}): set {preferred_var} "
    "or {default_var} to choose one. None was made the active default."
)
# LiteLLM reads <PREFIX>_API_KEY and <PREFIX>_API_BASE for a model prefix.
_PREFIX_SUFFIXES = ("_API_KEY", "_API_BASE", "_BASE_URL")


Done = list[tuple[Candidate, Provider | None]]


def _fit(prefix: str, c: Candidate) -> tuple[int, int, bool]:
    """How closely `c` answers to `prefix`, closest lowest: the prefix's rank for the kind the
    provider became, then for the kind whose variables the file used (OPENAI_BASE_URL
    pointing elsewhere makes an OpenAI-compatible provider, yet openai_compat/ means the
    OPENAI_COMPAT_* or OPENAI_COMPATIBLE_* one), then whether those variables are named after
    the prefix (OPENAI_COMPAT_API_KEY for openai_compat/)."""
    home = c.home.model_prefixes
    stem = prefix.upper()
    named = any(
        var.removesuffix(suffix) == stem
        for var in c.convention.api_key + c.convention.base_url
        for suffix in _PREFIX_SUFFIXES
    )
    own = home.index(prefix) if prefix in home else len(home)
    return c.kind.model_prefixes.index(prefix), own, not named


def _called(c: Candidate) -> str:
    return f"{c.name} (from {', '.join(c.variables)})" if c.name else c.label


def prefix_of(text: str) -> str:
    """openai-compat and openai_compat are one prefix."""
    return text.strip().lower().replace("-", "_")


def _split_model(value: str, known: set[str]) -> tuple[str, str]:
    """(prefix, model id) of DEFAULT_MODEL in each form projects write it: openai/gpt-4o,
    openai_compatible:gpt-4o, litellm/openai/gpt-4o. Ollama's tags (llama3.1:8b) keep their
    colon: it splits only after a known prefix, before any slash."""
    value = value.strip()
    if value.lower().startswith(LITELLM_WRAPPER):
        value = value[len(LITELLM_WRAPPER) :]
    colon, slash = value.find(":"), value.find("/")
    if colon > 0 and (slash < 0 or colon < slash) and prefix_of(value[:colon]) in known:
        return prefix_of(value[:colon]), value[colon + 1 :].strip()
    prefix, slash_found, model = value.partition("/")
    if not slash_found or not prefix.strip() or not model.strip():
        raise Skip(DEFAULT_NO_PREFIX.format(var=DEFAULT_MODEL))
    return prefix_of(prefix), model.strip()


def default_target(value: str, done: Done) -> tuple[Provider, str]:
    known = {x for kind in KINDS.values() for x in kind.model_prefixes}
    prefix, model = _split_model(value, known)
    fits = [(_fit(prefix, c), c, p) for c, p in done if prefix in c.kind.model_prefixes]
    if not fits:
        known = sorted({x for c, _ in done for x in c.kind.model_prefixes}) or ["none"]
        raise Skip(
            DEFAULT_NO_PROVIDER.format(
                var=DEFAULT_MODEL, prefix=redact(prefix), known=", ".join(known)
            )
        )
    best = min(fit for fit, _, _ in fits)
    closest = [(c, p) for fit, c, p in fits if fit == best]
    if len(closest) > 1:
        candidates = " or ".join(_called(c) for c, _ in closest)
        raise Skip(
            DEFAULT_AMBIGUOUS.format(
                var=DEFAULT_MODEL, prefix=redact(prefix), candidates=candidates
            )
        )
    ((c, provider),) = closest
    if provider is None:
        raise Skip(DEFAULT_PROVIDER_SKIPPED.format(var=DEFAULT_MODEL, label=c.label))
    return provider, model


def preferred_target(value: str, done: Done) -> tuple[Provider, str]:
    """PREFERRED_PROVIDER=openrouter: the default model the file gives that provider."""
    wanted = prefix_of(value)
    fits = [
        (c, p)
        for c, p in done
        if wanted in {c.kind.slug, c.home.slug, *c.kind.model_prefixes, *c.home.model_prefixes}
    ]
    if not fits:
        known = sorted({c.kind.slug for c, _ in done}) or ["none"]
        raise Skip(PREFERRED_UNKNOWN.format(var=PREFERRED_PROVIDER, known=", ".join(known)))
    fits = [(c, p) for c, p in fits if c.default_model] or fits
    if len(fits) > 1:
        candidates = " or ".join(_called(c) for c, _ in fits)
        raise Skip(
            PREFERRED_AMBIGUOUS.format(
                var=PREFERRED_PROVIDER, candidates=candidates, default_var=DEFAULT_MODEL
            )
        )
    ((c, provider),) = fits
    if not c.default_model:
        raise Skip(
            PREFERRED_NO_MODEL.format(
                var=PREFERRED_PROVIDER,
                called=_called(c),
                model_vars=" or ".join(c.convention.default_model) or "none",
                default_var=DEFAULT_MODEL,
            )
        )
    if provider is None:
        raise Skip(DEFAULT_PROVIDER_SKIPPED.format(var=PREFERRED_PROVIDER, label=c.label))
    return provider, c.default_model


def only_target(with_model: Done) -> tuple[Provider, str]:
    """No DEFAULT_MODEL nor PREFERRED_PROVIDER: the one provider default model the file has."""
    if len(with_model) > 1:
        raise Skip(
            DEFAULTS_AMBIGUOUS.format(
                candidates=", ".join(_called(c) for c, _ in with_model),
                preferred_var=PREFERRED_PROVIDER,
                default_var=DEFAULT_MODEL,
            )
        )
    ((c, provider),) = with_model
    if provider is None:
        raise Skip(DEFAULT_PROVIDER_SKIPPED.format(var=c.sources["default_model"], label=c.label))
    return provider, c.default_model
