"""LiteLLM config pages: download the export, upload a config to preview and import it.

Between preview and import the upload waits on the server (upload_preview.py): the page
never holds the file's keys, not even encrypted.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET

from accounts.roles import role_required

from .. import services
from ..forms_import import ConfigImportForm
from . import upload_preview

TEMPLATE = "providers/config_import.html"
EXPORT_FILENAME = "routing-config.yaml"
PAGE = "config_import"
PREVIEW_EXPIRED = (
    "That preview has expired, was replaced or was already imported; upload the files and "
    "preview them again."
)


def _summary(report: services.ImportReport) -> str:
    return (
        f"Imported the LiteLLM config: {len(report.created)} created, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged."
    )


@require_GET
@role_required("editor")
def config_export(request: HttpRequest) -> HttpResponse:
    config, _ = services.export_config()
    response = HttpResponse(
        services.render_yaml(config), content_type="application/yaml; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{EXPORT_FILENAME}"'
    return response


# An error report (the 500 e-mail, DEBUG's page) lists every frame's variables: `env` holds the
# uploaded keys, `data` may too (a config can carry literal api_key values).
@sensitive_post_parameters("environment")
@sensitive_variables("data", "env")
@role_required("editor")
def config_import(request: HttpRequest) -> HttpResponse:
    if upload_preview.is_confirmation(request):
        return _apply(request)
    form = ConfigImportForm(request.POST or None, request.FILES or None)
    context: dict = {"form": form, "nav": "config"}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["config"]
        env = {**form.cleaned_data["env_file"], **form.cleaned_data["environment"]}
        report = services.import_config(data=data, environ=env, dry_run=True, actor=request.user)
        context["report"] = report
        if report.ok and report.changed:
            context["preview"] = upload_preview.keep(request, PAGE, {"data": data, "env": env})
        context["form"] = ConfigImportForm()
    return render(request, TEMPLATE, context)


@sensitive_variables("payload")
def _apply(request: HttpRequest) -> HttpResponse:
    payload = upload_preview.take(request, PAGE)
    if payload is None:
        messages.error(request, PREVIEW_EXPIRED)
        return redirect("config_import")
    report = services.import_config(
        data=payload["data"], environ=payload["env"], dry_run=False, actor=request.user
    )
    if report.ok:
        messages.success(request, _summary(report))
        return redirect("overview")
    # The database moved since the preview: show what now stands in the way.
    context = {"form": ConfigImportForm(), "report": report, "nav": "config"}
    return render(request, TEMPLATE, context)
