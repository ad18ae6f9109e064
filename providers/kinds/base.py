"""What every provider kind is made of: the ProviderKind base class and its defaults (an
OpenAI-style API with a Bearer key), the connection test's Probe and the `.env` conventions.

Kinds that differ say so by overriding a field or a method in their own module (vendors.py,
azure.py, bedrock.py, vertex.py); the registry itself is the KINDS dict in __init__.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..redact import mask

API_VERSION_REQUIRED = "{label} needs an API version, e.g. {example}."
BASE_URL_REQUIRED = "{label} needs a base URL, e.g. {example}."
API_KEY_REQUIRED = "{label} needs an API key."
SETTING_REQUIRED = "{label} needs {field}, e.g. {example}."
SETTING_INVALID = "{field} {value!r} does not look right: write it like {example}."
# Raised by parse_models: the answer was JSON, but not this kind's model list.
NOT_A_MODEL_LIST = "not a model list"
# Model lists are paged by some vendors; a provider never gets more pages than this.
MAX_MODEL_PAGES = 20
APP_NAME = "Routing Admin"
# OpenRouter credits usage to the app named by these headers; LiteLLM would name itself.
APP_REFERER = "https://routing-admin.local/"

# What the gateway relays itself (providers/services/relay.py) for kinds that speak OpenAI's
# wire format: per LiteLLM function, the path below the base URL and the parameters a relayed
# call may carry. These are the parameters LiteLLM (1.106) sends to such a kind as they are;
# a call with any other (one LiteLLM renames, drops or refuses for the kind) goes through
# LiteLLM, so that the caller sees the same either way.
RELAY_PATHS = {
    "acompletion": "/chat/completions",
    "aembedding": "/embeddings",
    "atext_completion": "/completions",
}
RELAYED_CHAT = frozenset(
    {
        "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens",
        "modalities", "n", "parallel_tool_calls", "presence_penalty", "prompt_cache_key",
        "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier",
        "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
        "top_logprobs", "top_p", "user",
    }
)  # fmt: skip
RELAYED_TEXT = frozenset(
    {
        "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
        "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix",
        "temperature", "top_p", "user",
    }
)  # fmt: skip


class ModelListError(ValueError):
    """The answer was JSON, but not the kind's model-list format."""


class AuthFailed(Exception):
    """The kind could not authenticate a request (no token); the message is safe to show."""


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

    @property
    def body(self) -> bytes:
        """What is sent, as bytes: a signature is computed over these very bytes."""
        if self.json is None:
            return b""
        return json.dumps(self.json, separators=(",", ":")).encode()


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
    # The kind's settings (its KindFields, by name), each with its spellings, preferred first.
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Variables naming a file that holds the key (GOOGLE_APPLICATION_CREDENTIALS): read by
    # the command-line import only, never by the dashboard's (the file is on the server).
    api_key_file: tuple[str, ...] = ()

    @property
    def variables(self) -> tuple[str, ...]:
        single = (self.name, self.headers, self.enabled, self.timeout, self.max_retries)
        return (
            self.api_key
            + self.api_key_file
            + tuple(var for _name, spellings in self.options for var in spellings)
            + self.base_url
            + self.api_version
            + self.default_model
            + tuple(v for v in single if v)
        )


@dataclass(frozen=True)
class KindField:
    """A setting only some kinds have (Bedrock's region, Vertex AI's project), stored in
    Provider.options under `name`. Not secret: secrets go in the key field."""

    name: str
    label: str
    example: str = ""
    help_text: str = ""
    required: bool = False
    pattern: str = ""  # what a valid value fully matches, when set

    def error(self, kind_label: str, value: str) -> str | None:
        if not value:
            if self.required:
                return SETTING_REQUIRED.format(
                    label=kind_label, field=self.label.lower(), example=self.example
                )
            return None
        if self.pattern and not re.fullmatch(self.pattern, value):
            return SETTING_INVALID.format(field=self.label, value=value[:64], example=self.example)
        return None


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
    # Whether a Responses API call (/v1/responses) goes to this kind's chat completions API
    # instead: LiteLLM calls `/responses` on any server it knows as "openai", and servers that
    # copy OpenAI's chat API mostly lack it. Kinds LiteLLM knows to lack it, it bridges itself.
    bridges_responses: bool = False
    # Whether the vendor has an embeddings API that LiteLLM calls; without one, /v1/embeddings
    # is refused before any call (providers/services/apis.py).
    embeds: bool = True
    # What every model of this kind serves ("chat", "embeddings"...), for a vendor whose API
    # has one kind of model only; empty: its models say (providers/routing/modes.py).
    serves: tuple[str, ...] = ()
    # Settings beyond the common ones, shown on the form after the base URL.
    fields: tuple[KindField, ...] = ()
    # The calls the gateway relays to this kind without LiteLLM: (LiteLLM function, the
    # parameters a relayed call may carry), see RELAY_PATHS. Empty: LiteLLM makes every call.
    relays: tuple[tuple[str, frozenset[str]], ...] = ()
    # Sent in every relayed chat body, as LiteLLM sends it (OpenRouter's usage accounting).
    relay_chat_body: tuple[tuple[str, Any], ...] = ()
    # How LiteLLM words this kind's upstream errors, which a relayed call words the same:
    # "<name>Exception - <detail>"; `relay_error_message`: the detail is the error body's
    # message (LiteLLM calls the kind through the OpenAI SDK), else the body as it came.
    relay_error_name: str = ""
    relay_error_message: bool = False
    # What the key field holds for this kind, and how the form shows it.
    api_key_label: str = "API key"
    api_key_help: str = ""
    api_key_multiline: bool = False
    # LiteLLM config names (import and export): where the base URL goes, where the key goes
    # (the first one a config sets is it), the settings' parameters, and parameters the kind
    # always sends empty (a config that gives one a value cannot be imported).
    litellm_base_param: str = "api_base"
    litellm_key_params: tuple[str, ...] = ("api_key",)
    litellm_option_params: tuple[tuple[str, str], ...] = ()
    litellm_empty_params: tuple[str, ...] = ()

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

    def default_base_url_for(self, options: dict | None) -> str:
        """The base URL used when the provider has none (kinds with a region say which)."""
        return self.default_base_url

    @property
    def example_options(self) -> dict[str, str]:
        return {f.name: f.example for f in self.fields if f.example}

    def clean_options(self, options: dict | None) -> dict[str, str]:
        """This kind's settings from `options`, stripped; others dropped. No checks here:
        field_errors reports what is missing or malformed."""
        given = options or {}
        cleaned = {f.name: str(given.get(f.name) or "").strip() for f in self.fields}
        return {name: value for name, value in cleaned.items() if value}

    def model_from_litellm(self, model_id: str) -> str:
        """The model ID in a LiteLLM `prefix/...` model name (after the prefix)."""
        return model_id

    def key_from_litellm(self, value: Any) -> str:
        """A key as a LiteLLM config gives it; ValueError (a safe message) if unusable."""
        if not isinstance(value, str):
            raise ValueError("text")
        return value.strip()

    def clean_api_key(self, api_key: str) -> str:
        """The key as stored; raise ValidationError (never quoting it) when malformed."""
        return api_key

    def key_hint(self, api_key: str) -> str:
        """What pages show of a stored key."""
        return mask(api_key)

    def secret_values(self, api_key: str) -> tuple[str, ...]:
        """Every text to redact from errors and logs for this key (a JSON key's parts too)."""
        return (api_key,) if api_key else ()

    def field_errors(
        self, *, base_url: str, has_api_key: bool, api_version: str, options: dict | None = None
    ) -> dict:
        """Which required fields are missing (or malformed settings) for this kind, as
        {field: message}."""
        errors = {}
        for setting in self.fields:
            message = setting.error(self.label, str((options or {}).get(setting.name) or ""))
            if message:
                errors[setting.name] = message
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

    def request_headers(
        self, *, method: str, url: str, body: bytes, api_key: str, options: dict, timeout: float
    ) -> dict[str, str]:
        """The auth headers of one connection-test request; kinds that sign each request
        (AWS SigV4) or trade the key for a token (Google OAuth) override this."""
        return self.auth_headers(api_key)

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
        options: dict | None = None,
    ) -> dict[str, Any]:
        """LiteLLM's arguments for calls to `model`: the kind's own (connection_params), then
        what every kind sends alike."""
        params: dict[str, Any] = {
            "model": self.litellm_model(model),
            **self.connection_params(
                base_url=base_url, api_key=api_key, api_version=api_version, options=options or {}
            ),
            "timeout": timeout,
            # Both: LiteLLM's own retries, and the OpenAI client's (which default to 2).
            "num_retries": max_retries,
            "max_retries": max_retries,
        }
        extra = self.merged_headers(headers)
        if extra:
            params["extra_headers"] = extra
        return params

    def connection_params(
        self, *, base_url: str, api_key: str, api_version: str, options: dict
    ) -> dict[str, Any]:
        """Where a call goes and how it authenticates, as LiteLLM's parameters; kinds with a
        region, a project or another credential (Bedrock, Vertex AI) override this."""
        # Base URL and key are always passed explicitly: LiteLLM would otherwise read
        # OPENAI_API_KEY & co. from os.environ, and the database is the only source here.
        params: dict[str, Any] = {
            "api_base": base_url,
            "api_key": self.effective_api_key(api_key) or "no-key",
        }
        api_version = self.effective_api_version(api_version)
        if api_version:
            params["api_version"] = api_version
        return params

    # --- the gateway's relay (providers/services/relay.py) --------------------------------
    def relayed_params(self, function: str) -> frozenset[str] | None:
        """The parameters a relayed call of `function` may carry; None: never relayed."""
        for name, params in self.relays:
            if name == function:
                return params
        return None

    def relay_url(self, base_url: str, function: str) -> str:
        return base_url.rstrip("/") + RELAY_PATHS[function]

    def relay_headers(self, api_key: str, headers: dict[str, str]) -> dict[str, str]:
        """A relayed request's headers: the key as LiteLLM sends it, then the kind's default
        headers under the provider's own."""
        key = self.effective_api_key(api_key) or "no-key"
        return {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            **self.merged_headers(headers),
        }

    @property
    def error_name(self) -> str:
        return self.relay_error_name or self.litellm_prefix.capitalize()

    def call_params(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        """LiteLLM's arguments for one provider's call of `function` ("aembedding"...)."""
        return params

    def merged_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """The kind's default headers under the provider's own (which win, whatever case)."""
        own = {name.lower() for name in headers}
        merged = {name: value for name, value in self.default_headers if name.lower() not in own}
        merged.update(headers)
        return merged


def _next_page_token_url(url: str, payload: Any) -> str | None:
    """Google's paging (Gemini, Vertex AI): the next page is asked with its nextPageToken."""
    token = payload.get("nextPageToken") if isinstance(payload, dict) else None
    return _with_query(url, pageToken=str(token)) if token else None


def _ids(items: Any, key: str) -> list[str]:
    if not isinstance(items, list):
        raise ModelListError(NOT_A_MODEL_LIST)
    return sorted(
        str(item[key]) for item in items if isinstance(item, dict) and item.get(key) is not None
    )
