"""Preview, then confirm, an upload: what both import pages (LiteLLM config, .env) share.

Between the preview and the confirmation the upload (keys included) stays on the server, in
the session, encrypted with the same keys as stored secrets. The page carries only a random
preview id: neither the upload nor its ciphertext is ever written into the HTML. A preview
is for the user who made it, for PREVIEW_MAX_AGE seconds, and for one confirmation: taking
it removes it, so a second confirmation (a double click, a replayed form) has nothing left
to apply. A new preview on the same page replaces the one before.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from .. import crypto

# The name of the confirm button's field, on every page that uses this.
FIELD = "preview"
# Long enough to read a preview, short enough that a stale page cannot apply old input.
PREVIEW_MAX_AGE = 15 * 60
_SESSION_PREFIX = "upload_preview:"


@sensitive_variables("upload", "payload")
def keep(request: HttpRequest, page: str, upload: dict[str, Any]) -> str:
    """Hold `upload` (JSON-able) for this user's confirmation on `page`; returns the id the
    confirm button posts."""
    preview_id = secrets.token_urlsafe(16)
    payload = {"id": preview_id, "user": request.user.pk, "at": time.time(), "upload": upload}
    request.session[_SESSION_PREFIX + page] = crypto.encrypt(json.dumps(payload, default=str))
    return preview_id


@sensitive_variables("payload")
def take(request: HttpRequest, page: str) -> dict[str, Any] | None:
    """The upload kept for the preview id this request confirms, once; None when there is
    none (expired, replaced, already confirmed, another user's, or no id posted)."""
    sealed = request.session.pop(_SESSION_PREFIX + page, None)
    preview_id = request.POST.get(FIELD, "")
    try:
        payload = json.loads(crypto.decrypt(sealed)) if sealed else None
    except (crypto.UndecryptableSecret, ValueError):
        return None
    if (
        not isinstance(payload, dict)
        or not secrets.compare_digest(str(payload.get("id")).encode(), preview_id.encode())
        or payload.get("user") != request.user.pk
        or not 0 <= time.time() - payload.get("at", 0) <= PREVIEW_MAX_AGE
    ):
        return None
    return payload["upload"]


def is_confirmation(request: HttpRequest) -> bool:
    return request.method == "POST" and FIELD in request.POST
