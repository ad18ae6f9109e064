"""Turning metrics and traces on, once per server process (routing_admin/asgi.py).

Metrics are on when /metrics may be scraped at all (ROUTING_METRICS_TOKEN or
ROUTING_METRICS_ALLOWED_IPS is set); traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (and
OTEL_SDK_DISABLED is not true). With neither, nothing here is imported beyond this module,
no hook is installed and the application is served as it is: a call pays for neither.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALLOWED_IPS_BAD = (
    "ROUTING_METRICS_ALLOWED_IPS entry {entry!r} is not an IP address or CIDR network; "
    "separate several with commas (e.g. 10.0.0.0/8,192.168.1.5)."
)

_installed: dict[str, Any] = {}


def metrics_wanted() -> bool:
    from providers.addresses import network_list

    bad = network_list(settings.ROUTING_METRICS_ALLOWED_IPS)[1]
    if bad:
        raise ImproperlyConfigured(ALLOWED_IPS_BAD.format(entry=bad[0]))
    return bool(settings.ROUTING_METRICS_TOKEN or settings.ROUTING_METRICS_ALLOWED_IPS)


def installed_metrics() -> Any:
    """observability.metrics if this process counts metrics, else None."""
    return _installed.get("metrics")


def tracing_wanted() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def metrics_module() -> Any:
    """observability.metrics, with the multiprocess directory chosen first (multiproc.py)."""
    found = _installed.get("metrics")
    if found is None:
        from . import multiproc

        path = multiproc.choose()
        if "prometheus_client" in sys.modules:
            # Imported before the directory was chosen (by a library, or a test): it picked
            # one process's memory then; from now on its values go to the shared files.
            from prometheus_client import values

            values.ValueClass = values.get_value_class()
        from . import metrics as found

        multiproc.forget_dead_workers(path)
        _installed["metrics"] = found
    return found


class _RequestLogObserver:
    """usage.request_log's observer: each record and the queue's troubles."""

    def __init__(self, metrics: Any, tracing: Any) -> None:
        self.metrics, self.tracing = metrics, tracing

    def recorded(self, fields: dict[str, Any], endpoint: str) -> None:
        if self.metrics is not None:
            self.metrics.recorded(fields, endpoint)
        if self.tracing is not None:
            self.tracing.logged(fields, endpoint)

    def written(self, items: list[dict[str, Any]]) -> None:
        if self.metrics is not None:
            self.metrics.written(items)

    def pending(self, count: int) -> None:
        if self.metrics is not None:
            self.metrics.pending(count)

    def dropped(self, count: int) -> None:
        if self.metrics is not None:
            self.metrics.dropped(count)

    def write_failed(self) -> None:
        if self.metrics is not None:
            self.metrics.write_failed()


class _SnapshotObserver:
    """providers.routing.snapshot's observer: resolutions, Routers, the version served."""

    def __init__(self, metrics: Any, tracing: Any) -> None:
        self.metrics, self.tracing = metrics, tracing

    def resolve(self, resolve: Any, model: str | None) -> Any:
        if self.tracing is None:
            return resolve(model)
        with self.tracing.routing(model) as span:
            target = resolve(model)
            self.tracing.routed(span, target)
            return target

    def serving(self, snapshot: Any) -> None:
        if self.metrics is not None:
            self.metrics.serving(snapshot.version)

    def router_built(self, router: Any, snapshot: Any) -> None:
        if self.metrics is not None:
            _count_cooldowns(router, snapshot, self.metrics)


def _count_cooldowns(router: Any, snapshot: Any, metrics: Any) -> None:
    """Count each deployment the Router puts in cooldown (LiteLLM has no callback for it
    that a plain logger gets: its own is for its Prometheus integration only)."""
    cache = router.cooldown_cache
    original = cache.add_deployment_to_cooldown
    where = {
        str(d.id): (group.name, d.provider.name, d.model)
        for group in snapshot.groups.values()
        for d in group.deployments
    }

    def add_deployment_to_cooldown(model_id, original_exception, exception_status, cooldown_time):
        original(model_id, original_exception, exception_status, cooldown_time)
        group, provider, model = where.get(str(model_id), ("", "", ""))
        metrics.cooled_down(group, provider, model, exception_status)

    cache.add_deployment_to_cooldown = add_deployment_to_cooldown


class _OutboundObserver:
    def __init__(self, tracing: Any) -> None:
        self.attempt = tracing.Attempt


def install(application: Any) -> Any:
    """Hook metrics and traces in as configured; returns the application to serve."""
    metrics = metrics_module() if metrics_wanted() else None
    tracing = None
    if tracing_wanted():
        from . import tracing

        tracing.start()
    if metrics is None and tracing is None:
        return application
    from providers.routing import outbound, snapshot
    from usage import request_log

    from .asgi import Observe

    request_log.observer = _RequestLogObserver(metrics, tracing)
    snapshot.observer = _SnapshotObserver(metrics, tracing)
    if tracing is not None:
        outbound.observer = _OutboundObserver(tracing)
    return Observe(application, tracing)


def shutdown() -> None:
    """At the server's shutdown (lifespan): send the spans still batched."""
    if tracing_wanted():
        from . import tracing

        tracing.shutdown()
