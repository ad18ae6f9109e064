"""Which parameters of OpenAI's Responses API and Anthropic's Messages API the gateway passes
on: each API's own request fields, as its official SDK lists them, and nothing else; the
rule is chat's (gateway/chat_params.py): a routing choice or an unknown field is refused,
never silently dropped. tests/gateway/test_gateway_apis.py fails when a new release of
either SDK adds a field that is not listed here.
"""

from __future__ import annotations

from typing import Any

from .chat_params import PARAMETER_REFUSED, ROUTING_PARAMETERS, RefusedParameter

# `ResponseCreateParams` of the `openai` package; `model` and `input` are read by the view.
RESPONSES_PARAMETERS = frozenset(
    {
        "background",
        "context_management",
        "conversation",
        "include",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)
RESPONSES_READ = frozenset({"model", "input"})

# `MessageCreateParams` of the `anthropic` package, its beta API's too (Claude Code sends
# `context_management`), and the sampling fields its older releases (and the clients built
# on them) still send; `model` and `messages` are read by the view. The beta's `betas` is a
# header, not a field; its `fallbacks` is a routing choice, refused.
MESSAGES_PARAMETERS = frozenset(
    {
        "billing_policy",
        "cache_control",
        "compaction",
        "container",
        "context_management",
        "diagnostics",
        "fallback_credit_token",
        "mcp_servers",
        "thread",
        "inference_geo",
        "max_tokens",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "stream",
        "system",
        "thinking",
        "tool_choice",
        "tools",
        "user_profile_id",
        "workspace_id",
        # Older releases' sampling fields.
        "temperature",
        "top_k",
        "top_p",
    }
)
MESSAGES_READ = frozenset({"model", "messages"})

RESPONSES_UNKNOWN = (
    "Unknown parameter {name!r}. The gateway accepts the parameters of OpenAI's Responses API "
    "(https://platform.openai.com/docs/api-reference/responses/create); leave it out."
)
MESSAGES_UNKNOWN = (
    "Unknown parameter {name!r}. The gateway accepts the parameters of Anthropic's Messages "
    "API (https://docs.claude.com/en/api/messages); leave it out."
)


def api_params(
    body: dict[str, Any], *, accepted: frozenset[str], read: frozenset[str], unknown: str
) -> dict[str, Any]:
    """The body's fields to pass on to LiteLLM, or RefusedParameter naming the first one
    refused."""
    for name in sorted(body):
        if name in ROUTING_PARAMETERS:
            raise RefusedParameter(name, PARAMETER_REFUSED.format(name=name))
        if name not in accepted and name not in read:
            raise RefusedParameter(name, unknown.format(name=name[:100]))
    return {k: v for k, v in body.items() if k in accepted}
