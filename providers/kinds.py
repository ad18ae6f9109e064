"""The provider-kind registry: one dict, one small class per kind.

Everything kind-specific (defaults, required fields, the LiteLLM prefix, how to list
models, whether the kind may live on this machine) is a property or method here. Forms,
the command line, validation and the service layer all read it; nothing else branches on
the kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError

AZURE_AI_CLAUDE_NEEDS_ANTHROPIC_PATH = (
    "Claude models on Azure AI Foundry are served from the Anthropic endpoint: the base URL "
    "must end with /anthropic (e.g. https://<resource>.services.ai.azure.com/anthropic)."
)
API_VERSION_REQUIRED = "{label} needs an API version, e.g. {example}."
BASE_URL_REQUIRED = "{label} needs a base URL, e.g. {example}."
API_KEY_REQUIRED = "{label} needs an API key."
# Raised by parse_models: the answer was JSON, but not this kind's model list.
NOT_A_MODEL_LIST = "not a model list"
# Model lists are paged by some vendors; a provider never gets more pages than this.
MAX_MODEL_PAGES = 20
APP_NAME = "Routing Admin"
# OpenRouter credits usage to the app named by these headers; LiteLLM would name itself.
APP_REFERER = "https://routing-admin.local/"


class ModelListError(ValueError):
    """The answer was JSON, but not the kind's model-list format."""


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True)
class Probe:
    """What the connection test sends. `lists_models` False: the endpoint cannot list its
    models, so the request is one that the service refuses without generating anything
    (a 400 then proves the route and the key)."""

    url: str
    method: str = "GET"
    json: Any = None
    lists_models: bool = True
    ok_message: str = ""  # instead of the kind's, when it succeeds
    headers: tuple[tuple[str, str], ...] = ()  # sent besides the kind's auth headers


@dataclass(frozen=True)
class EnvConvention:
    """Variables that, in `.env` files in common use, describe one provider of a kind.

    Each tuple lists spellings of one setting, preferred first; the convention applies when
    one of its key or base URL variables is set.
    """

    api_key: tuple[str, ...] = ()
    base_url: tuple[str, ...] = ()
    api_version: tuple[str, ...] = ()
    # The provider's display name; its address name is derived from it.
    name: str = ""
    headers: str = ""  # extra headers, as a JSON object
    enabled: str = ""  # true/false; false imports the provider disabled
    # The provider's own default model: the active default when PREFERRED_PROVIDER names
    # this kind (or when it is the only one the file gives, and DEFAULT_MODEL is not set).
    default_model: tuple[str, ...] = ()
    timeout: str = ""  # seconds
    max_retries: str = ""
    # A base URL with this ending is the same server: OLLAMA_BASE_URL=http://host:11434/v1
    # names Ollama's OpenAI-compatible path, while this kind calls its native API.
    base_url_drop_suffix: str = ""
    # A base URL that is not this kind's own makes the provider that kind instead: with
    # OPENAI_BASE_URL pointing elsewhere, OPENAI_API_KEY is the key of a compatible server.
    other_host_kind: str = ""

    @property
    def variables(self) -> tuple[str, ...]:
        single = (self.name, self.headers, self.enabled, self.timeout, self.max_retries)
        return (
            self.api_key
            + self.base_url
            + self.api_version
            + self.default_model
            + tuple(v for v in single if v)
        )


@dataclass(frozen=True)
class ProviderKind:
    slug: str
    label: str
    litellm_prefix: str
    default_base_url: str = ""
    base_url_example: str = ""
    api_key_required: bool = True
    # Sent when no key is stored, for local servers that want some Bearer value; it also
    # stops LiteLLM from falling back to a key in os.environ.
    placeholder_api_key: str = ""
    local: bool = False
    api_version_required: bool = False
    api_version_example: str = ""
    # Sent when the provider has none: the version the vendor's official SDK sends.
    default_api_version: str = ""
    # The admin names the callable models on the provider (the "Deployments" field), when
    # the vendor's list holds names that cannot be called.
    shows_declared_models: bool = False
    # Headers sent unless the provider's own custom headers set them.
    default_headers: tuple[tuple[str, str], ...] = ()
    # LiteLLM's side requests (Ollama's /api/show) must carry the provider's key and headers.
    side_requests_need_auth: bool = False
    model_example: str = ""
    models_path: str = "/models"
    env_conventions: tuple[EnvConvention, ...] = ()
    # How LiteLLM's `prefix/model` (DEFAULT_MODEL in a .env file) names this kind, preferred
    # first; empty means litellm_prefix alone.
    env_model_prefixes: tuple[str, ...] = ()
    # Whether LiteLLM merges `extra_body` (parameters it has no argument for, such as
    # `metadata`) into this kind's request body; Anthropic's adapter sends it as a key instead.
    sends_extra_body: bool = True
    # What every model of this kind serves ("chat", "embeddings"...), for a vendor whose API
    # has one kind of model only; empty: its models say (providers/routing/modes.py).
    serves: tuple[str, ...] = ()

    @property
    def product(self) -> str:
        """The software's name, without the label's "(local)": "is vLLM running?"."""
        return self.label.removesuffix(" (local)")

    @property
    def base_url_required(self) -> bool:
        return not self.default_base_url

    @property
    def model_prefixes(self) -> tuple[str, ...]:
        return self.env_model_prefixes or (self.litellm_prefix,)

    @property
    def shows_api_version(self) -> bool:
        return self.api_version_required or bool(self.default_api_version)

    def effective_api_version(self, api_version: str) -> str:
        return api_version or self.default_api_version

    def field_errors(self, *, base_url: str, has_api_key: bool, api_version: str) -> dict:
        """Which required fields are missing for this kind, as {field: message}."""
        errors = {}
        if self.base_url_required and not base_url:
            errors["base_url"] = BASE_URL_REQUIRED.format(
                label=self.label, example=self.base_url_example
            )
        if self.api_key_required and not has_api_key:
            errors["api_key"] = API_KEY_REQUIRED.format(label=self.label)
        if self.api_version_required and not api_version:
            errors["api_version"] = API_VERSION_REQUIRED.format(
                label=self.label, example=self.api_version_example
            )
        return errors

    def check_model(self, *, base_url: str, model: str) -> None:
        """Kind-specific checks of a (base URL, model) pair; raise ValidationError."""

    def effective_api_key(self, api_key: str) -> str:
        return api_key or self.placeholder_api_key

    # --- model list (connection test and discovery) ---------------------------------
    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def models_url(self, base_url: str, api_version: str) -> str:
        return base_url.rstrip("/") + self.models_path

    def probe(self, base_url: str, api_version: str) -> Probe:
        return Probe(url=self.models_url(base_url, api_version))

    def next_models_url(self, url: str, payload: Any) -> str | None:
        """The next page of the model list, or None when `payload` was the last."""
        return None

    def parse_models(self, payload: Any) -> list[str]:
        """The model IDs in one page of the list; ModelListError if it is not one."""
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise ModelListError(NOT_A_MODEL_LIST)
        return _ids(payload["data"], "id")

    def callable_models(self, *, listed: list[str], declared: list[str]) -> list[str]:
        """The models advertised (suggestions, the gateway's /v1/models)."""
        return sorted(set(listed) | set(declared))

    def ok_message(self, *, listed: list[str], models: list[str]) -> str:
        return f"OK: {len(models)} model{'s' if len(models) != 1 else ''} found"

    # --- LiteLLM -----------------------------------------------------------------------
    def litellm_model(self, model: str) -> str:
        return f"{self.litellm_prefix}/{model}"

    def litellm_params(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str,
        api_version: str,
        headers: dict[str, str],
        timeout: float,
        max_retries: int,
    ) -> dict[str, Any]:
        # Base URL and key are always passed explicitly: LiteLLM would otherwise read
        # OPENAI_API_KEY & co. from os.environ, and the database is the only source here.
        params: dict[str, Any] = {
            "model": self.litellm_model(model),
            "api_base": base_url,
            "api_key": self.effective_api_key(api_key) or "no-key",
            "timeout": timeout,
            # Both: LiteLLM's own retries, and the OpenAI client's (which default to 2).
            "num_retries": max_retries,
            "max_retries": max_retries,
        }
        api_version = self.effective_api_version(api_version)
        if api_version:
            params["api_version"] = api_version
        extra = self.merged_headers(headers)
        if extra:
            params["extra_headers"] = extra
        return params

    def call_params(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        """LiteLLM's arguments for one provider's call of `function` ("aembedding"...)."""
        return params

    def merged_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """The kind's default headers under the provider's own (which win, whatever case)."""
        own = {name.lower() for name in headers}
        merged = {name: value for name, value in self.default_headers if name.lower() not in own}
        merged.update(headers)
        return merged


def _ids(items: Any, key: str) -> list[str]:
    if not isinstance(items, list):
        raise ModelListError(NOT_A_MODEL_LIST)
    return sorted(
        str(item[key]) for item in items if isinstance(item, dict) and item.get(key) is not None
    )


@dataclass(frozen=True)
class AnthropicKind(ProviderKind):
    models_path: str = "/v1/models"
    sends_extra_body: bool = False
    page_size: int = 1000  # the API's maximum; 20 without ?limit

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": "2023-06-01"}

    def models_url(self, base_url: str, api_version: str) -> str:
        return _with_query(super().models_url(base_url, api_version), limit=str(self.page_size))

    def next_models_url(self, url: str, payload: Any) -> str | None:
        last = payload.get("last_id") if isinstance(payload, dict) else None
        if last and payload.get("has_more"):
            return _with_query(url, after_id=str(last))
        return None


@dataclass(frozen=True)
class GeminiKind(ProviderKind):
    """The stored base URL is the host; LiteLLM wants it with /v1beta, the model list
    endpoint is /v1beta/models below the host."""

    models_path: str = "/v1beta/models"

    @staticmethod
    def _root(base_url: str) -> str:
        return base_url.rstrip("/").removesuffix("/v1beta")

    def litellm_params(self, *, base_url: str, **kwargs: Any) -> dict[str, Any]:
        return super().litellm_params(base_url=self._root(base_url) + "/v1beta", **kwargs)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        # A header, not the ?key= query parameter, so the key never lands in access logs.
        return {"x-goog-api-key": api_key}

    def models_url(self, base_url: str, api_version: str) -> str:
        return _with_query(self._root(base_url) + self.models_path, pageSize="1000")

    def next_models_url(self, url: str, payload: Any) -> str | None:
        token = payload.get("nextPageToken") if isinstance(payload, dict) else None
        return _with_query(url, pageToken=str(token)) if token else None

    def parse_models(self, payload: Any) -> list[str]:
        # The last page of a list may have no "models" at all.
        if not isinstance(payload, dict):
            raise ModelListError(NOT_A_MODEL_LIST)
        return [name.removeprefix("models/") for name in _ids(payload.get("models", []), "name")]


AZURE_DEPLOYMENTS_OK = (
    "OK: the resource answered. {count} deployment{s} named on the provider (Azure lists "
    "base models, not deployments: only the deployments named here are offered)."
)
AZURE_NO_DEPLOYMENTS_OK = (
    "OK: the resource answered. Name its deployments on the provider (Deployments) to offer "
    "them as models: Azure lists base models, not deployments."
)


@dataclass(frozen=True)
class AzureKind(ProviderKind):
    models_path: str = "/openai/models"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def models_url(self, base_url: str, api_version: str) -> str:
        query = urlencode({"api-version": self.effective_api_version(api_version)})
        return f"{base_url.rstrip('/')}{self.models_path}?{query}"

    def callable_models(self, *, listed: list[str], declared: list[str]) -> list[str]:
        # /openai/models lists the resource's base models; calls name a deployment.
        return sorted(set(declared))

    def ok_message(self, *, listed: list[str], models: list[str]) -> str:
        if not models:
            return AZURE_NO_DEPLOYMENTS_OK
        return AZURE_DEPLOYMENTS_OK.format(count=len(models), s="s" if len(models) != 1 else "")


AZURE_AI_ANTHROPIC_OK = (
    "OK: the Anthropic endpoint answered and accepted the key. It cannot list its models, "
    "so the test sent an empty request, which generates nothing and costs no tokens."
)


@dataclass(frozen=True)
class AzureAIKind(ProviderKind):
    """Three endpoints behind one kind, told apart by the base URL's path:
    `.../models` (the model inference API: api-version required, /info describes the
    model), `.../anthropic` (Claude, Anthropic's wire format, no model list) and
    `.../openai/v1` (OpenAI's v1 API as it is, no api-version)."""

    models_path: str = "/info"

    def _is_anthropic_endpoint(self, base_url: str) -> bool:
        return base_url.rstrip("/").endswith("/anthropic")

    def _is_openai_v1(self, base_url: str) -> bool:
        return base_url.rstrip("/").endswith("/openai/v1")

    def check_model(self, *, base_url: str, model: str) -> None:
        if model.lower().startswith("claude") and not self._is_anthropic_endpoint(base_url):
            raise ValidationError(AZURE_AI_CLAUDE_NEEDS_ANTHROPIC_PATH, code="azure_ai_claude")

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key, "Authorization": f"Bearer {api_key}"}

    def models_url(self, base_url: str, api_version: str) -> str:
        base = base_url.rstrip("/")
        if self._is_openai_v1(base):
            return base + "/models"
        version = self.effective_api_version(api_version)
        return f"{base}{self.models_path}?{urlencode({'api-version': version})}"

    def probe(self, base_url: str, api_version: str) -> Probe:
        if self._is_anthropic_endpoint(base_url):
            # Foundry's Anthropic endpoint has no model list (its SDK disables listing).
            url = base_url.rstrip("/") + "/v1/messages"
            return Probe(
                url=url,
                method="POST",
                json={},
                lists_models=False,
                ok_message=AZURE_AI_ANTHROPIC_OK,
                headers=(("anthropic-version", "2023-06-01"),),
            )
        return super().probe(base_url, api_version)

    def parse_models(self, payload: Any) -> list[str]:
        # /info describes the one model the endpoint serves; /openai/v1/models is a list.
        if isinstance(payload, dict) and isinstance(payload.get("model_name"), str):
            return [payload["model_name"]]
        return super().parse_models(payload)

    def litellm_params(self, *, model: str, base_url: str, api_version: str, **kwargs: Any):
        if self._is_openai_v1(base_url):
            # LiteLLM adds /models to any services.ai.azure.com base; this endpoint is
            # OpenAI's API as it is, so it is called as one.
            params = super().litellm_params(
                model=model, base_url=base_url, api_version="", **kwargs
            )
            params.pop("api_version", None)
            params["model"] = f"openai/{model}"
            return params
        if self._is_anthropic_endpoint(base_url):
            params = super().litellm_params(
                model=model, base_url=base_url, api_version="", **kwargs
            )
            params.pop("api_version", None)
            return params
        return super().litellm_params(
            model=model, base_url=base_url, api_version=api_version, **kwargs
        )


@dataclass(frozen=True)
class TogetherKind(ProviderKind):
    def parse_models(self, payload: Any) -> list[str]:
        # GET /v1/models answers a bare JSON array of models.
        return _ids(payload, "id")


@dataclass(frozen=True)
class OllamaKind(ProviderKind):
    models_path: str = "/api/tags"
    side_requests_need_auth: bool = True

    def parse_models(self, payload: Any) -> list[str]:
        if not isinstance(payload, dict):
            raise ModelListError(NOT_A_MODEL_LIST)
        return _ids(payload.get("models"), "name")

    def call_params(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        # LiteLLM embeds through "ollama/" (Ollama's /api/embed); its chat adapter's prefix,
        # "ollama_chat/", has no embeddings.
        if function != "aembedding":
            return params
        model = params["model"].removeprefix(f"{self.litellm_prefix}/")
        return {**params, "model": f"ollama/{model}"}


KINDS: dict[str, ProviderKind] = {
    kind.slug: kind
    for kind in (
        ProviderKind(
            slug="openai",
            label="OpenAI",
            litellm_prefix="openai",
            default_base_url="https://api.openai.com/v1",
            model_example="gpt-4o-mini",
            env_conventions=(
                EnvConvention(
                    api_key=("OPENAI_API_KEY",),
                    base_url=("OPENAI_BASE_URL", "OPENAI_API_BASE"),
                    other_host_kind="openai_compatible",
                ),
            ),
        ),
        AnthropicKind(
            slug="anthropic",
            label="Anthropic",
            litellm_prefix="anthropic",
            default_base_url="https://api.anthropic.com",
            model_example="claude-sonnet-4-5",
            serves=("chat",),
            env_conventions=(
                EnvConvention(api_key=("ANTHROPIC_API_KEY",), base_url=("ANTHROPIC_BASE_URL",)),
            ),
        ),
        GeminiKind(
            slug="gemini",
            label="Google Gemini (AI Studio)",
            litellm_prefix="gemini",
            default_base_url="https://generativelanguage.googleapis.com",
            model_example="gemini-2.5-flash",
            env_conventions=(EnvConvention(api_key=("GEMINI_API_KEY", "GOOGLE_API_KEY")),),
        ),
        AzureKind(
            slug="azure",
            label="Azure OpenAI",
            litellm_prefix="azure",
            base_url_example="https://<resource>.openai.azure.com",
            api_version_required=True,
            api_version_example="2024-10-21",
            model_example="<deployment name>",
            shows_declared_models=True,
            env_conventions=(
                EnvConvention(
                    api_key=("AZURE_API_KEY",),
                    base_url=("AZURE_API_BASE",),
                    api_version=("AZURE_API_VERSION",),
                ),
                EnvConvention(
                    api_key=("AZURE_OPENAI_API_KEY",),
                    base_url=("AZURE_OPENAI_ENDPOINT",),
                    api_version=("OPENAI_API_VERSION", "AZURE_API_VERSION"),
                ),
            ),
        ),
        AzureAIKind(
            slug="azure_ai",
            label="Azure AI Foundry",
            litellm_prefix="azure_ai",
            base_url_example="https://<resource>.services.ai.azure.com/models",
            # What the official azure-ai-inference SDK sends (its _configuration.py).
            default_api_version="2024-05-01-preview",
            api_version_example="2024-05-01-preview",
            model_example="DeepSeek-R1",
            env_conventions=(
                EnvConvention(
                    api_key=("AZURE_AI_API_KEY",),
                    base_url=("AZURE_AI_API_BASE",),
                    api_version=("AZURE_AI_API_VERSION",),
                ),
            ),
        ),
        ProviderKind(
            slug="openrouter",
            label="OpenRouter",
            litellm_prefix="openrouter",
            default_base_url="https://openrouter.ai/api/v1",
            model_example="openai/gpt-4o-mini",
            default_headers=(("HTTP-Referer", APP_REFERER), ("X-Title", APP_NAME)),
            env_conventions=(
                EnvConvention(
                    api_key=("OPENROUTER_API_KEY",),
                    base_url=("OPENROUTER_BASE_URL",),
                    default_model=("OPENROUTER_DEFAULT_MODEL", "OPENROUTER_MODEL"),
                ),
            ),
        ),
        ProviderKind(
            slug="groq",
            label="Groq",
            litellm_prefix="groq",
            default_base_url="https://api.groq.com/openai/v1",
            model_example="llama-3.3-70b-versatile",
            env_conventions=(EnvConvention(api_key=("GROQ_API_KEY",)),),
        ),
        TogetherKind(
            slug="together",
            label="Together AI",
            litellm_prefix="together_ai",
            default_base_url="https://api.together.xyz/v1",
            model_example="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            env_conventions=(EnvConvention(api_key=("TOGETHER_API_KEY", "TOGETHERAI_API_KEY")),),
            env_model_prefixes=("together_ai", "together"),
        ),
        ProviderKind(
            slug="mistral",
            label="Mistral",
            litellm_prefix="mistral",
            default_base_url="https://api.mistral.ai/v1",
            model_example="mistral-small-latest",
            env_conventions=(EnvConvention(api_key=("MISTRAL_API_KEY",)),),
        ),
        ProviderKind(
            slug="deepseek",
            label="DeepSeek",
            litellm_prefix="deepseek",
            default_base_url="https://api.deepseek.com/v1",
            model_example="deepseek-chat",
            serves=("chat",),
            env_conventions=(EnvConvention(api_key=("DEEPSEEK_API_KEY",)),),
        ),
        ProviderKind(
            slug="openai_compatible",
            label="OpenAI-compatible endpoint",
            litellm_prefix="openai",
            base_url_example="https://llm.example.com/v1",
            api_key_required=False,
            model_example="my-model",
            env_conventions=(
                EnvConvention(
                    api_key=("OPENAI_COMPAT_API_KEY",),
                    base_url=("OPENAI_COMPAT_API_BASE", "OPENAI_COMPAT_BASE_URL"),
                ),
                EnvConvention(
                    api_key=("OPENAI_COMPATIBLE_API_KEY",),
                    base_url=("OPENAI_COMPATIBLE_BASE_URL",),
                    name="OPENAI_COMPATIBLE_PROVIDER_NAME",
                    headers="OPENAI_COMPATIBLE_CUSTOM_HEADERS",
                    enabled="OPENAI_COMPATIBLE_ENABLED",
                    default_model=("OPENAI_COMPATIBLE_DEFAULT_MODEL",),
                    timeout="OPENAI_COMPATIBLE_TIMEOUT",
                    max_retries="OPENAI_COMPATIBLE_MAX_RETRIES",
                ),
            ),
            # "openai/" last: it means OpenAI itself when the file also has OPENAI_API_KEY.
            env_model_prefixes=("openai_compat", "openai_compatible", "openai"),
        ),
        OllamaKind(
            slug="ollama",
            label="Ollama (local)",
            litellm_prefix="ollama_chat",
            default_base_url="http://localhost:11434",
            api_key_required=False,
            placeholder_api_key="ollama",
            local=True,
            model_example="llama3.2",
            env_conventions=(
                EnvConvention(
                    base_url=("OLLAMA_API_BASE", "OLLAMA_BASE_URL", "OLLAMA_HOST"),
                    default_model=("OLLAMA_DEFAULT_MODEL", "OLLAMA_MODEL"),
                    base_url_drop_suffix="/v1",
                ),
            ),
            env_model_prefixes=("ollama_chat", "ollama"),
        ),
        ProviderKind(
            slug="lm_studio",
            label="LM Studio (local)",
            litellm_prefix="lm_studio",
            default_base_url="http://127.0.0.1:1234/v1",
            api_key_required=False,
            placeholder_api_key="lm-studio",
            local=True,
            model_example="qwen2.5-7b-instruct",
            env_conventions=(
                EnvConvention(
                    api_key=("LM_STUDIO_API_KEY", "LMSTUDIO_API_KEY"),
                    base_url=("LMSTUDIO_BASE_URL", "LM_STUDIO_API_BASE"),
                ),
            ),
        ),
        ProviderKind(
            slug="vllm",
            label="vLLM (local)",
            litellm_prefix="hosted_vllm",
            default_base_url="http://127.0.0.1:8000/v1",
            api_key_required=False,
            placeholder_api_key="EMPTY",
            local=True,
            model_example="meta-llama/Llama-3.1-8B-Instruct",
            env_conventions=(
                EnvConvention(
                    api_key=("VLLM_API_KEY", "HOSTED_VLLM_API_KEY"),
                    base_url=("VLLM_BASE_URL", "HOSTED_VLLM_API_BASE"),
                ),
            ),
            env_model_prefixes=("hosted_vllm", "vllm"),
        ),
    )
}

CHOICES = [(slug, kind.label) for slug, kind in KINDS.items()]
UNKNOWN_KIND = "Unknown provider kind {kind!r}. Choose one of: {choices}."


def get_kind(slug: str) -> ProviderKind:
    try:
        return KINDS[slug]
    except KeyError:
        raise ValidationError(
            UNKNOWN_KIND.format(kind=slug, choices=", ".join(KINDS)), code="unknown_kind"
        ) from None
