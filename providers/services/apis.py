"""OpenAI's Responses API and Anthropic's Messages API, for any provider; embeddings, for the
providers whose kind has an embeddings API.

All go through `acall` (routing, fallbacks, errors, the request log and usage, as chat
does); LiteLLM speaks each API to the providers that have it and translates for the others
(chat completions underneath). What is theirs here is reading a stream: its usage comes in
its own events (Responses' `response.completed`, Anthropic's `message_start` and
`message_delta`), and the call is logged and counted when the stream ends. Embeddings have
no translation: a kind without the API (its `embeds`) is refused before any call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async

from usage.pricing import Spent

from .. import kinds
from ..routing import live
from .calls import ProviderError, _Call, _GuardedStream, acall, log_refused
from .calls import aembedding as _embed

OnSpent = Callable[[Spent | None], Awaitable[bool]] | None
NO_EMBEDDINGS = (
    "Provider {provider!r} ({kind}) has no embeddings API; use a provider that serves "
    "embeddings ({kinds})."
)
NO_EMBEDDINGS_IN_GROUP = (
    "Routing group {group!r} cannot embed: its deployment {deployment!r} is on provider "
    "{provider!r} ({kind}), which has no embeddings API; use a group whose deployments "
    "serve embeddings ({kinds})."
)
NO_EMBEDDINGS_CODE = "unsupported_endpoint"


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


def _may_answer(
    snap: live.Snapshot, model: str | None
) -> tuple[live.GroupEntry | None, list[tuple[str, live.ProviderEntry]]]:
    """The group `model` names (or None), and every (deployment label, provider) that may
    answer a call to it: a group's deployments and its fallback groups'."""
    try:
        target = snap.resolve(model)
    except (live.UnknownModel, live.Unavailable):
        return None, []  # acall refuses it, and logs that
    if not isinstance(target, live.GroupTarget):
        return None, [(f"{target.provider.name}/{target.model}", target.provider)]
    fallbacks = [snap.groups[n] for n in target.group.fallbacks if n in snap.groups]
    groups = [target.group, *fallbacks]
    return target.group, [(d.label, d.provider) for g in groups for d in g.deployments]


def _bridged(snap: live.Snapshot, model: str | None) -> bool:
    """Whether a Responses call must go to chat completions: some provider that may answer
    it has no Responses API of its own that LiteLLM would know to avoid (its kind says)."""
    return any(p.kind.bridges_responses for _, p in _may_answer(snap, model)[1])


def _cannot_embed(snap: live.Snapshot, model: str | None) -> ProviderError | None:
    """The refusal of an embeddings call that some provider which may answer it could not
    make (its kind has no embeddings API), or None."""
    group, answering = _may_answer(snap, model)
    for label, provider in answering:
        if provider.kind.embeds:
            continue
        able = ", ".join(dict.fromkeys(k.product for k in kinds.KINDS.values() if k.embeds))
        names = {"provider": provider.name, "kind": provider.kind.label, "kinds": able}
        if group is None:
            name, message = provider.name, NO_EMBEDDINGS.format(**names)
        else:
            name = group.name
            message = NO_EMBEDDINGS_IN_GROUP.format(group=name, deployment=label, **names)
        return ProviderError(
            provider=name, kind=provider.kind.label, status=400, detail=message,
            message=message, code=NO_EMBEDDINGS_CODE, param="model",
        )  # fmt: skip
    return None


async def aembedding(
    input: Any,
    model: str | None = None,
    *,
    snapshot: live.Snapshot | None = None,
    on_spent: OnSpent = None,
    **kwargs: Any,
) -> Any:
    """Embeddings of `input` (a text, a list of texts, token IDs), routed as `acall` routes;
    its prompt tokens are what it spent. Refused (ProviderError, code NO_EMBEDDINGS_CODE, and
    logged) before any call when a provider that may answer has no embeddings API."""
    snap = snapshot or await _snapshot()
    refused = _cannot_embed(snap, model)
    if refused is not None:
        log_refused(requested=model, status=400, message=str(refused))
        raise refused
    return await _embed(input, model, snapshot=snap, on_spent=on_spent, **kwargs)


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
