"""OpenAI's Responses API and Anthropic's Messages API, for any provider.

Both go through `acall` (routing, fallbacks, errors, the request log and usage, as chat
does); LiteLLM speaks each API to the providers that have it and translates for the others
(chat completions underneath). What is theirs here is reading a stream: its usage comes in
its own events (Responses' `response.completed`, Anthropic's `message_start` and
`message_delta`), and the call is logged and counted when the stream ends.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async

from usage.pricing import Spent

from ..routing import live
from .calls import _Call, _GuardedStream, acall

OnSpent = Callable[[Spent | None], Awaitable[bool]] | None


class _ResponsesStream(_GuardedStream):
    """A Responses API stream: typed events; the usage is on the finished response."""

    def _seen(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        kind = getattr(kind, "value", kind)
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            response = getattr(event, "response", None)
            if getattr(response, "usage", None) is not None:
                self._usage = response
        elif kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            delta = getattr(event, "delta", None)
            if isinstance(delta, str):
                self._received.append(delta)
        return True


class _MessagesStream(_GuardedStream):
    """An Anthropic Messages stream: server-sent events as bytes (LiteLLM relays Anthropic's
    own, and writes the same for translated answers), possibly split anywhere; or dicts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer = b""
        self._tokens: dict[str, int] = {}

    def _seen(self, chunk: Any) -> bool:
        if isinstance(chunk, dict):
            self._event(chunk)
            return True
        self._buffer += chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        *events, self._buffer = self._buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        for raw in events:
            for line in raw.split(b"\n"):
                if line.startswith(b"data:"):
                    try:
                        data = json.loads(line[5:])
                    except ValueError:
                        continue
                    if isinstance(data, dict):
                        self._event(data)
        return True

    def _event(self, data: dict) -> None:
        kind = data.get("type")
        usage = None
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage")
        elif kind == "message_delta":
            usage = data.get("usage")
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            piece = delta.get("text") or delta.get("partial_json") or delta.get("thinking")
            if isinstance(piece, str):
                self._received.append(piece)
        if isinstance(usage, dict):
            # message_delta's counts are cumulative: the last one seen is the call's.
            for name in ("input_tokens", "output_tokens"):
                if isinstance(usage.get(name), int):
                    self._tokens[name] = usage[name]
            self._usage = {"usage": dict(self._tokens)}


def _guard(cls: type[_GuardedStream], prompt: list) -> Callable[..., _GuardedStream]:
    def guard(stream, target, requested, started, on_spent) -> _GuardedStream:
        # `prompt`: what an estimate counts when a stream ends without its usage.
        return cls(stream, target, requested, started, call=_Call(prompt, True, on_spent))

    return guard


def _bridged(snap: live.Snapshot, model: str | None) -> bool:
    """Whether a Responses call must go to chat completions: some provider that may answer
    it has no Responses API of its own that LiteLLM would know to avoid (its kind says)."""
    try:
        target = snap.resolve(model)
    except (live.UnknownModel, live.Unavailable):
        return False  # acall refuses it, and logs that
    if isinstance(target, live.GroupTarget):
        fallbacks = [snap.groups[n] for n in target.group.fallbacks if n in snap.groups]
        groups = [target.group, *fallbacks]
        kinds = [d.provider.kind for g in groups for d in g.deployments]
    else:
        kinds = [target.provider.kind]
    return any(kind.bridges_responses for kind in kinds)


async def aresponses(
    input: str | list,
    *,
    model: str | None = None,
    snapshot: live.Snapshot | None = None,
    on_spent: OnSpent = None,
    **kwargs: Any,
) -> Any:
    """A Responses API call (`litellm.aresponses`, the Router's alike): its response, or an
    async stream of its events when `stream=True`."""
    snap = snapshot or await _snapshot()
    if _bridged(snap, model):
        kwargs["use_chat_completions_api"] = True
    prompt = [input] if isinstance(input, str) else list(input)
    return await acall(
        "aresponses",
        model=model,
        snapshot=snap,
        on_spent=on_spent,
        guard=_guard(_ResponsesStream, prompt),
        input=input,
        **kwargs,
    )


async def amessages(
    messages: list,
    *,
    model: str | None = None,
    snapshot: live.Snapshot | None = None,
    on_spent: OnSpent = None,
    **kwargs: Any,
) -> Any:
    """An Anthropic Messages API call (`litellm.anthropic_messages`, the Router's
    `aanthropic_messages`): the message as a dict, or an async stream of server-sent events
    (bytes) when `stream=True`. Anthropic-kind providers get the request as it came."""
    system = kwargs.get("system")
    prompt = [*([{"role": "system", "content": system}] if system else []), *messages]
    return await acall(
        "anthropic_messages",
        model=model,
        snapshot=snapshot,
        on_spent=on_spent,
        guard=_guard(_MessagesStream, prompt),
        messages=messages,
        **kwargs,
    )


async def _snapshot() -> live.Snapshot:
    return live.peek() or await sync_to_async(live.snapshot)()
