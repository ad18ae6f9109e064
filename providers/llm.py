"""The only place LiteLLM is imported, lazily, the first time a model is called."""

import os
from functools import cache
from types import ModuleType


@cache
def litellm() -> ModuleType:
    # Without this, importing LiteLLM fetches a price list from the internet (~2 s, ~170 MB).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm as module

    module.suppress_debug_info = True
    # Token counting would otherwise try to download a tokenizer from Hugging Face and stall
    # for tens of seconds where there is no internet.
    module.disable_hf_tokenizer_download = True
    _pin_connections(module)
    return module


def _pin_connections(module: ModuleType) -> None:
    """Make every HTTP connection LiteLLM opens go through providers.outbound (checked
    address, no redirects, capped answers), for every kind, sync and async, direct or routed.

    LiteLLM builds its HTTP clients in four places; three take a client or transport from
    module settings: the OpenAI SDK family (openai, azure, lm_studio, openai_compatible,
    ollama_chat here) uses `client_session` / `aclient_session`, and its own HTTP handler
    uses `sync_transport` for sync calls. Its async handler (anthropic, gemini, azure_ai, groq,
    mistral, deepseek, together_ai, openrouter, hosted_vllm in async calls) has no such
    setting, so its transport factory is replaced: by default it would use aiohttp, which
    resolves names itself. tests/security/test_outbound_litellm.py fails for any kind whose
    call stops going through the pinned transport after a LiteLLM upgrade.
    """
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    from . import outbound

    sync_transport = outbound.PinnedTransport(shared=True)
    async_transport = outbound.AsyncPinnedTransport(shared=True)
    # Per-request timeouts come from the provider's settings; 600 s is only the fallback.
    module.client_session = outbound.client(timeout=600, transport=sync_transport)
    module.aclient_session = outbound.async_client(timeout=600, transport=async_transport)
    module.sync_transport = sync_transport
    module.force_ipv4 = False  # its IPv4 transports would bypass the ones above
    module.disable_aiohttp_transport = True

    def pinned(*args, **kwargs):
        return async_transport

    AsyncHTTPHandler.create_async_transport = staticmethod(pinned)
    AsyncHTTPHandler._create_async_transport = staticmethod(pinned)


def is_loaded() -> bool:
    return litellm.cache_info().currsize > 0


async def alitellm() -> ModuleType:
    """For async code: the first import takes seconds, so it must not block the event loop."""
    if is_loaded():
        return litellm()
    from asgiref.sync import sync_to_async

    return await sync_to_async(litellm, thread_sensitive=False)()


def preload_in_background() -> None:
    """For gateway workers: import LiteLLM at start-up, off the event loop, so that the
    first request does not pay for it."""
    import threading

    threading.Thread(target=litellm, name="litellm-preload", daemon=True).start()
