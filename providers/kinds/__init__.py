"""The provider-kind registry: one dict, one small class per kind.

Everything kind-specific (defaults, required fields, the LiteLLM prefix, how to list
models, whether the kind may live on this machine) is a property or method of a kind's
class: base.py holds the defaults, vendors.py, azure.py, bedrock.py and vertex.py the kinds
that differ.
Forms, the command line, validation and the service layer all read KINDS; nothing else
branches on the kind.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from .azure import (
    AZURE_AI_ANTHROPIC_OK,
    AZURE_AI_CLAUDE_NEEDS_ANTHROPIC_PATH,
    AZURE_DEPLOYMENTS_OK,
    AZURE_NO_DEPLOYMENTS_OK,
    AzureAIKind,
    AzureKind,
)
from .base import (
    API_KEY_REQUIRED,
    API_VERSION_REQUIRED,
    APP_NAME,
    APP_REFERER,
    BASE_URL_REQUIRED,
    MAX_MODEL_PAGES,
    NOT_A_MODEL_LIST,
    SETTING_INVALID,
    SETTING_REQUIRED,
    AuthFailed,
    EnvConvention,
    KindField,
    ModelListError,
    Probe,
    ProviderKind,
)
from .base import RELAYED_CHAT as CHAT
from .base import RELAYED_TEXT as TEXT
from .bedrock import BEDROCK, BedrockKind
from .vendors import AnthropicKind, GeminiKind, OllamaKind, TogetherKind
from .vertex import VERTEX, VertexKind

__all__ = [
    "API_KEY_REQUIRED",
    "API_VERSION_REQUIRED",
    "APP_NAME",
    "APP_REFERER",
    "AZURE_AI_ANTHROPIC_OK",
    "AZURE_AI_CLAUDE_NEEDS_ANTHROPIC_PATH",
    "AZURE_DEPLOYMENTS_OK",
    "AZURE_NO_DEPLOYMENTS_OK",
    "BASE_URL_REQUIRED",
    "CHOICES",
    "KINDS",
    "MAX_MODEL_PAGES",
    "NOT_A_MODEL_LIST",
    "UNKNOWN_KIND",
    "SETTING_INVALID",
    "SETTING_REQUIRED",
    "AuthFailed",
    "BedrockKind",
    "EnvConvention",
    "KindField",
    "VertexKind",
    "ModelListError",
    "Probe",
    "ProviderKind",
    "get_kind",
]

# Embeddings' parameters as LiteLLM sends them to the kinds that relay all of them; the
# OpenAI SDK family (openai, LM Studio) and Mistral get `input` alone (LiteLLM refuses
# `dimensions` or `user` for them).
EMBED = frozenset({"dimensions", "user"})
NONE: frozenset[str] = frozenset()

KINDS: dict[str, ProviderKind] = {
    kind.slug: kind
    for kind in (
        ProviderKind(
            slug="openai",
            label="OpenAI",
            litellm_prefix="openai",
            default_base_url="https://api.openai.com/v1",
            model_example="gpt-4o-mini",
            # Not legacy completions: LiteLLM sends those to /completions or bridges them
            # through chat completions by its own list of OpenAI's chat models.
            relays=(("acompletion", CHAT), ("aembedding", NONE)),
            relay_error_name="OpenAI",
            relay_error_message=True,
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
            embeds=False,
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
            relays=(("acompletion", CHAT), ("aembedding", EMBED)),
            relay_chat_body=(("usage", {"include": True}),),
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
            embeds=False,
            relays=(("acompletion", CHAT - {"max_completion_tokens", "reasoning_effort"}),),
            env_conventions=(EnvConvention(api_key=("GROQ_API_KEY",)),),
        ),
        TogetherKind(
            slug="together",
            label="Together AI",
            litellm_prefix="together_ai",
            default_base_url="https://api.together.xyz/v1",
            model_example="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            relays=(
                ("acompletion", CHAT - {"reasoning_effort"}),
                ("aembedding", EMBED),
                ("atext_completion", TEXT),
            ),
            env_conventions=(EnvConvention(api_key=("TOGETHER_API_KEY", "TOGETHERAI_API_KEY")),),
            env_model_prefixes=("together_ai", "together"),
        ),
        ProviderKind(
            slug="mistral",
            label="Mistral",
            litellm_prefix="mistral",
            default_base_url="https://api.mistral.ai/v1",
            model_example="mistral-small-latest",
            # LiteLLM renames `seed` and `max_completion_tokens` for Mistral, refuses most others
            # and asks no usage of a stream: only plain calls with these few are relayed.
            relays=(
                (
                    "acompletion",
                    frozenset({"max_tokens", "response_format", "stop", "temperature", "top_p"}),
                ),
                ("aembedding", NONE),
            ),
            env_conventions=(EnvConvention(api_key=("MISTRAL_API_KEY",)),),
        ),
        ProviderKind(
            slug="deepseek",
            label="DeepSeek",
            litellm_prefix="deepseek",
            default_base_url="https://api.deepseek.com/v1",
            model_example="deepseek-chat",
            serves=("chat",),
            embeds=False,
            relays=(("acompletion", CHAT - {"reasoning_effort"}),),
            env_conventions=(EnvConvention(api_key=("DEEPSEEK_API_KEY",)),),
        ),
        ProviderKind(
            slug="openai_compatible",
            label="OpenAI-compatible endpoint",
            litellm_prefix="openai",
            base_url_example="https://llm.example.com/v1",
            api_key_required=False,
            model_example="my-model",
            bridges_responses=True,
            # Not legacy completions: LiteLLM sends those to /completions or bridges them
            # through chat completions by its own list of OpenAI's chat models.
            relays=(("acompletion", CHAT), ("aembedding", NONE)),
            relay_error_name="OpenAI",
            relay_error_message=True,
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
            relays=(("acompletion", CHAT - {"reasoning_effort"}), ("aembedding", NONE)),
            relay_error_message=True,
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
            relays=(("acompletion", CHAT), ("aembedding", EMBED), ("atext_completion", TEXT)),
            env_conventions=(
                EnvConvention(
                    api_key=("VLLM_API_KEY", "HOSTED_VLLM_API_KEY"),
                    base_url=("VLLM_BASE_URL", "HOSTED_VLLM_API_BASE"),
                ),
            ),
            env_model_prefixes=("hosted_vllm", "vllm"),
        ),
        BEDROCK,
        VERTEX,
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
