"""The gateway's side of limits (limits.counters counts them): which limits a token's call
counts on, the refusals in OpenAI's shape with messages that name the limit, the token or
team, and when it resets, and models a budget cannot be kept on."""

from __future__ import annotations

import math

from django.http import JsonResponse

from limits import counters
from providers import services as provider_services
from providers.routing import live
from usage import pricing

OVER_RPM = (
    "Rate limit reached: {scope} {name!r} may make {limit} requests per minute. Try again in "
    "{seconds} s."
)
OVER_TPM = (
    "Rate limit reached: {scope} {name!r} may use {limit} tokens per minute and has used "
    "{used} in the last minute. Try again in {seconds} s."
)
OVER_PARALLEL = (
    "Rate limit reached: {scope} {name!r} may make {limit} concurrent requests, and {limit} "
    "are in flight. Try again when one of them ends."
)
OVER_BUDGET = (
    "Budget exceeded: {scope} {name!r} has spent ${spent} of its budget of ${budget} per "
    "{period}. It resets at {reset:%Y-%m-%d %H:%M} UTC (in {wait})."
)
OVER_BUDGET_TOTAL = (
    "Budget exceeded: {scope} {name!r} has spent ${spent} of its total budget of ${budget}, "
    "which does not reset; an admin can raise or lift it."
)
BUDGET_UNPRICED = (
    "{scope} {name!r} has a budget, and LiteLLM's price map has no price for {model!r}, so "
    "what a call costs could not be counted. Use a priced model, or ask an admin to lift the "
    "budget."
)
LIMITS_UNAVAILABLE = (
    "Limits cannot be counted right now (Redis does not answer), and this gateway refuses "
    "limited calls until it does. Try again shortly."
)


def subjects(token: live.TokenEntry) -> list[counters.Subject]:
    subjects = [counters.Subject("token", token.name, token.limits)]
    if token.team:
        subjects.append(counters.Subject("team", token.team, token.team_limits))
    return [s for s in subjects if s.limits]


def ledger_keys(token: live.TokenEntry) -> tuple[str, ...]:
    keys = [counters.Subject("token", token.name, token.limits).key]
    if token.team:
        keys.append(counters.Subject("team", token.team, token.team_limits).key)
    return tuple(keys)


def unpriced(snap: live.Snapshot, subjects: list[counters.Subject], model: str) -> str:
    """Why a budgeted call may not go to this model (no price to count it by), or ""."""
    budgeted = next((s for s in subjects if s.limits.budget), None)
    if budgeted is None:
        return ""
    try:
        target = snap.resolve(model)
    except (live.UnknownModel, live.Unavailable):
        return ""  # answered, and logged, by the call itself
    for litellm_model in provider_services.litellm_models(target):
        if not pricing.priced(litellm_model):
            return BUDGET_UNPRICED.format(
                scope=budgeted.scope.capitalize(), name=budgeted.name, model=litellm_model
            )
    return ""


def _usd(nanousd: int) -> str:
    return f"{nanousd / 1e9:,.6f}".rstrip("0").rstrip(".") if nanousd else "0"


def _duration(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return f"{math.ceil(seconds)} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{math.ceil(hours / 24)} days"


def _refusal_message(reading: counters.Reading) -> str:
    subject = reading.subject
    named = {"scope": subject.scope, "name": subject.name, "limit": reading.limit}
    seconds = math.ceil(reading.reset_seconds) if math.isfinite(reading.reset_seconds) else 0
    if reading.kind == "rpm":
        return OVER_RPM.format(**named, seconds=seconds)
    if reading.kind == "tpm":
        return OVER_TPM.format(**named, used=reading.used, seconds=seconds)
    if reading.kind == "max_parallel":
        return OVER_PARALLEL.format(**named)
    budget = subject.limits.budget
    spent, limit = _usd(reading.used), _usd(reading.limit)
    if not math.isfinite(reading.reset_seconds):
        return OVER_BUDGET_TOTAL.format(**named, spent=spent, budget=limit)
    return OVER_BUDGET.format(
        **named, spent=spent, budget=limit, period=budget.period,
        reset=counters.period_end(reading), wait=_duration(reading.reset_seconds),
    )  # fmt: skip


# The error's type per limit: OpenAI's for rate limits, and for a spent quota.
REFUSAL_TYPES = {
    "rpm": "requests",
    "tpm": "tokens",
    "max_parallel": "requests",
    "budget": "insufficient_quota",
}


def over_limit(ticket: counters.Ticket, error) -> tuple[str, JsonResponse]:
    """The refusal's message (for the request log too) and OpenAI's 429, made by `error`
    (the gateway's error answer)."""
    if ticket.refused is None:  # Redis down, and the failure mode is "closed"
        response = error(429, LIMITS_UNAVAILABLE, "requests", "limits_unavailable")
        response["Retry-After"] = counters.retry_after(counters.REDIS_RETRY_AFTER_SECONDS)
        return LIMITS_UNAVAILABLE, response
    reading = ticket.refused
    message = _refusal_message(reading)
    code = "budget_exceeded" if reading.kind == "budget" else "rate_limit_exceeded"
    response = error(429, message, REFUSAL_TYPES[reading.kind], code)
    if reading.kind == "budget":
        # Retrying within the SDK's minute cannot help: a budget frees when its period turns.
        response["x-should-retry"] = "false"
    if math.isfinite(reading.reset_seconds):
        response["Retry-After"] = counters.retry_after(reading.reset_seconds)
    for name, value in counters.rate_headers(ticket).items():
        response[name] = value
    return message, response
