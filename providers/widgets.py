"""Form widgets and the base form shared by the dashboard's forms."""

from __future__ import annotations

from typing import Any

from django import forms


class SecondsInput(forms.NumberInput):
    """A number of seconds, shown without a stray decimal: 600, not 600.0 (0.5 stays)."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"step": "any", "inputmode": "decimal", **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super().format_value(value)


class PlainLabelsForm(forms.Form):
    """Labels as the hand-written ones read, "Name" rather than Django's "Name:", so every
    form of the dashboard labels its fields the same way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
