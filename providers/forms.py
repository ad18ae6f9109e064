"""Forms parse what a person typed; the services validate and write. Service errors are put
back next to the field they concern, so forms and the command line share one set of rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.html import format_html

from . import kinds, services
from .models import CONNECTION_TEST_TIMEOUT, Provider
from .validators import (
    model_id_attrs,
    name_attrs,
    validate_base_url,
    validate_model_id,
    validate_provider_name,
)
from .widgets import SecondsInput

HEADER_LINE_INVALID = 'Line {line}: write each header as "Name: value".'
KEY_AND_REMOVE = "Either enter a new API key or tick 'Remove key', not both."
UPLOAD_NOT_TEXT = "The file is not UTF-8 text."
DROP_PARAMS_HELP = (
    "When off, a call with a parameter this provider does not support (n on Anthropic, say) "
    "is refused with an error naming it. When on, such parameters are left out and the call "
    "goes ahead."
)


def put_service_errors(
    form: forms.Form,
    exc: ValidationError,
    *,
    rename: dict[str, str] | None = None,
    field: str | None = None,
) -> None:
    """The one way a service's ValidationError goes back on a form: each message next to the
    field it concerns (`rename` maps a service's field name to the form's), the rest, and an
    error without fields, on `field` when given, else above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(field, exc)
        return
    rename = rename or {}
    for name, errors in exc.error_dict.items():
        name = rename.get(name, name)
        form.add_error(name if name in form.fields else field, errors)


def model_limits(model: type[models.Model], name: str) -> dict[str, Any]:
    """A number field's bounds as the model declares them (its Min/MaxValueValidators), for
    a form field's min_value/max_value: the form and the model cannot disagree."""
    limits: dict[str, Any] = {}
    for validator in model._meta.get_field(name).validators:
        if isinstance(validator, MinValueValidator):
            low = limits.get("min_value", validator.limit_value)
            limits["min_value"] = max(low, validator.limit_value)
        elif isinstance(validator, MaxValueValidator):
            high = limits.get("max_value", validator.limit_value)
            limits["max_value"] = min(high, validator.limit_value)
    return limits


def parse_header_lines(text: str) -> dict[str, str]:
    headers = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            # Never echo the line: it holds a secret value.
            raise ValidationError(HEADER_LINE_INVALID.format(line=number))
        headers[name.strip()] = value.strip()
    return headers


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, like PasswordInput(render_value=False): what
    was typed in it may hold keys."""

    def format_value(self, value):
        return None


def read_upload(upload: Any, *, limit: int, too_large: str) -> str:
    """An uploaded text file (a UTF-8 BOM is fine), refused past `limit` bytes with the
    `too_large` message (formatted with the limit in KB)."""
    if upload.size > limit:
        raise ValidationError(too_large.format(limit=limit // 1024))
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(UPLOAD_NOT_TEXT) from None


class ProviderForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=63,
        validators=[validate_provider_name],
        widget=forms.TextInput(attrs=name_attrs()),
        help_text="Lower-case letters, digits, '-' and '_', e.g. openai-prod. Applications "
        "address models as NAME/MODEL-ID.",
    )
    display_name = forms.CharField(
        label="Display name",
        required=False,
        max_length=100,
        help_text="Optional, free text shown on every page, e.g. Together (Acme account). "
        "Empty: pages show the name.",
    )
    kind = forms.ChoiceField(label="Kind", choices=kinds.CHOICES)
    base_url = forms.CharField(label="Base URL", required=False, max_length=2000)
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    remove_key = forms.BooleanField(label="Remove key", required=False)
    api_version = forms.CharField(label="API version", required=False, max_length=32)
    declared_models = forms.CharField(
        label="Deployments",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="The deployment names applications call, comma or newline separated. "
        "They become this provider's models (the API lists base models, not deployments).",
    )
    headers = forms.CharField(
        label="Custom headers",
        required=False,
        # Write-only like the key: a refused form must not send typed values back.
        widget=WriteOnlyTextarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
        help_text='One per line, "Name: value". Values are stored encrypted and never shown.',
    )
    remove_headers = forms.BooleanField(label="Remove custom headers", required=False)
    timeout = forms.FloatField(
        label="Timeout (seconds)",
        initial=Provider._meta.get_field("timeout").default,
        widget=SecondsInput(),
        **model_limits(Provider, "timeout"),
    )
    max_retries = forms.IntegerField(
        label="Retries", initial=0, **model_limits(Provider, "max_retries")
    )
    drop_params = forms.BooleanField(
        label=Provider._meta.get_field("drop_params").verbose_name,
        required=False,
        help_text=DROP_PARAMS_HELP,
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    # The page's "Testing… (up to N s)": the connection test's own limit.
    connection_test_timeout = CONNECTION_TEST_TIMEOUT

    def __init__(self, *args: Any, instance: Provider | None = None, **kwargs: Any) -> None:
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "display_name": instance.display_name,
                "kind": instance.kind,
                "base_url": instance.base_url,
                "api_version": instance.api_version,
                **(instance.options or {}),
                "declared_models": "\n".join(instance.declared_models or []),
                "timeout": instance.timeout,
                "max_retries": instance.max_retries,
                "drop_params": instance.drop_params,
                "enabled": instance.enabled,
                "version": instance.version,
            }
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if instance is None:
            del self.fields["remove_key"], self.fields["remove_headers"], self.fields["version"]
        self.kind_info = kinds.KINDS.get(self._current_kind(), next(iter(kinds.KINDS.values())))
        self._apply_kind()

    def _current_kind(self) -> str:
        if self.is_bound:
            return self.data.get("kind", "")
        return self.initial.get("kind", "") or self.fields["kind"].initial or "openai"

    def _apply_kind(self) -> None:
        """The fields shown and their hints follow the chosen kind, from the registry."""
        kind = self.kind_info
        base = self.fields["base_url"]
        base.widget.attrs["placeholder"] = kind.default_base_url or kind.base_url_example
        # What the kind requires, as `required` attributes: caught before the round trip.
        base.widget.attrs["required"] = kind.base_url_required
        if kind.default_base_url:
            base.help_text = format_html("Leave empty for the default, {}.", kind.default_base_url)
            if kind.local and not self.is_bound and not self.initial.get("base_url"):
                self.initial["base_url"] = kind.default_base_url
        else:
            base.help_text = format_html("Required, e.g. {}.", kind.base_url_example)
        self._add_kind_settings()
        key = self.fields["api_key"]
        key.label = kind.api_key_label
        if kind.api_key_multiline:
            key.strip = True
            key.widget = WriteOnlyTextarea(
                attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}
            )
        stored = self.instance is not None and bool(self.instance.api_key_ciphertext)
        if stored:
            key.help_text = format_html(
                "Stored ({}). Leave empty to keep it.", self.instance.api_key_hint or "set"
            )
        elif kind.api_key_required:
            key.help_text = kind.api_key_help or "Required. Stored encrypted; never shown again."
            key.widget.attrs["required"] = True
        else:
            key.help_text = format_html("Optional for {}.", kind.label)
        if self.instance is not None and self.instance.header_names:
            self.fields["headers"].help_text = format_html(
                "Stored: {}. Leave empty to keep them; enter every header again to replace them.",
                ", ".join(self.instance.header_names),
            )
        if not kind.shows_declared_models:
            del self.fields["declared_models"]
        if not kind.shows_api_version:
            del self.fields["api_version"]
        else:
            self.fields["api_version"].widget.attrs["placeholder"] = kind.api_version_example
            self.fields["api_version"].widget.attrs["required"] = kind.api_version_required

    @property
    def option_names(self) -> list[str]:
        return [setting.name for setting in self.kind_info.fields]

    @property
    def option_fields(self) -> list:
        """The kind's own settings, bound, for the template (after the base URL)."""
        return [self[name] for name in self.option_names]

    def _add_kind_settings(self) -> None:
        for setting in self.kind_info.fields:
            # Not required here: the registry's rule (field_errors) says so in clean().
            self.fields[setting.name] = forms.CharField(
                label=setting.label,
                required=False,
                max_length=128,
                help_text=setting.help_text,
                widget=forms.TextInput(
                    attrs={
                        "placeholder": setting.example,
                        "required": setting.required,
                        "spellcheck": "false",
                        "data-kind-setting": "",
                    }
                ),
            )

    def clean_declared_models(self) -> list[str]:
        names = services.parse_model_names(self.cleaned_data["declared_models"])
        return services.validate_declared_models(names)

    def clean_headers(self) -> dict[str, str] | None:
        text = self.cleaned_data.get("headers", "")
        return parse_header_lines(text) if text.strip() else None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("api_key") and data.get("remove_key"):
            self.add_error("api_key", KEY_AND_REMOVE)
        # The kind's required fields now, beside a bad name, not on the next submit (the
        # service checks them again, with the same registry rule).
        stored = self.instance is not None and bool(self.instance.api_key_ciphertext)
        missing = self.kind_info.field_errors(
            base_url=data.get("base_url", ""),
            has_api_key=bool(data.get("api_key")) or (stored and not data.get("remove_key")),
            api_version=data.get("api_version", ""),
            options=self.options(),
        )
        for field, message in missing.items():
            if "kind" not in self.errors and field not in self.errors:
                self.add_error(field if field in self.fields else None, message)
        # The base URL's syntax and address rules too, in the same submit as the rest (the
        # service runs the same validator again before it writes).
        base_url = data.get("base_url", "")
        if base_url and "kind" not in self.errors and "base_url" not in self.errors:
            try:
                validate_base_url(base_url, local=self.kind_info.local)
            except ValidationError as exc:
                self.add_error("base_url", exc)
        return data

    def options(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or "" for name in self.option_names}

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        kwargs: dict[str, Any] = {
            field: data[field]
            for field in (
                "name",
                "display_name",
                "kind",
                "base_url",
                "timeout",
                "max_retries",
                "drop_params",
                "enabled",
            )
        }
        kwargs["api_version"] = data.get("api_version", "") or ""
        kwargs["options"] = self.options()
        if "declared_models" in self.fields:
            kwargs["declared_models"] = data["declared_models"]
        if self.instance is None:
            kwargs["api_key"] = data["api_key"]
            kwargs["headers"] = data["headers"] or {}
            return kwargs
        kwargs["api_key"] = "" if data.get("remove_key") else (data["api_key"] or services.KEEP)
        if data.get("remove_headers"):
            kwargs["headers"] = {}
        else:
            kwargs["headers"] = data["headers"] if data["headers"] is not None else services.KEEP
        return kwargs

    def add_service_errors(self, exc: ValidationError) -> None:
        put_service_errors(self, exc)


class DefaultModelForm(forms.Form):
    provider = forms.ModelChoiceField(
        label="Provider",
        queryset=Provider.objects.filter(enabled=True),
        to_field_name="name",
        empty_label=None,
    )
    model = forms.CharField(
        label="Model",
        max_length=200,
        validators=[validate_model_id],
        widget=forms.TextInput(attrs=model_id_attrs()),
    )
