"""The .env import page: upload or paste a file, preview what it would do, then confirm.

Between preview and confirmation the file's text waits on the server (upload_preview.py), so
no key (nor its ciphertext) is ever written into the HTML.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from accounts.roles import role_required

from .. import kinds, services
from ..forms_import import EnvImportForm
from ..importexport.env_default import DEFAULT_MODEL, PREFERRED_PROVIDER
from . import upload_preview

TEMPLATE = "providers/env_import.html"
PAGE = "env_import"
PREVIEW_EXPIRED = "That preview has expired or was replaced; upload the file and preview it again."
PREVIEW_STALE = (
    "The configuration changed since the preview, so nothing was imported. Below is what the "
    "import would do now; confirm again if it is still what you want."
)


def _conventions() -> list[tuple[str, list[str]]]:
    """What the import recognises, from the kind registry, for the page's help."""
    # A variable shared by two conventions (AZURE_API_VERSION) is listed once.
    return [
        (kind.label, list(dict.fromkeys(v for c in kind.env_conventions for v in c.variables)))
        for kind in kinds.KINDS.values()
        if kind.env_conventions
    ]


@sensitive_variables("text", "upload")
def _render(request: HttpRequest, report=None, text: str = "", **extra) -> HttpResponse:
    context = {
        "form": extra.pop("form", None) or EnvImportForm(),
        "nav": "config",
        "report": report,
        "conventions": _conventions(),
        "default_model_var": DEFAULT_MODEL,
        "preferred_var": PREFERRED_PROVIDER,
        **extra,
    }
    if report is not None and report.dry_run and report.has_changes:
        upload = {"text": text, "digest": report.digest}
        context["preview"] = upload_preview.keep(request, PAGE, upload)
    return render(request, TEMPLATE, context)


# An error report (the 500 e-mail, DEBUG's page) lists every frame's variables, and `text` is
# the whole .env file: it and what holds it are starred here, in _render and _apply (and in
# upload_preview).
@sensitive_post_parameters("text")
@sensitive_variables("text")
@role_required("editor")
def env_import(request: HttpRequest) -> HttpResponse:
    if upload_preview.is_confirmation(request):
        return _apply(request)
    form = EnvImportForm(request.POST or None, request.FILES or None)
    if request.method != "POST" or not form.is_valid():
        return _render(request, form=form)
    text = form.cleaned_data["content"]
    report = services.import_env(text=text, dry_run=True, actor=request.user)
    return _render(request, report, text)


@sensitive_variables("kept", "text")
def _apply(request: HttpRequest) -> HttpResponse:
    kept = upload_preview.take(request, PAGE)
    if kept is None:
        messages.error(request, PREVIEW_EXPIRED)
        return redirect("env_import")
    text = kept["text"]
    report = services.import_env(
        text=text, dry_run=False, actor=request.user, expected=kept["digest"]
    )
    if report.stale:
        messages.error(request, PREVIEW_STALE)
        report.dry_run = True  # it was rolled back: what it shows is a new preview
        return _render(request, report, text)
    messages.success(request, f"Imported the .env file: {report.summary()}.")
    return _render(request, report)
