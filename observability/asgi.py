"""The ASGI wrapper in front of the whole application (routing_admin/asgi.py), installed only
when metrics or traces are on: for each gateway request it notes the endpoint (the request
log's `current_endpoint`), when the first chunk of the answer left (time to first token),
and with traces on serves the request inside its server span."""

from __future__ import annotations

import re
import time
from typing import Any

from usage import request_log

from .context import RequestState, current_request

# The paths of the gateway's APIs (OpenAI's and Anthropic's under /v1/, Azure OpenAI's).
GATEWAY_PREFIXES = ("/v1/", "/openai/")
ENDPOINT_MAX = 100


# Azure's deployment name may be "provider/model", unquoted in the path: the API is what
# follows it, the shortest deployment that leaves one of these (or a last segment).
AZURE_PATH = re.compile(
    r"^/openai/deployments/.+?/(chat/completions|completions|embeddings|[^/]+)$"
)


def endpoint_of(path: str) -> str:
    """The endpoint label of a path: Azure's deployment name (a group or provider/model)
    becomes "{deployment}", so that the label names the API, not the model."""
    azure = AZURE_PATH.match(path)
    if azure:
        return f"/openai/deployments/{{deployment}}/{azure[1]}"[:ENDPOINT_MAX]
    return path[:ENDPOINT_MAX]


class Observe:
    def __init__(self, app: Any, tracing: Any = None) -> None:
        self.app, self.tracing = app, tracing

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GATEWAY_PREFIXES):
            await self.app(scope, receive, send)
            return
        state = RequestState(time.perf_counter())
        endpoint = endpoint_of(scope["path"])
        state_reset = current_request.set(state)
        endpoint_reset = request_log.current_endpoint.set(endpoint)

        async def timed(message: dict) -> None:
            if not state.first_byte_at and message["type"] == "http.response.body":
                state.first_byte_at = time.perf_counter()
            await send(message)

        try:
            if self.tracing is None:
                await self.app(scope, receive, timed)
            else:
                await self.tracing.serve(self.app, scope, receive, timed, endpoint)
        finally:
            request_log.current_endpoint.reset(endpoint_reset)
            current_request.reset(state_reset)
