"""Azure OpenAI's paths, so that the `AzureOpenAI` SDK works with `azure_endpoint` set to the
gateway and a gateway token as its `api_key` (sent as the `api-key` header, which the gate
accepts like a Bearer token).

The deployment in the path is what the body's `model` is elsewhere: `default`, a routing
group, or `provider/model` (the SDK puts a model's "/" in the path as it is). The
`api-version` the SDK sends is accepted and not used: the provider's own is sent upstream.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import gate
from .api import chat
from .completions import complete
from .embeddings import embed


@csrf_exempt
async def chat_completions(request: HttpRequest, deployment: str) -> HttpResponse:
    door = await gate.enter(request)
    return door if isinstance(door, HttpResponse) else await chat(door, deployment)


@csrf_exempt
async def embeddings(request: HttpRequest, deployment: str) -> HttpResponse:
    door = await gate.enter(request)
    return door if isinstance(door, HttpResponse) else await embed(door, deployment)


@csrf_exempt
async def completions(request: HttpRequest, deployment: str) -> HttpResponse:
    door = await gate.enter(request)
    return door if isinstance(door, HttpResponse) else await complete(door, deployment)
