"""What the fake upstream answers for the clouds' model services: AWS Bedrock's Converse
API, and Google Vertex AI's OAuth token (a service account's token_uri) and model list.
Vertex AI's generateContent is Gemini's route (tests/upstream_routes.py), below
/v1/projects/<project>/locations/<location>/publishers/google.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from tests.upstream_routes import Refusal, _usage

if TYPE_CHECKING:
    from tests.upstream import RecordedRequest, Upstream

BEDROCK_CONVERSE = re.compile(r"/model/(?P<model>[^/]+)/converse$")
VERTEX_MODELS = "/publishers/google/models"
# What the fake OAuth token endpoint (POST .../token, a service account's token_uri) hands out.
TEST_ACCESS_TOKEN = "ya29.local-test-token"


def route_for(method: str, path: str) -> Callable | None:
    if method == "POST" and BEDROCK_CONVERSE.search(path):
        return _bedrock_converse
    if method == "POST" and path.endswith("/token"):
        return _oauth_token
    if method == "GET" and path.endswith(VERTEX_MODELS):
        return _vertex_models
    return None


def _bedrock_converse(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | Refusal:
    if not body.get("messages") or (body.get("inferenceConfig") or {}).get("maxTokens") == 0:
        # As Bedrock answers a request it refuses for its content, once the signature passed.
        return Refusal(400, {"message": "ValidationException: messages and maxTokens >= 1"})
    text = upstream.reply_text
    prompt_tokens, completion_tokens = _usage(text)
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": prompt_tokens,
            "outputTokens": completion_tokens,
            "totalTokens": prompt_tokens + completion_tokens,
        },
        "metrics": {"latencyMs": 1},
    }


def _oauth_token(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | Refusal:
    form = parse_qs(request.body.decode())
    if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
        return Refusal(400, {"error": "unsupported_grant_type"})
    if not form.get("assertion"):
        return Refusal(400, {"error": "invalid_request"})
    return {"access_token": TEST_ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}


def _vertex_models(upstream: Upstream, request: RecordedRequest, body: dict) -> dict | list:
    models = [{"name": f"publishers/google/models/{model}"} for model in upstream.models]
    if upstream.list_format == "array":
        return models
    return {"publisherModels": models}
