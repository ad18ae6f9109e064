"""One chat call on a host, as the tests see it, and what LiteLLM's price map says it costs."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import openai

from tests.multihost.cluster import HI, Host
from usage.pricing import nanos


@dataclass
class Outcome:
    host: str
    status: int
    code: str | None = None
    # The answer's text, or the error's message.
    text: str = ""
    # x-ratelimit-remaining-requests: present when the call was counted.
    remaining: str | None = None

    @property
    def counted(self) -> bool:
        return self.status == 200 and self.remaining is not None


def call(host: Host, client: openai.OpenAI, model: str = "default") -> Outcome:
    try:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=HI)
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return Outcome(host.name, exc.status_code, body.get("code"), body.get("message", ""))
    answer = raw.parse()
    remaining = raw.headers.get("x-ratelimit-remaining-requests")
    return Outcome(host.name, 200, None, answer.choices[0].message.content, remaining)


def price_in_nanos(model: str, prompt: int, completion: int) -> int:
    """One call's price, in billionths of a dollar, from LiteLLM's local price map: the file
    itself, read without importing LiteLLM (seconds of start-up in this process)."""
    (folder,) = importlib.util.find_spec("litellm").submodule_search_locations
    prices = json.loads((Path(folder) / "model_prices_and_context_window_backup.json").read_text())
    rates = prices[model]
    usd = prompt * rates["input_cost_per_token"] + completion * rates["output_cost_per_token"]
    return nanos(usd)
