"""Calling models with the configuration in the database."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from usage import request_log
from usage.pricing import Spent

from ..redact import redact
from ..routing import live, outbound
from ..routing.llm import alitellm, litellm

UPSTREAM_FAILED = "Provider {provider!r} ({kind}) failed{status}: {detail}"
UPSTREAM_TIMEOUT = (
    "Provider {provider!r} ({kind}) did not answer within its timeout of {limit}; an admin can "
    "raise the timeout on the provider's page."
)
GROUP_TIMEOUT = (
    "Routing group {provider!r} got no answer within its deployments' timeout of {limit}; an "
    "admin can raise the timeout of the deployments or of their providers."
)
PARAMETER_UNSUPPORTED = (
    "Provider {provider!r} ({kind}) does not support {params}: leave it out, or ask an admin "
    'to tick "Drop parameters this provider does not support" on the provider.'
)
PARAMETER_UNSUPPORTED_IN_GROUP = (
    "Provider {provider!r} ({kind}) of routing group {group!r} does not support {params}: leave "
    "it out, or ask an admin to tick \"Drop parameters a deployment's provider does not "
    'support" on the group.'
)
# Rate-limit headers of an upstream 429, relayed to the caller so that it can wait as told.
RELAYED_HEADERS = re.compile(r"^(retry-after(-ms)?|x-ratelimit-[a-z0-9-]+)$", re.IGNORECASE)
_UNSUPPORTED = re.compile(
    r"(?P<prefix>\S+) does not support parameters: [\[{](?P<params>.*?)[\]}], "
    r"for model=(?P<model>\S+?)\."
)
STREAM_ABANDONED = "The caller stopped reading the stream before it ended."
STREAM_ABANDONED_ESTIMATED = (
    "The caller stopped reading the stream before it ended; its tokens are estimated."
)
TOKENS_ESTIMATED = " (tokens estimated)"
# nginx's "client closed request": not an upstream status, and not a success either.
ABANDONED_STATUS = 499

UnknownModel = live.UnknownModel
Unavailable = live.Unavailable


class ProviderError(Exception):
    """An upstream failure: names the provider (or group) and status, never contains a key."""

    def __init__(
        self,
        *,
        provider: str,
        kind: str,
        status: int | None,
        detail: str,
        message: str = "",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.status_code = status
        self.detail = detail
        # What the gateway answers: "upstream_timeout", "unsupported_parameter", or None.
        self.code = code
        self.param = param
        self.headers = headers or {}
        suffix = f" with HTTP {status}" if status else ""
        super().__init__(
            message
            or UPSTREAM_FAILED.format(provider=provider, kind=kind, status=suffix, detail=detail)
        )


def _describe(target: live.Target | live.GroupTarget) -> tuple[str, str, tuple[str, ...]]:
    if isinstance(target, live.GroupTarget):
        return target.group.name, "routing group", target.secrets
    return target.provider.name, target.provider.kind.label, target.provider.secrets


def _timeout_limit(target: live.Target | live.GroupTarget) -> str:
    if isinstance(target, live.GroupTarget):
        limits = sorted({d.router_params()["timeout"] for d in target.group.deployments})
        return " to ".join(f"{limit:g} s" for limit in (limits[0], limits[-1])[: len(limits)])
    return f"{target.provider.timeout:g} s"


class _NotSent(Exception):
    """Parameters in `extra_body` that a provider's kind would not send as parameters."""

    def __init__(self, provider: live.ProviderEntry, params: list[str]) -> None:
        self.provider, self.params = provider, params
        super().__init__(f"{provider.name}: {params}")


def _extra_body(target: live.Target | live.GroupTarget, kwargs: dict[str, Any]) -> dict:
    """kwargs for LiteLLM: `extra_body` left out for providers whose kind cannot send it
    when they (or the group) drop unsupported parameters, else refused naming them."""
    extra = kwargs.get("extra_body")
    if not extra:
        return kwargs
    if isinstance(target, live.GroupTarget):
        dropping = [(d.provider, d.drop_params) for d in target.group.deployments]
    else:
        dropping = [(target.provider, False)]
    blocked = [(p, drop or p.drop_params) for p, drop in dropping if not p.kind.sends_extra_body]
    for provider, drop in blocked:
        if not drop:
            raise _NotSent(provider, sorted(extra))
    return {k: v for k, v in kwargs.items() if k != "extra_body"} if blocked else kwargs


def _special(exc: Exception, target, name: str, kind: str) -> ProviderError | None:
    """Failures the gateway answers with a status of their own, or None."""
    if isinstance(exc, _NotSent):
        named = ", ".join(repr(p) for p in exc.params)
        named = f"the parameter{'s' if len(exc.params) > 1 else ''} {named}"
        provider = exc.provider
        if isinstance(target, live.GroupTarget):
            message = PARAMETER_UNSUPPORTED_IN_GROUP.format(
                provider=provider.name, kind=provider.kind.label, group=name, params=named
            )
        else:
            message = PARAMETER_UNSUPPORTED.format(provider=name, kind=kind, params=named)
        return ProviderError(
            provider=name, kind=kind, status=400, detail=message, message=message,
            code="unsupported_parameter", param=exc.params[0],
        )  # fmt: skip
    lib = litellm()
    if isinstance(exc, lib.Timeout):
        limit = _timeout_limit(target)
        template = GROUP_TIMEOUT if isinstance(target, live.GroupTarget) else UPSTREAM_TIMEOUT
        message = template.format(provider=name, kind=kind, limit=limit)
        return ProviderError(
            provider=name, kind=kind, status=504, detail=message, message=message,
            code="upstream_timeout",
        )  # fmt: skip
    if isinstance(exc, lib.UnsupportedParamsError):
        found = _UNSUPPORTED.search(str(exc))
        params = re.findall(r"'([^']+)'", found["params"]) if found else []
        named = ", ".join(repr(p) for p in params)
        named = f"the parameter{'s' if len(params) > 1 else ''} {named}".rstrip()
        if isinstance(target, live.GroupTarget):
            provider, kind = _deployment_of(target, found)
            message = PARAMETER_UNSUPPORTED_IN_GROUP.format(
                provider=provider, kind=kind, group=name, params=named
            )
        else:
            message = PARAMETER_UNSUPPORTED.format(provider=name, kind=kind, params=named)
        return ProviderError(
            provider=name, kind=kind, status=400, detail=message, message=message,
            code="unsupported_parameter", param=params[0] if params else None,
        )  # fmt: skip
    return None


def _deployment_of(target: live.GroupTarget, found: re.Match | None) -> tuple[str, str]:
    """(provider name, kind label) of the group's deployment LiteLLM names in its error."""
    for deployment in target.group.deployments:
        kind = deployment.provider.kind
        if found and (found["prefix"], found["model"]) == (kind.litellm_prefix, deployment.model):
            return deployment.provider.name, kind.label
    return "(unknown)", found["prefix"] if found else "unknown kind"


def _relayed_headers(exc: Exception, secrets: tuple[str, ...]) -> dict[str, str]:
    # LiteLLM keeps the provider's headers apart; its `response` is one it made up. Their
    # values are upstream text like any error body: a key echoed there is masked too.
    headers = getattr(exc, "litellm_response_headers", None) or getattr(
        getattr(exc, "response", None), "headers", None
    )
    return {
        k.lower(): redact(str(v), secrets)
        for k, v in (headers or {}).items()
        if RELAYED_HEADERS.match(k)
    }


def _error(exc: Exception, target: live.Target | live.GroupTarget) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc  # the relay's (relay.py), already worded
    name, kind, secrets = _describe(target)
    special = _special(exc, target, name, kind)
    if special is not None:
        return special
    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    refused = outbound.refusal(exc)
    if refused:
        # LiteLLM reports a refused connection as "Connection error." (HTTP 500): say why,
        # and that no provider answered.
        status, detail = None, refused
    elif isinstance(status, int) and 300 <= status < 400:
        # Not followed (outbound.py); a redirect is no answer to relay to a caller either.
        status, detail = None, outbound.REDIRECT_REFUSED.format(status=status)
    elif outbound.unreachable(exc):
        status = None
    return ProviderError(
        provider=name,
        kind=kind,
        status=status if isinstance(status, int) else None,
        detail=redact(str(detail), secrets)[:1000],
        headers=_relayed_headers(exc, secrets) if status == 429 else None,
    )


def _answered(
    target: live.Target | live.GroupTarget, response: Any = None, deployment: str = ""
) -> tuple[str, str, int, str]:
    """(provider, model, fallbacks used, LiteLLM model) of what answered a call."""
    if isinstance(target, live.GroupTarget):
        label = deployment or (answered_by(response) if response is not None else "")
        provider, _, model = label.partition("/")
        # Answered by a deployment of another group: a fallback group was used.
        fallbacks = int(bool(label) and label not in {d.label for d in target.group.deployments})
        litellm_model = ""
        if label:
            litellm_model = target.snapshot.providers[provider].kind.litellm_model(model)
        return provider, model, fallbacks, litellm_model
    provider, model = target.provider.name, target.model
    return provider, model, 0, target.provider.kind.litellm_model(model)


def litellm_models(target: live.Target | live.GroupTarget) -> tuple[str, ...]:
    """Every LiteLLM model that may answer a call to `target` (a group's deployments, and
    those of its fallback groups)."""
    if not isinstance(target, live.GroupTarget):
        return (target.provider.kind.litellm_model(target.model),)
    groups = [target.group, *(target.snapshot.groups[name] for name in target.group.fallbacks
                              if name in target.snapshot.groups)]  # fmt: skip
    return tuple(
        dict.fromkeys(d.provider.kind.litellm_model(d.model) for g in groups for d in g.deployments)
    )


def _spent_of(litellm_model: str, response: Any) -> Spent | None:
    """Tokens from an answer's usage: chat's and embeddings' prompt/completion tokens, or the
    Responses and Anthropic APIs' input/output tokens (an object, or a dict)."""
    usage = _field(response, "usage")
    if usage is None:
        return None
    prompt = _field(usage, "prompt_tokens")
    if prompt is None:
        prompt = _field(usage, "input_tokens")
    completion = _field(usage, "completion_tokens")
    if completion is None:
        completion = _field(usage, "output_tokens")
    if prompt is None and completion is None:
        return None
    return Spent(litellm_model, prompt or 0, completion or 0)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def estimate(litellm_model: str, messages: list, received: str) -> Spent:
    """Tokens of a call whose usage never came (its caller abandoned the stream, or it failed
    midway): the prompt and what was received, counted with LiteLLM's default tokenizer
    (never one downloaded, nor an image fetched)."""
    lib = litellm()
    try:
        prompt = lib.token_counter(messages=messages, use_default_image_token_count=True)
    except Exception:  # noqa: BLE001 - content it cannot read: count its text at least
        prompt = lib.token_counter(text=" ".join(str(m) for m in messages))
    completion = lib.token_counter(text=received, count_response_tokens=True) if received else 0
    return Spent(litellm_model, prompt, completion, estimated=True)


def _log(
    target: live.Target | live.GroupTarget,
    requested: str | None,
    started: float,
    *,
    response: Any = None,
    error: ProviderError | None = None,
    stream: bool = False,
    token_name: str | None = None,
    abandoned: bool = False,
    deployment: str = "",
    spent: Spent | None = None,
    spend_counted: bool = False,
) -> None:
    """Queue one request-log record (written in batches, off the call path). `deployment`
    is the "provider/model" that answered a stream through a group: its chunks do not say.
    `spent`: the call's tokens when known otherwise than from `response` (an estimate)."""
    provider, model, fallbacks, litellm_model = _answered(target, response, deployment)
    if spent is None:
        spent = _spent_of(litellm_model, response)
    message = ""
    if abandoned:
        message = STREAM_ABANDONED_ESTIMATED if spent and spent.estimated else STREAM_ABANDONED
    elif error:
        message = str(error)[: 300 - len(TOKENS_ESTIMATED)]
        if spent and spent.estimated:
            message += TOKENS_ESTIMATED
    request_log.record(
        at=timezone.now(),
        requested_model=(requested or "default")[:264],
        provider=provider,
        model=model[:200],
        fallbacks=fallbacks,
        ok=error is None and not abandoned,
        status=ABANDONED_STATUS if abandoned else (error.status_code if error else 200),
        error=message,
        latency_ms=(time.perf_counter() - started) * 1000,
        prompt_tokens=spent.prompt_tokens if spent else None,
        completion_tokens=spent.completion_tokens if spent else None,
        litellm_model=litellm_model,
        stream=stream,
        token_name=token_name or request_log.current_token.get(),
        spend_counted=spend_counted,
    )


def log_refused(*, requested: str | None, status: int, message: str) -> None:
    """Log a call refused before any provider was asked: an unknown model (404), nothing to
    serve it (503), a model the caller's token may not use (403)."""
    request_log.record(
        at=timezone.now(),
        requested_model=(requested or "default")[:264],
        ok=False,
        status=status,
        error=message[:300],
        latency_ms=0.0,
    )


def _resolve(snap: live.Snapshot, model: str | None) -> live.Target | live.GroupTarget:
    try:
        return snap.resolve(model)
    except live.UnknownModel as exc:
        log_refused(requested=model, status=404, message=str(exc))
        raise
    except live.Unavailable as exc:
        log_refused(requested=model, status=503, message=str(exc))
        raise


class _GuardedStream:
    """Chunks pass through; a failure mid-stream becomes a redacted ProviderError. The call is
    logged, and its usage handed to `on_spent`, when the stream ends, fails or is abandoned.

    Usage is always asked of the provider (stream_options.include_usage): without it LiteLLM
    keeps the usage chunk to itself. A caller that did not ask gets no usage chunk, as from
    OpenAI. Where no usage came (abandoned, failed), the tokens are estimated."""

    def __init__(self, stream: Any, target, requested, started, *, call: _Call) -> None:
        self._stream, self._target = stream, target
        self._requested, self._started = requested, started
        self._call = call
        # Who made the call: the stream may be read after the caller's context is gone.
        self._token = request_log.current_token.get()
        # Which deployment answered: known once the Router has returned the stream (its
        # fallbacks happen before the first chunk), as for a plain call.
        self._deployment = ""
        if isinstance(target, live.GroupTarget):
            self._deployment = _mark_deployment(target, stream)
        self._usage: Any = None
        self._received: list[str] = []

    def _seen(self, chunk: Any) -> bool:
        """Note what the chunk carries; False for a usage chunk the caller did not ask for."""
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = chunk
        for choice in getattr(chunk, "choices", None) or ():
            # A legacy text completion's chunk carries `text` where chat's has a delta.
            if getattr(choice, "text", None):
                self._received.append(choice.text)
            delta = getattr(choice, "delta", None)
            if getattr(delta, "content", None):
                self._received.append(delta.content)
            for tool in getattr(delta, "tool_calls", None) or ():
                arguments = getattr(getattr(tool, "function", None), "arguments", None)
                if arguments:
                    self._received.append(arguments)
        if usage is None or self._call.asked_usage:
            return True
        if _carries_nothing_but_usage(chunk):
            return False
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            chunk.usage = None
        return True

    def _shown(self, chunk: Any) -> Any:
        """The chunk as the caller gets it, or None for one it does not."""
        return chunk if self._seen(chunk) else None

    def _spent(self, complete: bool) -> Spent:
        litellm_model = _answered(self._target, deployment=self._deployment)[3]
        found = _spent_of(litellm_model, self._usage) if self._usage is not None else None
        if found is not None and complete:
            return found
        return found or estimate(litellm_model, self._call.messages, "".join(self._received))

    def _finish(self, spent, error=None, counted=False, **how: bool) -> None:
        _log(
            self._target,
            self._requested,
            self._started,
            error=error,
            stream=True,
            token_name=self._token,
            deployment=self._deployment,
            spent=spent,
            spend_counted=counted,
            **how,
        )

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._stream:
                if (shown := self._shown(chunk)) is not None:
                    yield shown
        except Exception as exc:  # noqa: BLE001
            error = _error(exc, self._target)
            self._finish(self._spent(False), error)
            raise error from None
        except GeneratorExit:
            # The caller closed the stream early: still a call, and it is logged.
            self._finish(self._spent(False), abandoned=True)
            raise
        self._finish(self._spent(True))

    async def _settle(self, spent: Spent) -> bool:
        return bool(await self._call.on_spent(spent)) if self._call.on_spent else False

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._stream:
                if (shown := self._shown(chunk)) is not None:
                    yield shown
        except Exception as exc:  # noqa: BLE001
            error = _error(exc, self._target)
            spent = await asyncio.to_thread(self._spent, False)
            self._finish(spent, error, await self._settle(spent))
            raise error from None
        except (GeneratorExit, asyncio.CancelledError):
            # The client went away (aclose) or its request was cancelled: logged, and
            # counted, all the same; counting waits on Redis or the database, so a task of
            # its own does it (this one is being torn down).
            if self._call.on_spent is None:
                self._finish(self._spent(False), abandoned=True)
            else:
                _keep(asyncio.get_running_loop().create_task(self._abandoned()))
            raise
        spent = self._spent(True)
        self._finish(spent, counted=await self._settle(spent))

    async def _abandoned(self) -> None:
        spent = await asyncio.to_thread(self._spent, False)
        self._finish(spent, counted=await self._settle(spent), abandoned=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_tasks: set[asyncio.Task] = set()


def _keep(task: asyncio.Task) -> None:
    """Hold a reference to a task nobody awaits, until it is done."""
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _carries_nothing_but_usage(chunk: Any) -> bool:
    return all(
        getattr(c, "finish_reason", None) is None
        and not getattr(c, "text", None)
        and not any(
            getattr(getattr(c, "delta", None), name, None)
            for name in ("content", "tool_calls", "function_call", "role", "reasoning_content")
        )
        for c in getattr(chunk, "choices", None) or ()
    )


@dataclass(frozen=True)
class _Call:
    messages: list
    # Whether the caller asked for the usage chunk itself.
    asked_usage: bool
    # Called with the call's Spent once it is known; True: it counted the cost in the ledger.
    on_spent: Callable[[Spent | None], Awaitable[bool]] | None = None


def _with_usage(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """kwargs that ask a stream's usage of the provider, and whether the caller had."""
    if not kwargs.get("stream"):
        return kwargs, False
    options = kwargs.get("stream_options") or {}
    asked = bool(isinstance(options, dict) and options.get("include_usage"))
    return {**kwargs, "stream_options": {**options, "include_usage": True}}, asked


def _mark_deployment(target: live.GroupTarget, response: Any) -> str:
    """Name the deployment that answered in the response's hidden params (a plain response or
    LiteLLM's stream wrapper: both carry the Router's deployment id), and return it. An answer
    without them (the Messages API's dict or byte stream) is named by the Router's last
    attempt."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        tried = _tried.get()
        return target.snapshot.deployment_label(tried[-1]) if tried else ""
    hidden["routing_deployment"] = target.snapshot.deployment_label(hidden.get("model_id"))
    return hidden["routing_deployment"]


# The deployments a Router call tried, in order: each attempt's pre-call check adds its id
# to the call's list (one list, so that contexts copied from the call's add to it too).
_tried: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("tried", default=None)


@functools.cache
def _watch_attempts() -> None:
    from litellm.integrations.custom_logger import CustomLogger

    class Attempts(CustomLogger):
        async def async_pre_call_check(self, deployment: dict, parent_otel_span=None) -> None:
            tried = _tried.get()
            if tried is not None:
                tried.append(str((deployment.get("model_info") or {}).get("id", "")))

    litellm().callbacks.append(Attempts())


def _annotate(target, requested: str | None, started: float, response: Any) -> Any:
    if isinstance(target, live.GroupTarget):
        _mark_deployment(target, response)
    _log(target, requested, started, response=response)
    return response


def completion(messages: list[dict[str, Any]], model: str | None = None, **kwargs: Any) -> Any:
    """`model=None` (or "default") uses the active default; a routing group's name routes
    through the group; "<provider>/<model id>" addresses one provider. Everything else is
    passed to LiteLLM unchanged (stream=True, tools, ...)."""
    target = _resolve(live.snapshot(), model)
    started = time.perf_counter()
    kwargs, asked = _with_usage(kwargs)
    try:
        kwargs = _extra_body(target, kwargs)
        if isinstance(target, live.GroupTarget):
            response = target.snapshot.router().completion(
                model=target.group.name, messages=messages, **kwargs
            )
        else:
            response = litellm().completion(messages=messages, **target.params, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every upstream failure becomes one error type
        error = _error(exc, target)
        _log(target, model, started, error=error)
        # `from None`: the original exception may carry the request, key included.
        raise error from None
    if kwargs.get("stream"):
        return _GuardedStream(response, target, model, started, call=_Call(messages, asked))
    return _annotate(target, model, started, response)


# The Router's name for a LiteLLM function where the two differ.
ROUTER_METHODS = {"anthropic_messages": "aanthropic_messages"}

# Wraps a streamed answer so that the call is logged and counted when the stream ends:
# (stream, target, requested model, started, on_spent) -> what the caller iterates.
StreamGuard = Callable[..., Any]


async def acall(
    function: str,
    *,
    model: str | None = None,
    snapshot: live.Snapshot | None = None,
    on_spent: Callable[[Spent | None], Awaitable[bool]] | None = None,
    guard: StreamGuard | None = None,
    relayable: bool = False,
    **kwargs: Any,
) -> Any:
    """Any async LiteLLM call by its function's name ("acompletion", "aembedding",
    "atext_completion", "aresponses", "anthropic_messages"...), routed as `completion` routes
    a model: through a group's Router (its method of the same name), else to one provider.

    `on_spent` is awaited with what the call used (its Spent; None when it failed with
    nothing used) before a plain answer is returned; it returns True when it put the call's
    cost in the spend ledger. A streamed answer (`stream=True`) is handed to `guard`, which
    logs and counts it when it ends; without a guard a stream is refused (a call must never
    go uncounted).

    `relayable`: the caller takes a relayed answer (the gateway does): for a provider whose
    kind relays the call, a `Relayed` (the answer's bytes and JSON) or a stream of server-sent
    events as bytes, made without LiteLLM (relay.py); else LiteLLM's objects, always."""
    if kwargs.get("stream") and guard is None:
        raise TypeError(f"{function}(stream=True) needs a stream guard")
    # The gateway passes the snapshot it authenticated against, so a request is checked and
    # routed by one configuration, never by two that a switch in between tells apart.
    snap = snapshot or live.peek() or await sync_to_async(live.snapshot)()
    target = _resolve(snap, model)
    started = time.perf_counter()
    reset = _tried.set([])
    try:
        if relayable:
            from . import relay

            if relay.relays(function, target, kwargs):
                return await relay.call(function, target, model, started, on_spent, guard, kwargs)
        return await _acall(function, target, model, started, on_spent, guard, kwargs)
    finally:
        _tried.reset(reset)


async def _acall(function, target, model, started, on_spent, guard, kwargs) -> Any:
    try:
        kwargs = _extra_body(target, kwargs)
        lib = await alitellm()
        if isinstance(target, live.GroupTarget):
            _watch_attempts()
            method = getattr(target.snapshot.router(), ROUTER_METHODS.get(function, function))
            response = await method(model=target.group.name, **kwargs)
        else:
            params = target.provider.kind.call_params(function, target.params)
            response = await getattr(lib, function)(**params, **kwargs)
    except Exception as exc:  # noqa: BLE001
        error = _error(exc, target)
        counted = bool(await on_spent(None)) if on_spent else False
        _log(target, model, started, error=error, spend_counted=counted)
        raise error from None
    if kwargs.get("stream"):
        return guard(response, target, model, started, on_spent)
    deployment = ""
    if isinstance(target, live.GroupTarget):
        deployment = _mark_deployment(target, response)
    spent = _spent_of(_answered(target, response, deployment)[3], response)
    counted = bool(await on_spent(spent)) if on_spent else False
    _log(
        target, model, started,
        response=response, spent=spent, spend_counted=counted, deployment=deployment,
    )  # fmt: skip
    return response


async def acompletion(
    messages: list[dict[str, Any]],
    model: str | None = None,
    *,
    snapshot: live.Snapshot | None = None,
    on_spent: Callable[[Spent | None], Awaitable[bool]] | None = None,
    relayable: bool = False,
    **kwargs: Any,
) -> Any:
    """As `completion`, awaited, with `acall`'s `snapshot`, `on_spent` and `relayable`."""
    kwargs, asked = _with_usage(kwargs)
    return await acall(
        "acompletion",
        model=model,
        snapshot=snapshot,
        on_spent=on_spent,
        guard=_guard(messages, asked),
        relayable=relayable,
        messages=messages,
        **kwargs,
    )


@dataclass(frozen=True)
class _guard:  # noqa: N801 - a StreamGuard, called like the functions other APIs pass
    """A stream guard for chat and text completions; `messages` what an estimate counts,
    `asked` whether the caller asked for the usage chunk (the relay reads both)."""

    messages: list
    asked: bool

    def __call__(self, stream, target, requested, started, on_spent) -> _GuardedStream:
        call = _Call(self.messages, self.asked, on_spent)
        return _GuardedStream(stream, target, requested, started, call=call)


async def aembedding(
    input: Any,
    model: str | None = None,
    *,
    snapshot: live.Snapshot | None = None,
    on_spent: Callable[[Spent | None], Awaitable[bool]] | None = None,
    relayable: bool = False,
    **kwargs: Any,
) -> Any:
    """Embeddings of `input` (a text, a list of texts, token IDs), routed as `acall` routes;
    its prompt tokens are what it spent."""
    return await acall(
        "aembedding",
        model=model,
        snapshot=snapshot,
        on_spent=on_spent,
        relayable=relayable,
        input=input,
        **kwargs,
    )


async def atext_completion(
    prompt: Any,
    model: str | None = None,
    *,
    snapshot: live.Snapshot | None = None,
    on_spent: Callable[[Spent | None], Awaitable[bool]] | None = None,
    relayable: bool = False,
    **kwargs: Any,
) -> Any:
    """A legacy text completion of `prompt`, plain or streamed (`stream=True`), routed as
    `acall` routes. LiteLLM calls a provider's own /completions where it has one (OpenAI's
    instruct models, OpenAI-compatible servers), else its chat completions."""
    kwargs, asked = _with_usage(kwargs)
    counted = [{"role": "user", "content": prompt if isinstance(prompt, str) else str(prompt)}]
    return await acall(
        "atext_completion",
        model=model,
        snapshot=snapshot,
        on_spent=on_spent,
        guard=_guard(counted, asked),
        relayable=relayable,
        prompt=prompt,
        **kwargs,
    )


def answered_by(response: Any) -> str:
    """Which deployment ("provider/model") answered a call routed through a group."""
    return (getattr(response, "_hidden_params", None) or {}).get("routing_deployment", "")
