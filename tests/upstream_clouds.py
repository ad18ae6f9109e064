"""What the fake upstream answers for the clouds' model services: AWS Bedrock's Converse
API (ConverseStream too, in AWS's binary event-stream framing), and Google Vertex AI's OAuth
token (a service account's token_uri) and model list.
Vertex AI's generateContent is Gemini's route (tests/upstream_routes.py), below
/v1/projects/<project>/locations/<location>/publishers/google.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from tests.upstream_routes import Refusal, Stream, _pieces, _usage

if TYPE_CHECKING:
    from tests.upstream import RecordedRequest, Upstream

BEDROCK_CONVERSE = re.compile(r"/model/(?P<model>[^/]+)/converse(?P<stream>-stream)?$")
EVENT_STREAM = "application/vnd.amazon.eventstream"
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


def _bedrock_converse(
    upstream: Upstream, request: RecordedRequest, body: dict
) -> dict | Stream | Refusal:
    if not body.get("messages") or (body.get("inferenceConfig") or {}).get("maxTokens") == 0:
        # As Bedrock answers a request it refuses for its content, once the signature passed.
        return Refusal(400, {"message": "ValidationException: messages and maxTokens >= 1"})
    text = upstream.reply_text
    prompt_tokens, completion_tokens = _usage(text)
    usage = {
        "inputTokens": prompt_tokens,
        "outputTokens": completion_tokens,
        "totalTokens": prompt_tokens + completion_tokens,
    }
    match = BEDROCK_CONVERSE.search(request.path)
    if match and match["stream"]:
        return _converse_stream(text, usage)
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": usage,
        "metrics": {"latencyMs": 1},
    }


def _converse_stream(text: str, usage: dict) -> Stream:
    """ConverseStream's events, each one event-stream message, as Bedrock sends them."""
    events = [("messageStart", {"role": "assistant"})]
    events += [
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
        for piece in _pieces(text)
    ]
    events += [
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}),
    ]
    return Stream(EVENT_STREAM, [event_message(name, payload) for name, payload in events])


def event_message(event_type: str, payload: dict) -> bytes:
    """One message of AWS's event-stream encoding: a prelude (total and headers length, and
    its CRC32), string headers, the JSON payload, and the whole message's CRC32."""
    headers = b"".join(
        _string_header(name, value)
        for name, value in (
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        )
    )
    data = json.dumps(payload).encode()
    total = 4 + 4 + 4 + len(headers) + len(data) + 4
    prelude = struct.pack(">II", total, len(headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + data
    return head + struct.pack(">I", zlib.crc32(head))


def _string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # Header value type 7: a string, its length in two bytes.
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", 7, len(raw_value))
        + raw_value
    )


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
