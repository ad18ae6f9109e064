"""Vendors with their own native APIs: Anthropic, Gemini (AI Studio), Together's model
list and Ollama."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import (
    NOT_A_MODEL_LIST,
    ModelListError,
    ProviderKind,
    _ids,
    _next_page_token_url,
    _with_query,
)


@dataclass(frozen=True)
class AnthropicKind(ProviderKind):
    models_path: str = "/v1/models"
    sends_extra_body: bool = False
    page_size: int = 1000  # the API's maximum; 20 without ?limit

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": "2023-06-01"}

    def models_url(self, base_url: str, api_version: str) -> str:
        return _with_query(super().models_url(base_url, api_version), limit=str(self.page_size))

    def next_models_url(self, url: str, payload: Any) -> str | None:
        last = payload.get("last_id") if isinstance(payload, dict) else None
        if last and payload.get("has_more"):
            return _with_query(url, after_id=str(last))
        return None


@dataclass(frozen=True)
class GeminiKind(ProviderKind):
    """The stored base URL is the host; LiteLLM wants it with /v1beta, the model list
    endpoint is /v1beta/models below the host."""

    models_path: str = "/v1beta/models"

    @staticmethod
    def _root(base_url: str) -> str:
        return base_url.rstrip("/").removesuffix("/v1beta")

    def litellm_params(self, *, base_url: str, **kwargs: Any) -> dict[str, Any]:
        return super().litellm_params(base_url=self._root(base_url) + "/v1beta", **kwargs)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        # A header, not the ?key= query parameter, so the key never lands in access logs.
        return {"x-goog-api-key": api_key}

    def models_url(self, base_url: str, api_version: str) -> str:
        return _with_query(self._root(base_url) + self.models_path, pageSize="1000")

    def next_models_url(self, url: str, payload: Any) -> str | None:
        return _next_page_token_url(url, payload)

    def parse_models(self, payload: Any) -> list[str]:
        # The last page of a list may have no "models" at all.
        if not isinstance(payload, dict):
            raise ModelListError(NOT_A_MODEL_LIST)
        return [name.removeprefix("models/") for name in _ids(payload.get("models", []), "name")]


@dataclass(frozen=True)
class TogetherKind(ProviderKind):
    def parse_models(self, payload: Any) -> list[str]:
        # GET /v1/models answers a bare JSON array of models.
        return _ids(payload, "id")


@dataclass(frozen=True)
class OllamaKind(ProviderKind):
    models_path: str = "/api/tags"
    side_requests_need_auth: bool = True

    def parse_models(self, payload: Any) -> list[str]:
        if not isinstance(payload, dict):
            raise ModelListError(NOT_A_MODEL_LIST)
        return _ids(payload.get("models"), "name")

    def call_params(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        # LiteLLM embeds through "ollama/" (Ollama's /api/embed); its chat adapter's prefix,
        # "ollama_chat/", has no embeddings.
        if function != "aembedding":
            return params
        model = params["model"].removeprefix(f"{self.litellm_prefix}/")
        return {**params, "model": f"ollama/{model}"}
