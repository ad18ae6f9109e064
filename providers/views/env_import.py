"""The .env import page: upload or paste a file, preview what it would do, then confirm.

Between preview and confirmation the file's text stays on the server, in the session,
encrypted with the same keys as stored secrets; the page only carries a random preview id, so
no key (nor its ciphertext) is ever written into the HTML.
"""

from __future__ import annotations

import json
import secrets
import time

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .. import crypto, kinds
from ..forms import UPLOAD_NOT_TEXT, WriteOnlyTextarea, read_upload
from ..roles import role_required
from ..services.env_import import DEFAULT_MODEL, MAX_ENV_BYTES, import_env
from ..widgets import PlainLabelsForm

TEMPLATE = "providers/env_import.html"
SESSION_KEY = "env_import_preview"
# Long enough to read a preview, short enough that a stale page cannot apply old input.
PREVIEW_MAX_AGE = 15 * 60
FILE_TOO_LARGE = "The file is larger than {limit} KB; this is not a .env file."
NOT_TEXT = UPLOAD_NOT_TEXT
NOTHING_GIVEN = "Choose a .env file or paste its contents."
BOTH_GIVEN = "Choose a file or paste its contents, not both."
PREVIEW_EXPIRED = "That preview has expired or was replaced; upload the file and preview it again."
PREVIEW_STALE = (
    "The configuration changed since the preview, so nothing was imported. Below is what the "
    "import would do now; confirm again if it is still what you want."
)


class EnvImportForm(PlainLabelsForm):
    env_file = forms.FileField(
        label=".env file",
        required=False,
        help_text="A file of NAME=value lines, e.g. the .env of a project using the OpenAI SDK "
        "or LiteLLM.",
    )
    text = forms.CharField(
        label="Or paste its contents",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Never shown again after the preview. The server's own environment is never "
        "read.",
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        upload, text = cleaned.get("env_file"), cleaned.get("text") or ""
        if upload and text.strip():
            raise ValidationError(BOTH_GIVEN)
        if upload:
            cleaned["content"] = _read(upload)
        elif text.strip():
            if len(text.encode()) > MAX_ENV_BYTES:
                raise ValidationError(FILE_TOO_LARGE.format(limit=MAX_ENV_BYTES // 1024))
            cleaned["content"] = text
        else:
            raise ValidationError(NOTHING_GIVEN)
        return cleaned


def _read(upload) -> str:
    return read_upload(upload, limit=MAX_ENV_BYTES, too_large=FILE_TOO_LARGE)


@sensitive_variables("text", "payload")
def _keep(request: HttpRequest, text: str, digest: str) -> str:
    """Hold the previewed text for this user; returns the id the confirm button posts."""
    preview_id = secrets.token_urlsafe(16)
    payload = {
        "id": preview_id,
        "user": request.user.pk,
        "at": time.time(),
        "text": text,
        "digest": digest,
    }
    request.session[SESSION_KEY] = crypto.encrypt(json.dumps(payload))
    return preview_id


@sensitive_variables("payload")
def _take(request: HttpRequest, preview_id: str) -> dict | None:
    """The kept preview, once: a second confirmation has nothing left to apply."""
    sealed = request.session.pop(SESSION_KEY, None)
    try:
        payload = json.loads(crypto.decrypt(sealed)) if sealed else None
    except (crypto.UndecryptableSecret, ValueError):
        return None
    if (
        payload is None
        or not secrets.compare_digest(str(payload.get("id")), preview_id)
        or payload.get("user") != request.user.pk
        or not 0 <= time.time() - payload.get("at", 0) <= PREVIEW_MAX_AGE
    ):
        return None
    return payload


def _conventions() -> list[tuple[str, list[str]]]:
    """What the import recognises, from the kind registry, for the page's help."""
    # A variable shared by two conventions (AZURE_API_VERSION) is listed once.
    return [
        (kind.label, list(dict.fromkeys(v for c in kind.env_conventions for v in c.variables)))
        for kind in kinds.KINDS.values()
        if kind.env_conventions
    ]


@sensitive_variables("text")
def _render(request: HttpRequest, report=None, text: str = "", **extra) -> HttpResponse:
    context = {
        "form": extra.pop("form", None) or EnvImportForm(),
        "nav": "config",
        "report": report,
        "conventions": _conventions(),
        "default_model_var": DEFAULT_MODEL,
        **extra,
    }
    if report is not None and report.dry_run and report.has_changes:
        context["preview"] = _keep(request, text, report.digest)
    return render(request, TEMPLATE, context)


# An error report (the 500 e-mail, DEBUG's page) lists every frame's variables, and `text` is
# the whole .env file: it and what holds it are starred here, in _render, _keep and _apply.
@sensitive_post_parameters("text")
@sensitive_variables("text")
@role_required("editor")
def env_import(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and "preview" in request.POST:
        return _apply(request)
    form = EnvImportForm(request.POST or None, request.FILES or None)
    if request.method != "POST" or not form.is_valid():
        return _render(request, form=form)
    text = form.cleaned_data["content"]
    report = import_env(text=text, dry_run=True, actor=request.user)
    return _render(request, report, text)


@sensitive_variables("kept", "text")
def _apply(request: HttpRequest) -> HttpResponse:
    kept = _take(request, request.POST["preview"])
    if kept is None:
        messages.error(request, PREVIEW_EXPIRED)
        return redirect("env_import")
    text = kept["text"]
    report = import_env(text=text, dry_run=False, actor=request.user, expected=kept["digest"])
    if report.stale:
        messages.error(request, PREVIEW_STALE)
        report.dry_run = True  # it was rolled back: what it shows is a new preview
        return _render(request, report, text)
    messages.success(request, f"Imported the .env file: {report.summary()}.")
    return _render(request, report)
