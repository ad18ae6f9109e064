"""LiteLLM config pages: download the export, upload a config to preview and import it.

Between preview and import the upload waits on the server (upload_preview.py): the page
never holds the file's keys, not even encrypted.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET

from accounts.roles import role_required

from .. import services
from ..forms import UPLOAD_NOT_TEXT, WriteOnlyTextarea, read_upload
from ..widgets import PlainLabelsForm
from . import upload_preview

TEMPLATE = "providers/config_import.html"
EXPORT_FILENAME = "routing-config.yaml"
PAGE = "config_import"
FILE_TOO_LARGE = "The file is larger than {limit} KB; this is not a LiteLLM config."
NOT_TEXT = UPLOAD_NOT_TEXT
PREVIEW_EXPIRED = (
    "That preview has expired, was replaced or was already imported; upload the files and "
    "preview them again."
)


def _read(upload, limit: int = services.MAX_CONFIG_BYTES) -> str:
    return read_upload(upload, limit=limit, too_large=FILE_TOO_LARGE)


class ConfigImportForm(PlainLabelsForm):
    config = forms.FileField(
        label="LiteLLM config file",
        help_text="A LiteLLM proxy config.yaml, e.g. one exported from here.",
    )
    env_file = forms.FileField(
        label="Environment file",
        required=False,
        help_text="A .env file with the values of the os.environ/NAME references in the config "
        "(the file `routing export --env-file` writes).",
    )
    environment = forms.CharField(
        label="Environment values",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Or paste NAME=value lines here; they win over the file and are never shown "
        "again. The server's own environment is never read.",
    )

    def clean_config(self) -> dict:
        return services.parse_yaml(_read(self.cleaned_data["config"]))

    def clean_env_file(self) -> dict[str, str]:
        upload = self.cleaned_data.get("env_file")
        return services.parse_env(_read(upload)) if upload else {}

    def clean_environment(self) -> dict[str, str]:
        return services.parse_env(self.cleaned_data.get("environment") or "")


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
