"""Google Vertex AI: Gemini and partner models (Claude, Llama, Mistral). The key field
holds a service-account key (JSON), traded for an OAuth token at its token_uri; the host is
the location's aiplatform endpoint, replaced by a base URL when one is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from ..redact import mask
from .base import (
    NOT_A_MODEL_LIST,
    AuthFailed,
    EnvConvention,
    KindField,
    ModelListError,
    ProviderKind,
    _ids,
    _next_page_token_url,
    _with_query,
)

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
SERVICE_ACCOUNT_NOT_JSON = (
    "The service-account key is not JSON: paste the whole key file (IAM > Service accounts "
    "> Keys > Add key > JSON)."
)
SERVICE_ACCOUNT_WRONG_TYPE = (
    'The JSON is not a service-account key: its "type" must be "service_account" (other '
    "credential files, such as gcloud's user credentials, are not accepted)."
)
SERVICE_ACCOUNT_INCOMPLETE = "The service-account key lacks {fields}: paste the whole key file."
SERVICE_ACCOUNT_TOKEN_URI = (
    "The service-account key's \"token_uri\" must be Google's ({default}), or a host an "
    "administrator listed in ROUTING_ALLOWED_PRIVATE_HOSTS: the signed key assertion is "
    "sent there."
)
VERTEX_TOKEN_FAILED = "Google did not give an access token for the service-account key: {detail}"
VERTEX_CREDENTIALS_NOT_JSON = (
    "the service-account key itself (its JSON, inline or from an os.environ/ variable); a "
    "path to a key file on this server is not read"
)
_SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "private_key_id")


@dataclass(frozen=True)
class VertexKind(ProviderKind):
    """Gemini and partner models (Claude, Llama, Mistral) on Vertex AI. The key field holds a
    service-account key (JSON); LiteLLM trades it for an OAuth token with google-auth."""

    models_path: str = "/v1beta1/publishers/google/models"

    def default_base_url_for(self, options: dict | None) -> str:
        location = (options or {}).get("location") or "{location}"
        if location == "global":
            return "https://aiplatform.googleapis.com"
        return self.default_base_url.format(location=location)

    def clean_api_key(self, api_key: str) -> str:
        if not api_key:
            return ""
        info = _service_account(api_key)
        _check_token_uri(str(info.get("token_uri") or GOOGLE_TOKEN_URI))
        # Stored compact: the form's password-like field may have lost the file's newlines.
        return json.dumps(info, separators=(",", ":"))

    def key_from_litellm(self, value: Any) -> str:
        # LiteLLM reads a text that is not JSON as a path: a file on this server is not read.
        if isinstance(value, dict):
            return json.dumps(value)
        if not isinstance(value, str) or not value.strip().startswith("{"):
            raise ValueError(VERTEX_CREDENTIALS_NOT_JSON)
        return value.strip()

    def key_hint(self, api_key: str) -> str:
        try:
            key_id = str(json.loads(api_key).get("private_key_id") or "")
        except (ValueError, AttributeError):
            key_id = ""
        return f"key {mask(key_id)}" if key_id else "set"

    def secret_values(self, api_key: str) -> tuple[str, ...]:
        try:
            private_key = str(json.loads(api_key).get("private_key") or "")
        except (ValueError, AttributeError):
            private_key = ""
        # The PEM's base64 lines too: an error may quote the key reflowed or JSON-escaped.
        lines = tuple(line for line in private_key.splitlines() if len(line) >= 16)
        return tuple(s for s in (api_key, private_key, *lines) if s)

    def connection_params(
        self, *, base_url: str, api_key: str, api_version: str, options: dict
    ) -> dict[str, Any]:
        return {
            # Always explicit: without it LiteLLM picks the host from the location itself.
            "api_base": base_url,
            "vertex_project": options.get("project", ""),
            "vertex_location": options.get("location", ""),
            "vertex_credentials": _credentials(api_key),
        }

    def models_url(self, base_url: str, api_version: str) -> str:
        return _with_query(base_url.rstrip("/") + self.models_path, pageSize="1000")

    def next_models_url(self, url: str, payload: Any) -> str | None:
        return _next_page_token_url(url, payload)

    def parse_models(self, payload: Any) -> list[str]:
        if not isinstance(payload, dict):
            raise ModelListError(NOT_A_MODEL_LIST)
        names = _ids(payload.get("publisherModels", []), "name")
        return [name.rsplit("/", 1)[-1] for name in names]

    def request_headers(
        self, *, method: str, url: str, body: bytes, api_key: str, options: dict, timeout: float
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {access_token(api_key, timeout=timeout)}"}


def _credentials(api_key: str) -> dict | str | None:
    """A dict, not text: LiteLLM reads a text that names an existing file as a path. Text
    only for the export's os.environ/ reference (stored keys are always JSON)."""
    if not api_key:
        return None
    try:
        return json.loads(api_key)
    except ValueError:
        return api_key


def _service_account(text: str) -> dict:
    try:
        info = json.loads(text)
    except ValueError:
        raise ValidationError(SERVICE_ACCOUNT_NOT_JSON, code="service_account") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValidationError(SERVICE_ACCOUNT_WRONG_TYPE, code="service_account")
    missing = [name for name in _SERVICE_ACCOUNT_FIELDS if not info.get(name)]
    if missing:
        message = SERVICE_ACCOUNT_INCOMPLETE.format(fields=", ".join(missing))
        raise ValidationError(message, code="service_account")
    return info


def _check_token_uri(uri: str) -> None:
    """Google's token endpoint, or one an administrator allowed (ROUTING_ALLOWED_PRIVATE_HOSTS
    names its host or holds its addresses): a key's signed assertion is as good as a token
    for an hour, so it is sent nowhere else."""
    if uri == GOOGLE_TOKEN_URI:
        return
    from ..validators import validate_base_url

    refused = ValidationError(
        SERVICE_ACCOUNT_TOKEN_URI.format(default=GOOGLE_TOKEN_URI), code="token_uri"
    )
    try:
        checked = validate_base_url(uri, local=False)
    except ValidationError:
        raise refused from None
    if not _listed(checked.host.lower().strip("[]")):
        raise refused


def _listed(host: str) -> bool:
    import ipaddress

    from ..addresses import allowed_private_hosts, resolve_host

    listed = allowed_private_hosts()
    if host in listed:
        return True
    networks = [entry for entry in listed if not isinstance(entry, str)]
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = resolve_host(host)
        except OSError:
            return False
    return bool(networks) and all(any(ip in net for net in networks) for ip in addresses)


def access_token(api_key: str, *, timeout: float) -> str:
    """An OAuth token for the service-account key, fetched through the outbound client (the
    address checks of every provider call)."""
    from google.auth import exceptions
    from google.oauth2 import service_account

    from ..redact import redact

    info = json.loads(api_key)
    _check_token_uri(str(info.get("token_uri") or GOOGLE_TOKEN_URI))
    try:
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=[CLOUD_PLATFORM_SCOPE]
        )
        credentials.refresh(_OutboundRequest(timeout))
    except (exceptions.GoogleAuthError, ValueError) as exc:
        detail = redact(str(exc), VERTEX.secret_values(api_key))[:300]
        raise AuthFailed(VERTEX_TOKEN_FAILED.format(detail=detail)) from None
    return str(credentials.token)


def outbound_auth_request(timeout: float) -> _OutboundRequest:
    """A google-auth transport that connects like every provider call (routing.outbound)."""
    return _OutboundRequest(timeout)


class _OutboundRequest:
    """google-auth's transport interface over routing.outbound's pinned httpx client."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        from google.auth import exceptions

        from ..routing import outbound

        try:
            with outbound.client(timeout=timeout or self.timeout) as client:
                response = client.request(method, url, content=body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - google-auth wants its own error type
            raise exceptions.TransportError(type(exc).__name__) from None
        return _Response(response)


class _Response:
    def __init__(self, response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.data = response.content


VERTEX = VertexKind(
    slug="vertex_ai",
    label="Google Vertex AI",
    litellm_prefix="vertex_ai",
    default_base_url="https://{location}-aiplatform.googleapis.com",
    model_example="gemini-2.5-flash",
    fields=(
        KindField(
            name="project",
            label="Project",
            example="my-project-123",
            help_text="The Google Cloud project ID billed for the calls (VERTEXAI_PROJECT).",
            required=True,
            pattern=r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
        ),
        KindField(
            name="location",
            label="Location",
            example="us-central1",
            help_text="Where the models run (VERTEXAI_LOCATION), or global.",
            required=True,
            pattern=r"global|[a-z]+-[a-z]+[0-9]{1,2}",
        ),
    ),
    api_key_label="Service-account key (JSON)",
    litellm_key_params=("vertex_credentials",),
    litellm_option_params=(("project", "vertex_project"), ("location", "vertex_location")),
    api_key_help="The whole key file of a service account with the Vertex AI User role. "
    "Stored encrypted; its private key is never shown.",
    api_key_multiline=True,
    env_conventions=(
        EnvConvention(
            api_key_file=("GOOGLE_APPLICATION_CREDENTIALS",),
            options=(
                ("project", ("VERTEXAI_PROJECT", "VERTEX_PROJECT")),
                ("location", ("VERTEXAI_LOCATION", "VERTEX_LOCATION")),
            ),
        ),
    ),
)
