"""Routing group pages: the list with each deployment's health, the group editor, router
settings, and "Test group", which sends one real request through the router."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import role_required
from accounts.throttle import limit_tests

from .. import services
from ..forms_groups import (
    PREFIX,
    DeploymentFormSet,
    GroupForm,
    RouterSettingsForm,
    add_group_errors,
    deployment_initial,
    with_blank_row,
)
from ..models import Provider, RoutingGroup
from ..selectors import groups as group_selectors
from ..selectors import providers as provider_selectors

LIST_TEMPLATE = "providers/groups.html"
FORM_TEMPLATE = "providers/group_form.html"
ROUTER_TEMPLATE = "providers/group_router.html"

GROUP_SAVED = "Saved group {name}."
GROUP_ADDED = "Added group {name}. Test it with “Test group”."
GROUP_REMOVED = "Removed group {name}."
ROUTER_SAVED = "Saved the router settings."


@role_required("viewer")
def group_list(request: HttpRequest) -> HttpResponse:
    context = {
        "nav": "groups",
        "rows": group_selectors.group_rows(),
        "router": services.router_settings_get(),
    }
    return render(request, LIST_TEMPLATE, context)


def _editor_forms(request: HttpRequest, group: RoutingGroup | None, providers: list[Provider]):
    form_kwargs = {"providers": providers, "refresh_url": request.path}
    if request.method != "POST":
        initial = deployment_initial(group) if group is not None else None
        formset = DeploymentFormSet(initial=initial, prefix=PREFIX, form_kwargs=form_kwargs)
        return GroupForm(group=group), formset
    data, added = request.POST, False
    if "_add" in data:
        data, added = with_blank_row(data)
    # Adding a row or choosing a provider re-renders the form: no errors for what is unfinished.
    quiet = "_add" in data or "_refresh" in data
    form = GroupForm(data, group=group, quiet=quiet)
    formset = DeploymentFormSet(data, prefix=PREFIX, form_kwargs={**form_kwargs, "quiet": quiet})
    if added:
        formset.forms[-1].fields["provider"].widget.attrs["autofocus"] = True
    return form, formset


def _save(request: HttpRequest, group: RoutingGroup | None, form, formset) -> RoutingGroup | None:
    # Both validated, so that every mistake shows at once.
    valid = [form.is_valid(), formset.is_valid()]
    if not all(valid):
        return None
    try:
        return services.group_save(
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            drop_params=form.cleaned_data["drop_params"],
            deployments=formset.specs(),
            fallbacks=form.cleaned_data["fallbacks"],
            group=group,
            expected_version=form.cleaned_data.get("version"),
            actor=request.user,
        )
    except ValidationError as exc:
        add_group_errors(exc, form, formset)
        return None


def _editor(request: HttpRequest, group: RoutingGroup | None) -> HttpResponse:
    providers = provider_selectors.deployment_choices()
    form, formset = _editor_forms(request, group, providers)
    context = {
        "form": form,
        "formset": formset,
        "providers": providers,
        "group": group,
        "nav": "groups",
    }
    if request.method == "POST":
        if form.quiet:
            # Rows re-rendered with what was typed, nothing saved.
            if request.htmx:
                return render(request, FORM_TEMPLATE + "#deployments", context)
            return render(request, FORM_TEMPLATE, context)
        saved = _save(request, group, form, formset)
        if saved is not None:
            message = GROUP_SAVED if group is not None else GROUP_ADDED
            messages.success(request, message.format(name=saved.name))
            return redirect(reverse("group_list") + f"#group-{saved.name}")
    return render(request, FORM_TEMPLATE, context)


@require_http_methods(["GET", "POST"])
@role_required("editor")
def group_add(request: HttpRequest) -> HttpResponse:
    return _editor(request, group=None)


@require_http_methods(["GET", "POST"])
@role_required("editor")
def group_edit(request: HttpRequest, name: str) -> HttpResponse:
    group = get_object_or_404(RoutingGroup, name=name)
    return _editor(request, group=group)


@require_POST
@role_required("editor")
def group_remove(request: HttpRequest, name: str) -> HttpResponse:
    group = get_object_or_404(RoutingGroup, name=name)
    try:
        services.group_remove(group=group, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("group_edit", name=name)
    messages.success(request, GROUP_REMOVED.format(name=name))
    return redirect("group_list")


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("group_list")


@require_POST
@role_required("viewer")
@limit_tests
def group_test(request: HttpRequest, name: str) -> HttpResponse:
    group = get_object_or_404(RoutingGroup, name=name)
    outcome = services.group_test(group=group)
    if request.htmx:
        # The group now carries this outcome as its last test.
        return render(request, LIST_TEMPLATE + "#test_outcome", {"group": group})
    level = messages.SUCCESS if outcome.ok else messages.ERROR
    latency = f" in {outcome.latency_ms:.0f} ms" if outcome.latency_ms is not None else ""
    messages.add_message(request, level, f"{group.name}: {outcome.message}{latency}")
    return redirect(_back(request))


@require_http_methods(["GET", "POST"])
@role_required("editor")
def router_settings(request: HttpRequest) -> HttpResponse:
    form = RouterSettingsForm(request.POST or None, current=services.router_settings_get())
    if request.method == "POST" and form.is_valid():
        try:
            services.router_settings_update(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, ROUTER_SAVED)
            return redirect("group_list")
    return render(request, ROUTER_TEMPLATE, {"form": form, "nav": "groups"})
