"""The overview page and the default-model switcher."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.roles import role_required
from accounts.views import first_run_redirect

from .. import services
from ..forms import DefaultModelForm, put_service_errors
from ..models import RoutingGroup
from ..selectors import health as health_selectors
from ..selectors import overview as overview_selectors
from ..selectors import providers as provider_selectors

TEMPLATE = "providers/overview.html"
PER_PAGE = 50


def _default_context(form: DefaultModelForm | None = None, selected: str = "") -> dict:
    default = services.default_model_get()
    providers = provider_selectors.default_model_choices()
    if form is None:
        initial = {}
        if selected:
            initial["provider"] = selected
        elif default is not None and default.provider_id:
            initial = {"provider": default.provider.name, "model": default.model}
        form = DefaultModelForm(initial=initial)
    chosen = form["provider"].value() or (providers[0].name if providers else "")
    suggestions = next((p.discovered_models for p in providers if p.name == chosen), [])
    return {
        "default": default,
        "default_form": form,
        "enabled_providers": providers,
        "model_suggestions": suggestions,
    }


def overview(request: HttpRequest) -> HttpResponse:
    first_run = first_run_redirect(request)
    if first_run is not None:
        return first_run
    return _overview(request)


def _provider_page(*, q: str, page: str | None) -> Page:
    """The overview table's page: providers whose name contains q, a page past the end being
    the last. One COUNT and one slice, however many providers there are."""
    return Paginator(provider_selectors.provider_search(q=q), PER_PAGE).get_page(page)


@role_required("viewer")
def _overview(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    context = {
        "nav": "overview",
        "page": _provider_page(q=q, page=request.GET.get("page")),
        "q": q,
        # The default's provider is never taken out of routing for its health: flagged here.
        "health_warning": health_selectors.default_health_warning(),
        # ?provider= after "Refresh models" without JavaScript: its suggestions are shown.
        **_default_context(selected=request.GET.get("provider", "")),
    }
    context["status"] = overview_selectors.status(context["default"])
    return render(request, TEMPLATE, context)


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return "/"


def _card(request: HttpRequest, form: DefaultModelForm | None = None, status: int = 200):
    return render(request, TEMPLATE + "#default_card", _default_context(form), status=status)


@require_POST
@role_required("editor")
def default_set(request: HttpRequest) -> HttpResponse:
    if "group" in request.POST:
        return _default_set_group(request)
    form = DefaultModelForm(request.POST)
    if form.is_valid():
        try:
            default = services.default_model_set(
                provider=form.cleaned_data["provider"],
                model=form.cleaned_data["model"],
                actor=request.user,
            )
        except ValidationError as exc:
            put_service_errors(form, exc, field="model")
        else:
            messages.success(request, f"Default model is now {default}.")
            if request.htmx:
                return _card(request)
            return redirect(_back(request))
    if request.htmx:
        return _card(request, form, status=422)
    messages.error(
        request,
        "The default model was not changed: "
        + " ".join(" ".join(errors) for errors in form.errors.values()),
    )
    return redirect(_back(request))


def _default_set_group(request: HttpRequest) -> HttpResponse:
    group = get_object_or_404(RoutingGroup, name=request.POST["group"])
    try:
        default = services.default_model_set(group=group, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Default model is now the routing group {default}.")
    if request.htmx:
        return _card(request)
    return redirect(_back(request))


@require_POST
@role_required("editor")
def default_revert(request: HttpRequest) -> HttpResponse:
    try:
        default = services.default_model_revert(actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Reverted: the default model is {default} again.")
    if request.htmx:
        return _card(request)
    return redirect(_back(request))
