"""What a process calls: the configuration as immutable entries, built by live.py.

A Snapshot holds every enabled provider (with its decrypted key, never printed), the
routing groups, the default and the gateway's tokens, resolves a requested model to a
target, and builds the LiteLLM Router for the groups once.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from limits.rules import Limits

from .. import kinds
from ..validators import validate_model_id
from .llm import bind_router_to_running_loop, litellm, retire_router, router_redis

NO_DEFAULT = (
    "No default model is set. Set one with `python manage.py routing default set PROVIDER MODEL` "
    "or on the dashboard, or pass model='<provider>/<model id>'."
)
UNKNOWN_PROVIDER = (
    "No enabled provider is named {name!r}. Address a model as '<provider name>/<model id>'; "
    "`python manage.py routing provider list` shows the providers."
)
MODEL_MISSING = "Model {model!r} names no model ID: use '<provider name>/<model id>'."
MODEL_INVALID = "Model {model!r} is not a valid model ID: {reason}"
# Per provider, the LiteLLM parameters of this many model IDs are kept; others are rebuilt.
PARAMS_CACHED = 256
KEY_UNDECRYPTABLE = (
    "The API key of provider {name!r} cannot be decrypted with the configured "
    "ROUTING_ENCRYPTION_KEYS; put the key it was encrypted with back in the list."
)


# Told of each model resolved, each Router built and each snapshot served
# (observability/setup.py: traces and metrics); None unless those are on.
observer: Any = None

GROUP_EMPTY = (
    "Routing group {name!r} has no enabled deployment: every provider it uses is disabled, "
    "or it has none. Add a deployment or enable a provider."
)


class UnknownModel(LookupError):
    """The requested model names nothing that is configured."""


class Unavailable(LookupError):
    """The model is configured, but nothing can serve it right now."""


@dataclass
class ProviderEntry:
    name: str
    kind: kinds.ProviderKind
    base_url: str
    # Never in a repr: an error report or a log line may print this entry.
    api_key: str = field(repr=False)
    api_version: str
    headers: dict[str, str] = field(repr=False)
    timeout: float
    max_retries: int
    undecryptable: bool = False
    # "Drop parameters this provider does not support": LiteLLM leaves them out of the call.
    drop_params: bool = False
    models: tuple[str, ...] = ()
    # The kind's own settings (Provider.options: a region, a project); not secret.
    options: dict[str, str] = field(default_factory=dict)
    _params: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _relayed: dict[str, tuple[str, dict[str, str]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def secrets(self) -> tuple[str, ...]:
        return (*self.kind.secret_values(self.api_key), *self.headers.values())

    def params(self, model: str) -> dict[str, Any]:
        if self.undecryptable:
            raise UnknownModel(KEY_UNDECRYPTABLE.format(name=self.name))
        built = self._params.get(model)
        if built is None:
            built = self.kind.litellm_params(
                model=model,
                base_url=self.base_url,
                api_key=self.api_key,
                api_version=self.api_version,
                headers=self.headers,
                timeout=self.timeout,
                max_retries=self.max_retries,
                options=self.options,
            )
            if self.drop_params:
                built["drop_params"] = True
            if len(self._params) < PARAMS_CACHED:
                self._params[model] = built
        return built

    def relay_request(self, function: str) -> tuple[str, dict[str, str]]:
        """A relayed `function` call's URL and headers, made once per entry (a changed
        configuration is a new entry): they are the same for every call."""
        made = self._relayed.get(function)
        if made is None:
            made = self._relayed[function] = (
                self.kind.relay_url(self.base_url, function),
                self.kind.relay_headers(self.api_key, self.headers),
            )
        return made


@dataclass(frozen=True)
class Target:
    provider: ProviderEntry
    model: str

    @property
    def params(self) -> dict[str, Any]:
        return self.provider.params(self.model)


@dataclass(frozen=True)
class DeploymentEntry:
    id: int
    provider: ProviderEntry
    model: str
    weight: int
    rpm: int | None
    tpm: int | None
    timeout: float | None
    # The group's "drop parameters" switch; the provider's own applies through its params.
    drop_params: bool = False

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"

    def router_params(self) -> dict[str, Any]:
        params = dict(self.provider.params(self.model))
        # The Router retries and falls back itself; per-call retries would multiply them.
        params.pop("num_retries", None)
        params["max_retries"] = 0
        if self.timeout:
            params["timeout"] = self.timeout
        if self.drop_params:
            params["drop_params"] = True
        params["weight"] = self.weight
        for name in ("rpm", "tpm"):
            if getattr(self, name):
                params[name] = getattr(self, name)
        return params


@dataclass(frozen=True)
class GroupEntry:
    name: str
    deployments: tuple[DeploymentEntry, ...]
    fallbacks: tuple[str, ...]


@dataclass(frozen=True)
class GroupTarget:
    group: GroupEntry
    snapshot: Snapshot

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for d in self.group.deployments for s in d.provider.secrets)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    allowed_models: tuple[str, ...]
    expires_at: Any  # datetime | None
    team: str = ""
    # The team's own list: a team's token is limited further by its own, never wider.
    team_allowed: tuple[str, ...] = ()
    # The token's own limits, and its team's (for all the team's tokens together).
    limits: Limits = Limits()
    team_limits: Limits = Limits()

    def allows(self, model: str) -> bool:
        return (not self.allowed_models or model in self.allowed_models) and (
            not self.team_allowed or model in self.team_allowed
        )


@dataclass(frozen=True)
class DefaultTarget:
    """The active default: a routing group (`group`), or one provider's model."""

    group: str = ""
    provider: str = ""
    model: str = ""


@dataclass
class Snapshot:
    version: int
    providers: dict[str, ProviderEntry] = field(repr=False)
    default: DefaultTarget | None
    groups: dict[str, GroupEntry] = field(default_factory=dict)
    router_settings: dict[str, Any] = field(default_factory=dict)
    # Live (not revoked) gateway tokens by SHA-256: authenticating costs no query.
    tokens: dict[str, TokenEntry] = field(default_factory=dict, repr=False)
    _router: Any = field(default=None, repr=False)
    _router_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # A newer snapshot replaced this one (calls that resolved against it may still finish).
    _retired: bool = field(default=False, repr=False)

    def resolve(self, model: str | None) -> Target | GroupTarget:
        if observer is None:
            return self._resolve(model)
        return observer.resolve(self._resolve, model)

    def _resolve(self, model: str | None) -> Target | GroupTarget:
        if model in (None, "", "default"):
            if self.default is None:
                raise UnknownModel(NO_DEFAULT)
            if self.default.group:
                return self._group(self.default.group)
            provider_name, model_id = self.default.provider, self.default.model
        elif "/" not in model and model in self.groups:
            return self._group(model)
        else:
            provider_name, _, model_id = model.partition("/")
            if not model_id:
                raise UnknownModel(MODEL_MISSING.format(model=model))
        entry = self.providers.get(provider_name)
        if entry is None:
            raise UnknownModel(UNKNOWN_PROVIDER.format(name=provider_name))
        if model_id not in entry._params:
            # A caller's model ID becomes part of the provider's URL for some kinds (Azure's
            # deployments, Gemini's models): "../" or "?" must never reach it.
            try:
                validate_model_id(model_id)
            except ValidationError as exc:
                message = MODEL_INVALID.format(model=model, reason=" ".join(exc.messages))
                raise UnknownModel(message) from None
        return Target(provider=entry, model=model_id)

    def _group(self, name: str) -> GroupTarget:
        group = self.groups[name]
        if not group.deployments:
            raise Unavailable(GROUP_EMPTY.format(name=name))
        return GroupTarget(group=group, snapshot=self)

    def deployment_label(self, deployment_id: Any) -> str:
        for group in self.groups.values():
            for deployment in group.deployments:
                if str(deployment.id) == str(deployment_id):
                    return deployment.label
        return ""

    def router(self) -> Any:
        """One LiteLLM Router for every group, built on first use and kept until the
        configuration version changes (a new snapshot)."""
        router = self._router
        if router is None:
            with self._router_lock:
                if self._router is None:
                    self._router = self._build_router()
                    if self._retired:
                        # Built for a call that began before the change: it routes that call,
                        # unhooked, so that it counts nothing twice for the newer Router.
                        retire_router(self._router)
                router = self._router
        if not self._retired:
            bind_router_to_running_loop(router)
        return router

    def retire(self) -> None:
        """A newer snapshot replaced this one: unhook its Router from LiteLLM's callbacks."""
        with self._router_lock:
            self._retired, router = True, self._router
        if router is not None:
            retire_router(router)

    def _build_router(self) -> Any:
        serving = {name for name, g in self.groups.items() if g.deployments}
        model_list = [
            {
                "model_name": group.name,
                "litellm_params": deployment.router_params(),
                "model_info": {
                    "id": str(deployment.id),
                    "deployment": deployment.label,
                    "kind": deployment.provider.kind.slug,
                },
            }
            for group in self.groups.values()
            for deployment in group.deployments
        ]
        fallbacks = [
            {group.name: [f for f in group.fallbacks if f in serving]}
            for group in self.groups.values()
            if any(f in serving for f in group.fallbacks)
        ]
        settings = self.router_settings
        _call_params_per_function()
        router = litellm().Router(model_list=model_list, fallbacks=fallbacks, **settings)
        shared = router_redis()
        if shared is not None:
            # Cooldowns, allowed_fails counts, usage-based routing's rpm/tpm: one Redis for
            # every Router of every process, instead of this Router's memory alone.
            router.update_redis_cache(shared)
        if observer is not None:
            observer.router_built(router, self)
        return router


@functools.cache
def _call_params_per_function() -> None:
    """A Router calls a deployment with the same parameters whatever the function; a kind
    whose parameters differ by function (Ollama and Bedrock embed through another LiteLLM
    prefix than they chat with) gets its own for the call here, from the registry's
    ProviderKind.call_params, as a call to one provider does (services/calls.py)."""
    from litellm.integrations.custom_logger import CustomLogger

    class CallParams(CustomLogger):
        async def async_pre_call_deployment_hook(self, kwargs: dict, call_type: Any) -> dict | None:
            metadata = kwargs.get("metadata") or kwargs.get("litellm_metadata") or {}
            kind = kinds.KINDS.get(str((metadata.get("model_info") or {}).get("kind")))
            if kind is None or call_type is None:
                return None
            return kind.call_params(str(getattr(call_type, "value", call_type)), kwargs)

    litellm().callbacks.append(CallParams())
