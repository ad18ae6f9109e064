"""The gateway's Prometheus metrics, counted where every call passes: the request log's record.

Imported only once observability.setup has chosen the multiprocess directory (multiproc.py):
prometheus_client picks its storage when it is imported. Labels are names the configuration
holds (groups, providers, token names, teams) or the gateway's own (endpoints, statuses):
never a key, a token's value, a prompt or an error text. A model ID comes from the caller
when a model is addressed as "<provider>/<model>": past MAX_MODELS of them a process counts
the others as "(other)", so that callers cannot grow the series without end.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess

from providers.routing import live

from .context import current_request

BASE = ("endpoint", "group", "provider", "model", "token", "team")
# Histograms leave the token and team out: each label set costs a series per bucket.
TIMING = ("endpoint", "group", "provider", "model")
MAX_MODELS = 500
OTHER_MODEL = "(other)"
# Seconds: from a fast local model's answer to a long reasoning call's.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)

# Not registered in prometheus_client's default registry: /metrics reads every worker's
# files (MultiProcessCollector), never one process's memory.
requests = Counter(
    "routing_requests",
    "Calls through the gateway, by HTTP status.",
    [*BASE, "status"],
    registry=None,
)
errors = Counter(
    "routing_request_errors",
    "Calls that failed (refused, upstream error, abandoned stream), by HTTP status.",
    [*BASE, "status"],
    registry=None,
)
latency = Histogram(
    "routing_request_duration_seconds",
    "Time from the call to its answer (a stream: to its end).",
    TIMING,
    buckets=LATENCY_BUCKETS,
    registry=None,
)
first_token = Histogram(
    "routing_time_to_first_token_seconds",
    "Streamed calls: time from the request to the first chunk sent to the caller.",
    TIMING,
    buckets=FIRST_TOKEN_BUCKETS,
    registry=None,
)
tokens = Counter(
    "routing_tokens", "Tokens used, by type (prompt, completion).", [*BASE, "type"], registry=None
)
cost = Counter(
    "routing_cost_usd",
    "Cost in US dollars of the calls written to the request log (priced by its writer).",
    BASE,
    registry=None,
)
fallbacks = Counter(
    "routing_fallbacks",
    "Calls that a fallback group answered (provider and model: the fallback's deployment).",
    BASE,
    registry=None,
)
cooldowns = Counter(
    "routing_cooldowns",
    "Deployments put in cooldown by the router, by the status that caused it.",
    ["group", "provider", "model", "status"],
    registry=None,
)
log_pending = Gauge(
    "routing_request_log_pending",
    "Request-log records waiting to be written (all workers).",
    multiprocess_mode="livesum",
    registry=None,
)
log_failed_writes = Counter(
    "routing_request_log_failed_writes",
    "Request-log batches the database refused (each is queued again).",
    registry=None,
)
log_dropped = Counter(
    "routing_request_log_dropped",
    "Request-log records dropped because the queue was full.",
    registry=None,
)
config_version = Gauge(
    "routing_config_version",
    "Configuration version each worker serves (one series per worker pid).",
    multiprocess_mode="liveall",
    registry=None,
)

_models_lock = threading.Lock()
_models: set[tuple[str, str]] = set()
# (snapshot, token name -> team name), rebuilt when the snapshot changes.
_teams: tuple[Any, dict[str, str]] = (None, {})


# This server's directory (multiproc.py), read when prometheus_client was imported.
PATH = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def render() -> bytes:
    """Every worker's metrics, in Prometheus' text format."""
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=PATH)
    return generate_latest(registry)


def _model(provider: str, model: str) -> str:
    key = (provider, model)
    if key in _models:
        return model
    with _models_lock:
        if len(_models) >= MAX_MODELS:
            return OTHER_MODEL
        _models.add(key)
    return model


def _team(snap: Any, token: str) -> str:
    global _teams
    built, teams = _teams
    if built is not snap:
        teams = {t.name: t.team for t in snap.tokens.values()} if snap is not None else {}
        _teams = (snap, teams)
    return teams.get(token, "")


def _group(snap: Any, requested: str) -> str:
    if snap is None:
        return ""
    if requested in snap.groups:
        return requested
    if requested == "default" and snap.default is not None:
        return snap.default.group
    return ""


def labels_of(fields: dict[str, Any], endpoint: str) -> tuple[str, ...]:
    """The BASE labels of a request-log record."""
    snap = live.last_built()
    provider = fields.get("provider", "")
    token = fields.get("token_name", "")
    return (
        endpoint,
        _group(snap, fields.get("requested_model", "")),
        provider,
        _model(provider, fields.get("model", "")),
        token,
        _team(snap, token),
    )


class _Series:
    """The children of every metric a record counts, for one label set: found once, since
    prometheus_client's labels() costs more than the count itself."""

    def __init__(self, labels: tuple[str, ...], status: str) -> None:
        self.labels, self.status = labels, status
        self.requests = requests.labels(*labels, status)
        self.latency = latency.labels(*labels[:4])
        self.prompt = tokens.labels(*labels, "prompt")
        self.completion = tokens.labels(*labels, "completion")

    # Made on first use: a series made is exposed, zero or not (a histogram's, per bucket).
    @functools.cached_property
    def errors(self) -> Any:
        return errors.labels(*self.labels, self.status)

    @functools.cached_property
    def first_token(self) -> Any:
        return first_token.labels(*self.labels[:4])

    @functools.cached_property
    def fallbacks(self) -> Any:
        return fallbacks.labels(*self.labels)


_series: dict[tuple, _Series] = {}


def recorded(fields: dict[str, Any], endpoint: str) -> None:
    """One call, as the request log records it (before it is queued)."""
    labels = labels_of(fields, endpoint)
    fields["metric_labels"] = labels  # for the writer, which prices the call (written())
    status = str(fields.get("status") or "")
    key = (labels, status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = _Series(labels, status)
    series.requests.inc()
    if not fields.get("ok"):
        series.errors.inc()
    series.latency.observe(fields.get("latency_ms", 0.0) / 1000)
    if fields.get("stream"):
        state = current_request.get()
        if state is not None and state.first_byte_at:
            series.first_token.observe(state.first_byte_at - state.started_at)
    if fields.get("prompt_tokens"):
        series.prompt.inc(fields["prompt_tokens"])
    if fields.get("completion_tokens"):
        series.completion.inc(fields["completion_tokens"])
    if fields.get("fallbacks"):
        series.fallbacks.inc()


def written(items: list[dict[str, Any]]) -> None:
    """A batch written to the database: its cost, now priced."""
    for item in items:
        labels = item.get("metric_labels")
        if labels and item.get("cost"):
            cost.labels(*labels).inc(item["cost"])


def pending(count: int) -> None:
    log_pending.set(count)


def dropped(count: int) -> None:
    log_dropped.inc(count)


def write_failed() -> None:
    log_failed_writes.inc()


def serving(version: int) -> None:
    config_version.set(version)


def cooled_down(group: str, provider: str, model: str, status: Any) -> None:
    cooldowns.labels(group, provider, _model(provider, model), str(status or "")).inc()
