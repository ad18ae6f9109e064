"""Microsoft's two: Azure OpenAI (deployments, api-version) and Azure AI Foundry (three
endpoints behind one kind)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError

from .base import Probe, ProviderKind

AZURE_AI_CLAUDE_NEEDS_ANTHROPIC_PATH = (
    "Claude models on Azure AI Foundry are served from the Anthropic endpoint: the base URL "
    "must end with /anthropic (e.g. https://<resource>.services.ai.azure.com/anthropic)."
)
AZURE_DEPLOYMENTS_OK = (
    "OK: the resource answered. {count} deployment{s} named on the provider (Azure lists "
    "base models, not deployments: only the deployments named here are offered)."
)
AZURE_NO_DEPLOYMENTS_OK = (
    "OK: the resource answered. Name its deployments on the provider (Deployments) to offer "
    "them as models: Azure lists base models, not deployments."
)


@dataclass(frozen=True)
class AzureKind(ProviderKind):
    models_path: str = "/openai/models"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def models_url(self, base_url: str, api_version: str) -> str:
        query = urlencode({"api-version": self.effective_api_version(api_version)})
        return f"{base_url.rstrip('/')}{self.models_path}?{query}"

    def callable_models(self, *, listed: list[str], declared: list[str]) -> list[str]:
        # /openai/models lists the resource's base models; calls name a deployment.
        return sorted(set(declared))

    def ok_message(self, *, listed: list[str], models: list[str]) -> str:
        if not models:
            return AZURE_NO_DEPLOYMENTS_OK
        return AZURE_DEPLOYMENTS_OK.format(count=len(models), s="s" if len(models) != 1 else "")


AZURE_AI_ANTHROPIC_OK = (
    "OK: the Anthropic endpoint answered and accepted the key. It cannot list its models, "
    "so the test sent an empty request, which generates nothing and costs no tokens."
)


@dataclass(frozen=True)
class AzureAIKind(ProviderKind):
    """Three endpoints behind one kind, told apart by the base URL's path:
    `.../models` (the model inference API: api-version required, /info describes the
    model), `.../anthropic` (Claude, Anthropic's wire format, no model list) and
    `.../openai/v1` (OpenAI's v1 API as it is, no api-version)."""

    models_path: str = "/info"

    def _is_anthropic_endpoint(self, base_url: str) -> bool:
        return base_url.rstrip("/").endswith("/anthropic")

    def _is_openai_v1(self, base_url: str) -> bool:
        return base_url.rstrip("/").endswith("/openai/v1")

    def check_model(self, *, base_url: str, model: str) -> None:
        if model.lower().startswith("claude") and not self._is_anthropic_endpoint(base_url):
            raise ValidationError(AZURE_AI_CLAUDE_NEEDS_ANTHROPIC_PATH, code="azure_ai_claude")

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key, "Authorization": f"Bearer {api_key}"}

    def models_url(self, base_url: str, api_version: str) -> str:
        base = base_url.rstrip("/")
        if self._is_openai_v1(base):
            return base + "/models"
        version = self.effective_api_version(api_version)
        return f"{base}{self.models_path}?{urlencode({'api-version': version})}"

    def probe(self, base_url: str, api_version: str) -> Probe:
        if self._is_anthropic_endpoint(base_url):
            # Foundry's Anthropic endpoint has no model list (its SDK disables listing).
            url = base_url.rstrip("/") + "/v1/messages"
            return Probe(
                url=url,
                method="POST",
                json={},
                lists_models=False,
                ok_message=AZURE_AI_ANTHROPIC_OK,
                headers=(("anthropic-version", "2023-06-01"),),
            )
        return super().probe(base_url, api_version)

    def parse_models(self, payload: Any) -> list[str]:
        # /info describes the one model the endpoint serves; /openai/v1/models is a list.
        if isinstance(payload, dict) and isinstance(payload.get("model_name"), str):
            return [payload["model_name"]]
        return super().parse_models(payload)

    def litellm_params(self, *, model: str, base_url: str, api_version: str, **kwargs: Any):
        if self._is_openai_v1(base_url):
            # LiteLLM adds /models to any services.ai.azure.com base; this endpoint is
            # OpenAI's API as it is, so it is called as one.
            params = super().litellm_params(
                model=model, base_url=base_url, api_version="", **kwargs
            )
            params.pop("api_version", None)
            params["model"] = f"openai/{model}"
            return params
        if self._is_anthropic_endpoint(base_url):
            params = super().litellm_params(
                model=model, base_url=base_url, api_version="", **kwargs
            )
            params.pop("api_version", None)
            return params
        return super().litellm_params(
            model=model, base_url=base_url, api_version=api_version, **kwargs
        )
