"""Calling models with the configuration in the database."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from usage import request_log

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
) -> None:
    """Queue one request-log record (written in batches, off the call path). `deployment`
    is the "provider/model" that answered a stream through a group: its chunks do not say."""
    provider, model, fallbacks, litellm_model = "", "", 0, ""
    if isinstance(target, live.GroupTarget):
        label = deployment or (answered_by(response) if response is not None else "")
        provider, _, model = label.partition("/")
        # Answered by a deployment of another group: a fallback group was used.
        fallbacks = int(bool(label) and label not in {d.label for d in target.group.deployments})
        if label:
            litellm_model = target.snapshot.providers[provider].kind.litellm_model(model)
    else:
        provider, model = target.provider.name, target.model
        litellm_model = target.provider.kind.litellm_model(model)
    usage = getattr(response, "usage", None)
    request_log.record(
        at=timezone.now(),
        requested_model=(requested or "default")[:264],
        provider=provider,
        model=model[:200],
        fallbacks=fallbacks,
        ok=error is None and not abandoned,
        status=ABANDONED_STATUS if abandoned else (error.status_code if error else 200),
        error=STREAM_ABANDONED if abandoned else (str(error)[:300] if error else ""),
        latency_ms=(time.perf_counter() - started) * 1000,
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        litellm_model=litellm_model,
        stream=stream,
        token_name=token_name or request_log.current_token.get(),
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
    """Chunks pass through unchanged; a failure mid-stream becomes a redacted ProviderError.
    The call is logged when the stream ends."""

    def __init__(self, stream: Any, target: live.Target | live.GroupTarget, requested, started):
        self._stream, self._target = stream, target
        self._requested, self._started = requested, started
        # Who made the call: the stream may be read after the caller's context is gone.
        self._token = request_log.current_token.get()
        # Which deployment answered: known once the Router has returned the stream (its
        # fallbacks happen before the first chunk), as for a plain call.
        self._deployment = ""
        if isinstance(target, live.GroupTarget):
            self._deployment = _mark_deployment(target, stream)

    def _finish(self, last: Any, error: ProviderError | None = None, **how: bool) -> None:
        _log(
            self._target,
            self._requested,
            self._started,
            response=last,
            error=error,
            stream=True,
            token_name=self._token,
            deployment=self._deployment,
            **how,
        )

    def __iter__(self) -> Iterator[Any]:
        last = None
        try:
            for last in self._stream:  # noqa: B007 - the last chunk carries usage, if any
                yield last
        except Exception as exc:  # noqa: BLE001
            error = _error(exc, self._target)
            self._finish(last, error)
            raise error from None
        except GeneratorExit:
            # The caller closed the stream early: still a call, and it is logged.
            self._finish(last, abandoned=True)
            raise
        self._finish(last)

    async def __aiter__(self) -> AsyncIterator[Any]:
        last = None
        try:
            async for chunk in self._stream:
                last = chunk
                yield chunk
        except Exception as exc:  # noqa: BLE001
            error = _error(exc, self._target)
            self._finish(last, error)
            raise error from None
        except (GeneratorExit, asyncio.CancelledError):
            # The client went away (aclose) or its request was cancelled: logged all the same.
            self._finish(last, abandoned=True)
            raise
        self._finish(last)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _mark_deployment(target: live.GroupTarget, response: Any) -> str:
    """Name the deployment that answered in the response's hidden params (a plain response or
    LiteLLM's stream wrapper: both carry the Router's deployment id), and return it."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        return ""
    hidden["routing_deployment"] = target.snapshot.deployment_label(hidden.get("model_id"))
    return hidden["routing_deployment"]


def _annotate(target, requested: str | None, started: float, response: Any, stream: bool) -> Any:
    if stream:
        return _GuardedStream(response, target, requested, started)
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
    return _annotate(target, model, started, response, kwargs.get("stream", False))


async def acompletion(
    messages: list[dict[str, Any]],
    model: str | None = None,
    *,
    snapshot: live.Snapshot | None = None,
    **kwargs: Any,
) -> Any:
    # The gateway passes the snapshot it authenticated against, so a request is checked and
    # routed by one configuration, never by two that a switch in between tells apart.
    snap = snapshot or live.peek() or await sync_to_async(live.snapshot)()
    target = _resolve(snap, model)
    started = time.perf_counter()
    try:
        kwargs = _extra_body(target, kwargs)
        if isinstance(target, live.GroupTarget):
            await alitellm()
            response = await target.snapshot.router().acompletion(
                model=target.group.name, messages=messages, **kwargs
            )
        else:
            lib = await alitellm()
            response = await lib.acompletion(messages=messages, **target.params, **kwargs)
    except Exception as exc:  # noqa: BLE001
        error = _error(exc, target)
        _log(target, model, started, error=error)
        raise error from None
    return _annotate(target, model, started, response, kwargs.get("stream", False))


def answered_by(response: Any) -> str:
    """Which deployment ("provider/model") answered a call routed through a group."""
    return (getattr(response, "_hidden_params", None) or {}).get("routing_deployment", "")
