"""Forms of the import pages (a .env file, a LiteLLM config). They read and parse the upload;
the import services plan and write."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from . import services
from .forms import WriteOnlyTextarea, read_upload
from .widgets import PlainLabelsForm

ENV_FILE_TOO_LARGE = "The file is larger than {limit} KB; this is not a .env file."
CONFIG_FILE_TOO_LARGE = "The file is larger than {limit} KB; this is not a LiteLLM config."
NOTHING_GIVEN = "Choose a .env file or paste its contents."
BOTH_GIVEN = "Choose a file or paste its contents, not both."


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
            cleaned["content"] = read_upload(
                upload, limit=services.MAX_ENV_BYTES, too_large=ENV_FILE_TOO_LARGE
            )
        elif text.strip():
            if len(text.encode()) > services.MAX_ENV_BYTES:
                raise ValidationError(
                    ENV_FILE_TOO_LARGE.format(limit=services.MAX_ENV_BYTES // 1024)
                )
            cleaned["content"] = text
        else:
            raise ValidationError(NOTHING_GIVEN)
        return cleaned


def _read_config_upload(upload) -> str:
    return read_upload(upload, limit=services.MAX_CONFIG_BYTES, too_large=CONFIG_FILE_TOO_LARGE)


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
        return services.parse_yaml(_read_config_upload(self.cleaned_data["config"]))

    def clean_env_file(self) -> dict[str, str]:
        upload = self.cleaned_data.get("env_file")
        return services.parse_env(_read_config_upload(upload)) if upload else {}

    def clean_environment(self) -> dict[str, str]:
        return services.parse_env(self.cleaned_data.get("environment") or "")
