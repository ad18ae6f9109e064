"""What a call cost, from LiteLLM's price map: the one rule the request log and the budgets
both use, so that a budget and the usage page never disagree about a call's price.

`litellm.cost_per_token` takes 170-520 µs of CPU a call. For a model whose price is a plain
rate per prompt token and per completion token (most of them), the two rates are read once
and the cost is then two multiplications; a model with tiers (`..._above_200k_tokens`) or
any other shape keeps going through `cost_per_token` itself. A model the map keeps under
another name than a call's (OpenAI's instruct models) is priced under the map's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

# A model not in LiteLLM's price map (a custom vLLM model, most of OpenRouter's).
UNPRICED: Any = object()
TEXT_COMPLETION_PREFIX = "text-completion-"

_lock = threading.Lock()
# litellm model -> (prompt rate, completion rate), the price map's name for it (priced, not
# linear: cost_per_token is asked each time), or UNPRICED.
_rates: dict[str, Any] = {}
# Checked against cost_per_token at a count well past any tier, so a tiered price is caught
# even where the price map has no "above_" key for it.
_PROBE = 1_000_000


def _lib():
    from providers.routing.llm import litellm

    return litellm()


def _cost_per_token(model: str, prompt: int, completion: int) -> float:
    prompt_cost, completion_cost = _lib().cost_per_token(
        model=model, prompt_tokens=prompt, completion_tokens=completion
    )
    return prompt_cost + completion_cost


def text_completion_name(litellm_model: str) -> str:
    """Where LiteLLM's price map keeps a provider's legacy text-completion models: OpenAI's
    instruct models are `text-completion-openai/...` there, while a call names them
    `openai/...`."""
    provider, _, model = litellm_model.partition("/")
    return f"{TEXT_COMPLETION_PREFIX}{provider}/{model}" if model else ""


def _learn(model: str) -> Any:
    found = _learn_named(model)
    alias = text_completion_name(model)
    if found is UNPRICED and alias:
        return _learn_named(alias)
    return found


def _learn_named(model: str) -> Any:
    try:
        prompt_rate = _cost_per_token(model, 1, 0)
        completion_rate = _cost_per_token(model, 0, 1)
        probe = _cost_per_token(model, _PROBE, _PROBE)
    except Exception:  # noqa: BLE001 - LiteLLM does not know this model's price
        return UNPRICED
    try:
        info = dict(_lib().get_model_info(model))
    except Exception:  # noqa: BLE001 - priced by a path of its own: ask it every time
        return model
    tiered = any("above_" in key and value for key, value in info.items())
    linear = abs(probe - _PROBE * (prompt_rate + completion_rate)) <= 1e-9 * max(probe, 1.0)
    return (prompt_rate, completion_rate) if linear and not tiered else model


def _rates_of(model: str) -> Any:
    found = _rates.get(model)
    if found is None:
        found = _learn(model)
        with _lock:
            _rates[model] = found
    return found


def priced(litellm_model: str) -> bool:
    """Whether LiteLLM's price map has a price for this model (free models, e.g. Ollama's,
    have one: 0)."""
    return bool(litellm_model) and _rates_of(litellm_model) is not UNPRICED


def cost(litellm_model: str, prompt_tokens: int | None, completion_tokens: int | None) -> Any:
    """US dollars, or None when the model or the token counts are unknown."""
    if not litellm_model or prompt_tokens is None or completion_tokens is None:
        return None
    rates = _rates_of(litellm_model)
    if rates is UNPRICED:
        return None
    if isinstance(rates, str):
        try:
            return _cost_per_token(rates, prompt_tokens, completion_tokens)
        except Exception:  # noqa: BLE001
            return None
    return prompt_tokens * rates[0] + completion_tokens * rates[1]


def nanos(usd: float | None) -> int:
    """Budgets count integer billionths of a dollar: exact sums, the same in Redis and SQL."""
    return round(usd * 1e9) if usd else 0


@dataclass(frozen=True)
class Spent:
    """What one call used: its tokens as the provider reported them, or as estimated
    (`estimated`: a stream its caller abandoned, or that failed, before the usage came)."""

    litellm_model: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float | None:
        return cost(self.litellm_model, self.prompt_tokens, self.completion_tokens)
