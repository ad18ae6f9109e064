"""Which request parameters the gateway passes on to a provider: OpenAI's chat completions
parameters, all of them, and nothing else; likewise for its embeddings and legacy (text)
completions APIs (EMBEDDINGS, COMPLETIONS).

CHAT_PARAMETERS is the request body of `CompletionCreateParams` in the `openai` package,
legacy `functions` / `function_call` included; tests/gateway/test_gateway_params.py fails when a
new release of the package adds one that is not listed here. A parameter that would
choose where the call goes, or with which credentials, is refused rather than ignored: a
caller must never learn that its `api_base` was silently not honoured, nor send a stored key
to a host of its choosing. Anything else unknown is refused too, so that nothing a caller
sends is silently dropped.

EMBEDDING_PARAMETERS and COMPLETION_PARAMETERS are the `openai` package's
`EmbeddingCreateParams` and `completion_create_params.CompletionCreateParams*`, checked
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# `model` and `messages` are read by the gateway itself; everything else goes to LiteLLM.
CHAT_PARAMETERS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
READ_BY_GATEWAY = frozenset({"model", "messages"})

# POST /v1/embeddings: `model` and `input` are read by the gateway.
EMBEDDING_PARAMETERS = frozenset({"dimensions", "encoding_format", "user"})
# POST /v1/completions (legacy text completions): `model` and `prompt` are read by the gateway.
COMPLETION_PARAMETERS = frozenset(
    {
        "best_of",
        "echo",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_tokens",
        "n",
        "presence_penalty",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "suffix",
        "temperature",
        "top_p",
        "user",
    }
)

# LiteLLM's call options that pick the endpoint, the credentials or how the call is made.
ROUTING_PARAMETERS = frozenset(
    {
        "additional_drop_params",
        "allowed_openai_params",
        "api_base",
        "api_key",
        "api_type",
        "api_version",
        "aws_access_key_id",
        "aws_bedrock_runtime_endpoint",
        "aws_profile_name",
        "aws_region_name",
        "aws_role_name",
        "aws_secret_access_key",
        "aws_session_name",
        "aws_session_token",
        "aws_web_identity_token",
        "azure_ad_token",
        "azure_ad_token_provider",
        "azure_deployment",
        "azure_endpoint",
        "base_url",
        "client",
        "client_id",
        "client_secret",
        "custom_llm_provider",
        "deployment_id",
        "drop_params",
        "extra_body",
        "extra_headers",
        "extra_query",
        "fallbacks",
        "headers",
        "litellm_credential_name",
        "litellm_metadata",
        "litellm_params",
        "max_retries",
        "mock_response",
        "model_list",
        "num_retries",
        "organization",
        "project",
        "proxy",
        "region_name",
        "request_timeout",
        "ssl_verify",
        "tenant_id",
        "timeout",
        "use_litellm_proxy",
        "vertex_credentials",
        "vertex_location",
        "vertex_project",
    }
)

# LiteLLM knows these but does not send them on: `metadata` is its own logging metadata, and
# it has no argument for `prompt_cache_retention` (1.106). Sent in the body as they are.
SENT_AS_EXTRA_BODY = frozenset({"metadata", "prompt_cache_retention"})

PARAMETER_REFUSED = (
    "Parameter {name!r} is not accepted: it would choose where or with which credentials the "
    "call goes, and the gateway decides that from its configuration. Leave it out."
)
PARAMETER_UNKNOWN = (
    "Unknown parameter {name!r}. The gateway accepts the parameters of OpenAI's {api} API "
    "({reference}); leave it out."
)


@dataclass(frozen=True)
class Api:
    """One of OpenAI's request shapes: its name and reference (for PARAMETER_UNKNOWN), the
    parameters passed on, and those the gateway reads itself."""

    name: str
    reference: str
    accepted: frozenset[str]
    read: frozenset[str]

    def unknown(self, name: str) -> str:
        return PARAMETER_UNKNOWN.format(name=name[:100], api=self.name, reference=self.reference)


CHAT = Api(
    "chat completions",
    "https://platform.openai.com/docs/api-reference/chat/create",
    CHAT_PARAMETERS,
    READ_BY_GATEWAY,
)
EMBEDDINGS = Api(
    "embeddings",
    "https://platform.openai.com/docs/api-reference/embeddings/create",
    EMBEDDING_PARAMETERS,
    frozenset({"model", "input"}),
)
COMPLETIONS = Api(
    "completions",
    "https://platform.openai.com/docs/api-reference/completions/create",
    COMPLETION_PARAMETERS,
    frozenset({"model", "prompt"}),
)


class RefusedParameter(ValueError):
    def __init__(self, name: str, message: str) -> None:
        self.param = name
        super().__init__(message)


def chat_params(body: dict[str, Any], api: Api = CHAT) -> dict[str, Any]:
    """LiteLLM's arguments for the parameters to pass on, or RefusedParameter naming the
    first one refused."""
    for name in sorted(body):
        if name in ROUTING_PARAMETERS:
            raise RefusedParameter(name, PARAMETER_REFUSED.format(name=name))
        if name not in api.accepted and name not in api.read:
            raise RefusedParameter(name, api.unknown(name))
    params = {k: v for k, v in body.items() if k in api.accepted - SENT_AS_EXTRA_BODY}
    extra = {k: v for k, v in body.items() if k in api.accepted & SENT_AS_EXTRA_BODY}
    if extra:
        params["extra_body"] = extra
    return params
