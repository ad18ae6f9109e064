"""Provider pages: add, edit, show, remove, connection tests and model suggestions."""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from accounts.roles import role_required
from accounts.throttle import grant_batch, limit_tests

from .. import services
from ..forms import ProviderForm
from ..models import ProbeResult, Provider
from ..selectors import audit as audit_selectors
from ..selectors import health as health_selectors
from ..selectors import providers as provider_selectors
from .dashboard import _back, _default_context, _provider_page

FORM_TEMPLATE = "providers/provider_form.html"
DETAIL_TEMPLATE = "providers/provider_detail.html"
DRAIN_ON = "{name} will be taken out of its routing groups while it is unhealthy."
DRAIN_OFF = "{name} stays in its routing groups even while it is unhealthy."
# The provider page's health section listens for this, to redraw its chart after a test.
TESTED_EVENT = "provider-tested"
TEST_BUSY = (
    "Not tested: this server is already running {limit} connection tests. Try again in a moment."
)
# "Test all" rows each send their own request; without a bound of its own the server would
# run them all at once (over HTTP/2 the browser sends every one). Per process, as many as
# the no-JavaScript "Test all" runs at a time.
TEST_ALL_SLOTS = threading.BoundedSemaphore(services.TEST_ALL_CONCURRENCY)

# The health chart's geometry, in SVG user units: one slot per kept test, newest on the right.
CHART_WIDTH, CHART_PLOT, CHART_HEIGHT = 600, 100, 122
CHART_SLOT = CHART_WIDTH / services.HISTORY_LENGTH


@dataclass(frozen=True)
class HistoryBar:
    probe: ProbeResult
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class HistoryChart:
    bars: list[HistoryBar]
    peak_ms: float
    ok: int
    failed: int
    median_ms: float | None
    width: int = CHART_WIDTH
    plot: int = CHART_PLOT
    height: int = CHART_HEIGHT
    label_y: int = CHART_HEIGHT - 6


def _history_chart(probes: list[ProbeResult]) -> HistoryChart | None:
    """Latency of each test as a bar; a failed test is a full-height bar in the error colour,
    so that an outage stands out whatever its latency."""
    if not probes:
        return None
    latencies = [p.latency_ms for p in probes if p.ok and p.latency_ms is not None]
    peak = max(latencies, default=0.0) or 1.0
    offset = services.HISTORY_LENGTH - len(probes)
    bars = []
    for i, probe in enumerate(probes):
        if probe.ok and probe.latency_ms is not None:
            height = round(max(2.0, probe.latency_ms / peak * CHART_PLOT), 1)
        else:
            height = float(CHART_PLOT)
        x = round((offset + i) * CHART_SLOT + 1, 1)
        bars.append(HistoryBar(probe, x, round(CHART_PLOT - height, 1), CHART_SLOT - 3, height))
    return HistoryChart(
        bars=bars,
        peak_ms=peak if latencies else 0.0,
        ok=sum(p.ok for p in probes),
        failed=sum(not p.ok for p in probes),
        median_ms=statistics.median(latencies) if latencies else None,
    )


def _health_context(provider: Provider) -> dict:
    history = health_selectors.history(provider=provider)
    return {
        "provider": provider,
        "history": history,
        "chart": _history_chart(history),
        "threshold": services.failure_threshold(),
        **health_selectors.routing_state(provider=provider),
    }


# Fields the connection test reads: their errors block a test before saving, others do not.
_TESTED_FIELDS = ("kind", "base_url", "api_key", "api_version", "headers", "timeout")


@limit_tests
@sensitive_variables("data", "draft")
def _test_unsaved(request: HttpRequest, *, form: ProviderForm) -> HttpResponse:
    """ "Test connection" on the add/edit form: the values typed, through the same probe as a
    saved provider's test, and nothing written. Counts against the person's test limit."""
    form.is_valid()
    tested = (*_TESTED_FIELDS, *form.option_names)
    errors = {name: form.errors[name] for name in tested if name in form.errors}
    result = draft = None
    if not errors:
        data = form.cleaned_data
        # What a save would send: typed values, else the stored ones (KEEP), or none.
        headers = services.KEEP if data["headers"] is None else data["headers"]
        try:
            draft = services.provider_draft(
                kind=data["kind"],
                base_url=data["base_url"],
                api_key="" if data.get("remove_key") else (data["api_key"] or services.KEEP),
                headers={} if data.get("remove_headers") else headers,
                api_version=data.get("api_version", "") or "",
                options=form.options(),
                timeout=data["timeout"],
                declared_models=data.get("declared_models") or [],
                saved=form.instance,
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            result = services.provider_test_unsaved(provider=draft)
    context = {
        "draft_result": result,
        "draft_notes": draft.notes if draft is not None else [],
        "draft_errors": [
            f"{form.fields[f].label if f in form.fields else f}: {m}"
            for f, ms in errors.items()
            for m in ms
        ],
    }
    if request.htmx:
        return render(request, FORM_TEMPLATE + "#draft_test", context)
    return render(
        request,
        FORM_TEMPLATE,
        {"form": form, "provider": form.instance, "nav": "overview", **context},
    )


@sensitive_variables("kwargs")  # the key and header values, for an error report
def _save(request: HttpRequest, form: ProviderForm) -> Provider | None:
    """Run the service for a valid form; put its errors back on the form."""
    if not form.is_valid() or "_refresh" in request.POST:
        return None
    kwargs = form.service_kwargs()
    try:
        if form.instance is None:
            provider = services.provider_create(actor=request.user, **kwargs)
        else:
            provider = services.provider_update(
                provider=form.instance,
                actor=request.user,
                expected_version=form.cleaned_data.get("version"),
                **kwargs,
            )
    except ValidationError as exc:
        form.add_service_errors(exc)
        return None
    for warning in provider.validation_warnings:
        messages.warning(request, warning)
    return provider


@sensitive_post_parameters("api_key", "headers")
@role_required("editor")
def provider_add(request: HttpRequest) -> HttpResponse:
    form = ProviderForm(request.POST or None, initial={"kind": request.GET.get("kind", "openai")})
    if request.method == "POST" and "_test" in request.POST:
        return _test_unsaved(request, form=form)
    if request.method == "POST":
        provider = _save(request, form)
        if provider is not None:
            messages.success(request, f"Added provider {provider.name}. Test its connection next.")
            return redirect("provider_detail", name=provider.name)
    return render(request, FORM_TEMPLATE, {"form": form, "nav": "overview"})


@sensitive_post_parameters("api_key", "headers")
@role_required("editor")
def provider_edit(request: HttpRequest, name: str) -> HttpResponse:
    provider = get_object_or_404(Provider, name=name)
    form = ProviderForm(request.POST or None, instance=provider)
    if request.method == "POST" and "_test" in request.POST:
        return _test_unsaved(request, form=form)
    if request.method == "POST":
        saved = _save(request, form)
        if saved is not None:
            messages.success(request, f"Saved provider {saved.name}.")
            return redirect("provider_detail", name=saved.name)
    return render(request, FORM_TEMPLATE, {"form": form, "provider": provider, "nav": "overview"})


@require_GET
@role_required("editor")
def kind_fields(request: HttpRequest) -> HttpResponse:
    """htmx: the kind-dependent fields for the kind just chosen, keeping what was typed."""
    instance = provider_selectors.provider_get(name=request.GET.get("editing", ""))
    data = request.GET.dict()
    data.pop("api_key", None)  # never echo a key back, not even the one being typed
    # Unbound, with what was typed: nothing is refused before the person has finished.
    form = ProviderForm(initial=data, instance=instance)
    return render(request, FORM_TEMPLATE + "#kind_fields", {"form": form, "provider": instance})


@role_required("viewer")
def provider_detail(request: HttpRequest, name: str) -> HttpResponse:
    provider = get_object_or_404(Provider, name=name)
    if request.htmx and request.htmx.target == "health":
        return render(request, DETAIL_TEMPLATE + "#health", _health_context(provider))
    if request.htmx and request.htmx.target == "models-found":
        return render(request, DETAIL_TEMPLATE + "#models_found", {"provider": provider})
    context = {
        **_health_context(provider),
        "events": audit_selectors.recent_events(target=provider.name),
        "nav": "overview",
        **_default_context(selected=provider.name if provider.enabled else ""),
    }
    return render(request, DETAIL_TEMPLATE, context)


@require_POST
@role_required("editor")
def provider_drain(request: HttpRequest, name: str) -> HttpResponse:
    """Switch "take out of routing groups while unhealthy"."""
    provider = get_object_or_404(Provider, name=name)
    drain = request.POST.get("drain_when_unhealthy") == "on"
    services.provider_drain_set(provider=provider, drain_when_unhealthy=drain, actor=request.user)
    messages.success(request, (DRAIN_ON if drain else DRAIN_OFF).format(name=provider.name))
    if request.htmx:
        return render(request, DETAIL_TEMPLATE + "#health", _health_context(provider))
    return redirect("provider_detail", name=provider.name)


@require_POST
@role_required("editor")
def provider_remove(request: HttpRequest, name: str) -> HttpResponse:
    provider = get_object_or_404(Provider, name=name)
    try:
        services.provider_remove(provider=provider, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("provider_detail", name=name)
    messages.success(request, f"Removed provider {name}.")
    return redirect("overview")


def _outcome(provider: Provider, result: services.ConnectionResult) -> str:
    latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
    return f"{provider.name}: {result.message}{latency}"


def _tested(request: HttpRequest, provider: Provider, result: services.ConnectionResult) -> None:
    level = messages.SUCCESS if result.ok else messages.ERROR
    messages.add_message(request, level, _outcome(provider, result))


@require_POST
@role_required("viewer")
@limit_tests
def provider_test(request: HttpRequest, name: str) -> HttpResponse:
    provider = get_object_or_404(Provider, name=name)
    # From "Test all", the result is marked so that the progress count can find it.
    batch = request.POST.get("scope") == "all"
    if batch and not TEST_ALL_SLOTS.acquire(timeout=provider.test_timeout):
        busy = TEST_BUSY.format(limit=services.TEST_ALL_CONCURRENCY)
        # Nothing was tested: the row's retry must not cost the person a test.
        grant_batch(request, [provider.name])
        if not request.htmx:
            messages.error(request, f"{provider.name}: {busy}")
            return redirect(_back(request))
        return render(request, DETAIL_TEMPLATE + "#test_busy", {"provider": provider, "busy": busy})
    try:
        result = services.provider_test(provider=provider, actor=request.user)
    finally:
        if batch:
            TEST_ALL_SLOTS.release()
    if request.htmx:
        context = {"provider": provider, "result": result, "batch": batch}
        html = render_to_string(DETAIL_TEMPLATE + "#test_result", context, request)
        if not batch:
            # Announced in the page's message area (a live region), as it is without
            # JavaScript; the table's cells are not live, or "Test all" would be a din.
            outcome = {"ok": result.ok, "message": _outcome(provider, result)}
            html += render_to_string(DETAIL_TEMPLATE + "#test_announcement", outcome, request)
        # Named, so that the Model suggestions shown for this provider refresh (forms.js).
        return trigger_client_event(HttpResponse(html), TESTED_EVENT, {"provider": provider.name})
    _tested(request, provider, result)
    return redirect(_back(request))


@role_required("viewer")
@limit_tests
def model_options(request: HttpRequest) -> HttpResponse:
    """htmx: the chosen provider's model list as suggestions; POST refreshes it first.
    Without JavaScript, "Refresh models" posts the default-model form here: the refresh
    runs, and the page it came from is shown again with the outcome and that provider."""
    params = request.POST if request.method == "POST" else request.GET
    provider = get_object_or_404(Provider, name=params.get("provider", ""))
    if request.method == "POST":
        result = services.provider_test(provider=provider, actor=request.user)
        if not request.htmx:
            _tested(request, provider, result)
            back = urlsplit(_back(request))
            query = QueryDict(back.query, mutable=True)
            query["provider"] = provider.name
            return redirect(urlunsplit(back._replace(query=query.urlencode())))
    return render(
        request,
        "providers/overview.html#model_options",
        {"model_suggestions": provider.discovered_models},
    )


@require_POST
@role_required("viewer")
@limit_tests
def test_all(request: HttpRequest) -> HttpResponse:
    providers = provider_selectors.providers_enabled()
    # The table page the form was on (it sends its page and filter), to come back to.
    shown = {key: value for key in ("page", "q") if (value := request.POST.get(key, "").strip())}
    if request.htmx:
        # Each row's health cell turns to "testing…" and fetches its own result (at most six
        # at a time: the browser's connection limit is the bound), so the table updates as
        # answers arrive and a hanging provider holds up only its own row. Providers on other
        # pages have no cell to take it: theirs wait in the progress region instead, so that
        # every one is tested and counted. This request was the one counted against the
        # person's test budget; the rows' are granted.
        grant_batch(request, [p.name for p in providers])
        page = _provider_page(q=shown.get("q", ""), page=shown.get("page"))
        on_page = {p.name for p in page}
        context = {
            "targets": providers,
            "in_table": [p for p in providers if p.name in on_page],
            "elsewhere": [p for p in providers if p.name not in on_page],
        }
        return render(request, "providers/overview.html#test_all_progress", context)
    results = services.provider_test_many(providers=providers, actor=request.user)
    failed = [p.name for p, r in results if not r.ok]
    if failed:
        messages.error(request, f"{len(failed)} of {len(results)} failed: {', '.join(failed)}.")
    else:
        messages.success(request, f"All {len(results)} enabled providers answered.")
    return redirect(reverse("overview") + (f"?{urlencode(shown)}" if shown else ""))
