"""Provider pages: add, edit, show, remove, connection tests and model suggestions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from .. import services
from ..forms import ProviderForm
from ..models import AuditEvent, Provider
from ..roles import role_required
from .dashboard import _back, _default_context

FORM_TEMPLATE = "providers/provider_form.html"
DETAIL_TEMPLATE = "providers/provider_detail.html"


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
    instance = Provider.objects.filter(name=request.GET.get("editing", "")).first()
    data = request.GET.copy()
    data.pop("api_key", None)  # never echo a key back, not even the one being typed
    form = ProviderForm(data, instance=instance)
    return render(request, FORM_TEMPLATE + "#kind_fields", {"form": form, "provider": instance})


@role_required("viewer")
def provider_detail(request: HttpRequest, name: str) -> HttpResponse:
    provider = get_object_or_404(Provider, name=name)
    events = AuditEvent.objects.filter(target=provider.name)[:10]
    context = {
        "provider": provider,
        "events": events,
        "nav": "overview",
        **_default_context(selected=provider.name if provider.enabled else ""),
    }
    return render(request, DETAIL_TEMPLATE, context)


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


@require_POST
@role_required("viewer")
def provider_test(request: HttpRequest, name: str) -> HttpResponse:
    provider = get_object_or_404(Provider, name=name)
    result = services.provider_test(provider=provider)
    if request.htmx:
        # "Test all" shows results in its own list: a separate id prefix keeps ids unique.
        scope = "all" if request.POST.get("scope") == "all" else "test"
        return render(
            request,
            DETAIL_TEMPLATE + "#test_result",
            {"provider": provider, "result": result, "scope": scope},
        )
    level = messages.SUCCESS if result.ok else messages.ERROR
    latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
    messages.add_message(request, level, f"{provider.name}: {result.message}{latency}")
    return redirect(_back(request))


@role_required("viewer")
def model_options(request: HttpRequest) -> HttpResponse:
    """htmx: the chosen provider's model list as suggestions; POST refreshes it first."""
    params = request.POST if request.method == "POST" else request.GET
    provider = get_object_or_404(Provider, name=params.get("provider", ""))
    if request.method == "POST":
        services.provider_test(provider=provider)
    return render(
        request,
        "providers/overview.html#model_options",
        {"model_suggestions": provider.discovered_models},
    )


@require_POST
@role_required("viewer")
def test_all(request: HttpRequest) -> HttpResponse:
    providers = list(Provider.objects.filter(enabled=True))
    if request.htmx:
        # Each row fetches its own result, so progress is visible as answers arrive.
        return render(request, "providers/overview.html#test_all_progress", {"targets": providers})
    results = services.provider_test_many(providers=providers)
    failed = [p.name for p, r in results if not r.ok]
    if failed:
        messages.error(request, f"{len(failed)} of {len(results)} failed: {', '.join(failed)}.")
    else:
        messages.success(request, f"All {len(results)} enabled providers answered.")
    return redirect("overview")
