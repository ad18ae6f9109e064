"""The audit log: every change, newest first, filterable by target and by user."""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from accounts.roles import role_required

from ..selectors import audit as audit_selectors

TEMPLATE = "providers/audit_log.html"
PER_PAGE = 50


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if value == "":
        return '""'
    if isinstance(value, list):
        return ", ".join(_value(item) for item in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def describe_changes(changes: Any) -> list[str]:
    """One readable line per changed field: "timeout: 10 → 30", "api_key: changed"."""
    if not isinstance(changes, dict):
        return [_value(changes)] if changes else []
    lines = []
    for field, change in changes.items():
        # Services store [old, new] for plain fields; a creation has no old value.
        if isinstance(change, list) and len(change) == 2:
            old, new = change
            text = _value(new) if old is None else f"{_value(old)} → {_value(new)}"
        else:
            text = _value(change)
        lines.append(f"{field}: {text}")
    return lines


@require_GET
@role_required("viewer")
def audit_log(request: HttpRequest) -> HttpResponse:
    target = request.GET.get("target", "")
    actor = request.GET.get("user", "")
    events = audit_selectors.audit_events(target=target, actor=actor)
    page = Paginator(events, PER_PAGE).get_page(request.GET.get("page"))
    for event in page:
        event.change_lines = describe_changes(event.changes)
    context = {
        "nav": "audit",
        "page": page,
        "target": target,
        "actor": actor,
        "filtered": bool(target or actor),
    }
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        response = render(request, TEMPLATE + "#results", context)
    else:
        context["targets"] = audit_selectors.audit_choices(field="target", selected=target)
        context["actors"] = audit_selectors.audit_choices(field="actor_name", selected=actor)
        response = render(request, TEMPLATE, context)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response
