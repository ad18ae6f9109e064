"""Error pages of our own, so that they carry the page's stylesheet and favicon and nothing
the Content-Security-Policy refuses (Django's CSRF page has an inline <style>)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

CSRF_FAILED = (
    "This form was sent without a valid security token (CSRF), usually because the page was open "
    "for a long time, or cookies were cleared or blocked. Nothing was changed."
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    # `reason` is Django's technical wording; the person gets what to do instead.
    return render(request, "403_csrf.html", {"message": CSRF_FAILED}, status=403)
