"""usage.pricing: the one price rule of the request log and the budgets, equal to LiteLLM's
`cost_per_token` whether a model's rates are read once (linear prices) or not (tiers)."""

from __future__ import annotations

import pytest

from providers.routing.llm import litellm
from usage import pricing


@pytest.mark.parametrize(
    "model", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-pro"]
)
@pytest.mark.parametrize(("prompt", "completion"), [(7, 3), (1000, 500), (250_000, 1000)])
def test_a_cost_is_litellms(model, prompt, completion):
    p, c = litellm().cost_per_token(model=model, prompt_tokens=prompt, completion_tokens=completion)
    assert pricing.cost(model, prompt, completion) == pytest.approx(p + c, rel=1e-12)


def test_a_model_without_a_price_is_unpriced_and_a_free_one_is_not():
    assert not pricing.priced("openai/some-custom-vllm-model")
    assert pricing.cost("openai/some-custom-vllm-model", 10, 10) is None
    assert pricing.priced("ollama/llama3") and pricing.cost("ollama/llama3", 10, 10) == 0


def test_an_instruct_model_is_priced_under_the_maps_text_completion_name():
    p, c = litellm().cost_per_token(
        model="text-completion-openai/gpt-3.5-turbo-instruct",
        prompt_tokens=10,
        completion_tokens=5,
    )
    assert p + c > 0
    assert pricing.priced("openai/gpt-3.5-turbo-instruct")
    assert pricing.cost("openai/gpt-3.5-turbo-instruct", 10, 5) == pytest.approx(p + c)
    assert pricing.text_completion_name("openai/x") == "text-completion-openai/x"
    assert pricing.text_completion_name("bare") == ""


def test_nanos_count_billionths():
    assert pricing.nanos(0.000123456789) == 123457 and pricing.nanos(None) == 0
