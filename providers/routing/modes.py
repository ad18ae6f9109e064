"""What a model serves (the gateway's chat, embeddings, completions and responses APIs), where
something says so: its kind, for a vendor with one kind of model only (the registry's
`serves`), else LiteLLM's local price map, whose entries have a `mode`. Nothing is guessed:
a model neither knows gets no answer, and the gateway then says nothing about it.
"""

from __future__ import annotations

from functools import lru_cache

from usage.pricing import TEXT_COMPLETION_PREFIX

from .. import kinds
from .llm import litellm

# LiteLLM's `mode` -> the gateway API that serves it. Other modes (images, audio, rerank...)
# are no API of the gateway's, so they say nothing here either.
API_OF_MODE = {
    "chat": "chat",
    "embedding": "embeddings",
    "completion": "completions",
    "responses": "responses",
}


@lru_cache(maxsize=4096)
def serves(kind: kinds.ProviderKind, model: str) -> tuple[str, ...]:
    """The gateway APIs `model` of a provider of `kind` serves, () when nothing says."""
    if kind.serves:
        return kind.serves
    prices = litellm().model_cost
    entry = prices.get(kind.litellm_model(model))
    if entry is None:
        # OpenAI's own models are keyed without a prefix, and its instruct models under
        # "text-completion-openai": the entry counts when it is this kind's.
        bare = prices.get(model)
        owners = (kind.litellm_prefix, TEXT_COMPLETION_PREFIX + kind.litellm_prefix)
        if bare is not None and bare.get("litellm_provider") in owners:
            entry = bare
    api = API_OF_MODE.get((entry or {}).get("mode"))
    return (api,) if api else ()
