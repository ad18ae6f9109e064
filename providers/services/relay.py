"""The gateway's relay: calls to a provider whose kind speaks OpenAI's wire format, made
without LiteLLM.

LiteLLM builds a pydantic object of every answer and every chunk, and the gateway then
dumps it back to JSON: most of a call's CPU. For a kind that speaks OpenAI's format anyway
(its `relays` in providers/kinds/), the caller's request is sent as it came (the model
rewritten, the provider's key and headers added) through the pinned outbound pool, and the
answer's bytes are handed back; only what the request log and the limits need is read
(status, usage). A call with a parameter that LiteLLM renames, drops or refuses for the
kind goes through LiteLLM instead, and so does a routing group (its Router keeps its
strategy, fallbacks, retries and cooldowns), so that the caller sees the same either way:
the same bodies, errors (worded as LiteLLM words them), headers, log rows and limits.

ROUTING_GATEWAY_RELAY=0 sends every call through LiteLLM.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from usage.pricing import Spent

from ..redact import redact
from ..routing import live, outbound
from .calls import (
    RELAYED_HEADERS,
    UPSTREAM_TIMEOUT,
    ProviderError,
    _Call,
    _GuardedStream,
    _log,
    _spent_of,
)

NOT_JSON = "The provider's answer (HTTP {status}) is not a JSON object."
# What the caller's body holds besides parameters: the relay sends it as it is.
_CONTENT = frozenset({"messages", "input", "prompt"})
# LiteLLM's exception class by upstream status, in the messages it makes of them.
_ERROR_NAMES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "Timeout",
    422: "BadRequestError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}
# The OpenAI SDK's retry policy (what LiteLLM's OpenAI-family calls do): these statuses and
# failed connections, after Retry-After when it says at most a minute, else backing off.
_RETRIED = frozenset({408, 409, 429})
MAX_RETRY_AFTER_SECONDS = 60.0


def relays(function: str, target: live.Target | live.GroupTarget, kwargs: dict) -> bool:
    """Whether the call goes through the relay: one provider, whose kind relays `function`
    with every parameter the call has."""
    if not settings.ROUTING_GATEWAY_RELAY or not isinstance(target, live.Target):
        return False
    provider = target.provider
    allowed = provider.kind.relayed_params(function)
    if allowed is None or provider.undecryptable:
        return False
    return all(name in allowed or name in _CONTENT for name in kwargs)


@dataclass(frozen=True)
class Relayed:
    """A plain answer as the provider sent it: `content` its bytes, `data` their JSON."""

    content: bytes
    data: dict


_client: httpx.AsyncClient | None = None


def _http() -> httpx.AsyncClient:
    global _client
    if _client is None:
        # Its own pool (LiteLLM's is made when LiteLLM is imported), pinned as LiteLLM's.
        _client = outbound.async_client(timeout=600, transport=outbound.AsyncPinnedTransport())
    return _client


async def call(
    function: str,
    target: live.Target,
    requested: str | None,
    started: float,
    on_spent: Callable[[Spent | None], Awaitable[bool]] | None,
    guard: Any,
    kwargs: dict[str, Any],
) -> Relayed | RelayedStream:
    """What `calls._acall` does, relayed: the answer, logged and counted (a stream when it
    ends), or a ProviderError worded as LiteLLM's path words it."""
    provider = target.provider
    body = {"model": target.model, **{k: v for k, v in kwargs.items() if v is not None}}
    if function == "acompletion":
        body.update(provider.kind.relay_chat_body)
    stream = bool(kwargs.get("stream"))
    try:
        response, content = await _send(provider, function, json.dumps(body).encode(), stream)
        data = None if stream else _json(provider, response.status_code, content)
    except ProviderError as error:
        counted = bool(await on_spent(None)) if on_spent else False
        _log(target, requested, started, error=error, spend_counted=counted)
        raise
    if stream:
        call = _Call(guard.messages, guard.asked, on_spent)
        return RelayedStream(response, target, requested, started, call=call)
    spent = _spent_of(provider.kind.litellm_model(target.model), data)
    counted = bool(await on_spent(spent)) if on_spent else False
    _log(target, requested, started, response=data, spent=spent, spend_counted=counted)
    return Relayed(content, data)


def _json(provider: live.ProviderEntry, status: int, content: bytes) -> dict:
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        detail = NOT_JSON.format(status=status)
        raise ProviderError(provider=provider.name, kind=provider.kind.label, status=None,
                            detail=detail)  # fmt: skip
    return data


async def _send(
    provider: live.ProviderEntry, function: str, content: bytes, stream: bool
) -> tuple[httpx.Response, bytes]:
    """The provider's answer (a stream left open, else read), after the retries its
    `max_retries` allows; a failure as ProviderError."""
    client = _http()
    url, headers = provider.relay_request(function)
    request = client.build_request(
        "POST", url, content=content, headers=headers, timeout=provider.timeout
    )
    retried = 0
    while True:
        answer, wait = await _attempt(client, request, provider, stream, retried)
        if not isinstance(answer, ProviderError):
            return answer
        if retried >= provider.max_retries or wait is None:
            raise answer
        retried += 1
        await asyncio.sleep(wait)


async def _attempt(client, request, provider, stream, retried) -> tuple[Any, float | None]:
    """((response, content), None) for an answer; (error, seconds to wait or None) else."""
    try:
        response = await client.send(request, stream=True)
        status = response.status_code
        if status < 300:
            content = b"" if stream else await _read(response)
            return (response, content), None
        raw = await _read(response)
    except httpx.TimeoutException:
        return _timeout(provider), _backoff(retried, None)
    except httpx.HTTPError as exc:
        # Not a refusal of outbound.py's (address, size or time cap): another try would be
        # refused the same, after the provider made (and billed) the answer again.
        wait = None if outbound.refusal(exc) else _backoff(retried, None)
        return _unreachable(provider, exc, retried), wait
    if status < 400:
        # Not followed (outbound.py); a redirect is no answer to relay to a caller either.
        detail = outbound.REDIRECT_REFUSED.format(status=status)
        error = ProviderError(provider=provider.name, kind=provider.kind.label, status=None,
                              detail=detail)  # fmt: skip
        return error, None
    error = _refused(provider, response, raw, retried)
    retry = status in _RETRIED or status >= 500
    return error, _backoff(retried, response.headers) if retry else None


async def _read(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    finally:
        await response.aclose()


def _backoff(retried: int, headers: httpx.Headers | None) -> float:
    after = _retry_after(headers) if headers is not None else None
    if after is not None and 0 <= after <= MAX_RETRY_AFTER_SECONDS:
        return after
    return min(0.5 * 2**retried, 8.0) * (1 - 0.25 * random.random())


def _retry_after(headers: httpx.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
    return None


def _timeout(provider: live.ProviderEntry) -> ProviderError:
    label = provider.kind.label
    message = UPSTREAM_TIMEOUT.format(
        provider=provider.name, kind=label, limit=f"{provider.timeout:g} s"
    )
    return ProviderError(
        provider=provider.name, kind=label, status=504, detail=message, message=message,
        code="upstream_timeout",
    )  # fmt: skip


def _worded(provider: live.ProviderEntry, name: str, text: str, retried: int) -> str:
    """A failure as LiteLLM words it for this kind."""
    again = f"{name}: " if name != "BadRequestError" else ""
    suffix = f" LiteLLM Retried: {retried} time{'s' if retried != 1 else ''}" if retried else ""
    detail = f"litellm.{name}: {again}{provider.kind.error_name}Exception - {text}{suffix}"
    return redact(detail, provider.secrets)[:1000]


def _unreachable(provider: live.ProviderEntry, exc: Exception, retried: int) -> ProviderError:
    refused = outbound.refusal(exc)
    detail = refused or _worded(provider, "APIConnectionError", "Connection error.", retried)
    return ProviderError(provider=provider.name, kind=provider.kind.label, status=None,
                         detail=redact(detail, provider.secrets))  # fmt: skip


def _refused(
    provider: live.ProviderEntry, response: httpx.Response, raw: bytes, retried: int
) -> ProviderError:
    status = response.status_code
    text = raw.decode("utf-8", "replace")
    if provider.kind.relay_error_message:
        text = _message_of(text)
    name = _ERROR_NAMES.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
    headers = None
    if status == 429:
        # Values are upstream text like any error body: a key echoed there is masked too.
        headers = {
            k.lower(): redact(v, provider.secrets)
            for k, v in response.headers.items()
            if RELAYED_HEADERS.match(k)
        }
    return ProviderError(
        provider=provider.name, kind=provider.kind.label, status=status,
        detail=_worded(provider, name, text, retried), headers=headers,
    )  # fmt: skip


def _message_of(text: str) -> str:
    """The error's message, as the OpenAI SDK reads it from a body; else the body."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return text
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else text


class RelayedStream(_GuardedStream):
    """A relayed stream's server-sent events, as bytes, logged and counted as a LiteLLM one
    is (_GuardedStream): the usage chunk the gateway asked for is dropped unless the caller
    asked for it too. Only chunks that carry a usage are parsed; an estimate (an abandoned
    or failed stream) parses what was received."""

    def __init__(self, response: httpx.Response, target, requested, started, *, call) -> None:
        super().__init__(self._events(response), target, requested, started, call=call)
        self._response = response
        self._raw: list[bytes] = []

    async def _events(self, response: httpx.Response) -> AsyncIterator[bytes]:
        provider = self._target.provider
        buffer, done = b"", False
        try:
            async for piece in response.aiter_raw():
                if done:
                    # Read to its end, as the OpenAI SDK does: a response closed unread takes
                    # its connection with it, and the next call would open another.
                    continue
                buffer += piece
                if b"\r" in buffer:
                    buffer = buffer.replace(b"\r\n", b"\n")
                if b"\n\n" not in buffer:
                    continue
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    data = _data(event)
                    if data == b"[DONE]":
                        done = True
                        break
                    if data:
                        yield data
        except httpx.TimeoutException:
            raise _timeout(provider) from None
        except httpx.HTTPError as exc:
            raise _unreachable(provider, exc, 0) from None
        finally:
            await response.aclose()

    def _shown(self, data: bytes) -> bytes | None:
        self._raw.append(data)
        if b'"usage"' in data and b'"usage":null' not in data and b'"usage": null' not in data:
            chunk = json.loads(data)
            if isinstance(chunk, dict) and chunk.get("usage"):
                self._usage = chunk
                if not self._call.asked_usage:
                    if _nothing_but_usage(chunk):
                        return None
                    chunk.pop("usage")
                    data = json.dumps(chunk).encode()
        return b"data: " + data + b"\n\n"

    def _spent(self, complete: bool) -> Spent:
        if (not complete or self._usage is None) and not self._received:
            for data in self._raw:
                self._received += _texts(data)
        return super()._spent(complete)

    async def __aiter__(self) -> AsyncIterator[Any]:
        inner = super().__aiter__()
        try:
            async for event in inner:
                yield event
        finally:
            # Closed early (the caller went away): the guard logs it, the connection goes.
            await inner.aclose()
            await self._response.aclose()


def _data(event: bytes) -> bytes:
    """The data of one server-sent event (comments, such as OpenRouter's keep-alives, and
    other fields dropped)."""
    lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line[:5] == b"data:"]
    # Joined by a space, not SSE's newline: the data is sent on as one `data:` line, and a
    # newline would let the upstream add fields (`event: error`) or whole events to the
    # caller's stream. A JSON chunk split over lines stays the same JSON.
    return b" ".join(lines)


def _nothing_but_usage(chunk: dict) -> bool:
    return all(
        isinstance(c, dict)
        and c.get("finish_reason") is None
        and not c.get("text")
        and not any((c.get("delta") or {}).values())
        for c in chunk.get("choices") or ()
    )


def _texts(data: bytes) -> list[str]:
    """What a chunk carries that an estimate counts: text, content, tool arguments."""
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError):
        return []
    found = []
    for choice in chunk.get("choices") or () if isinstance(chunk, dict) else ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        found += [t for t in (choice.get("text"), delta.get("content")) if isinstance(t, str) and t]
        for tool in delta.get("tool_calls") or ():
            arguments = (tool.get("function") or {}).get("arguments")
            if isinstance(arguments, str) and arguments:
                found.append(arguments)
    return found
