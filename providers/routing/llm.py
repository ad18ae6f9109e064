"""The only place LiteLLM is imported, lazily, the first time a model is called."""

import asyncio
import contextvars
import functools
import os
import threading
from functools import cache
from types import ModuleType
from typing import Any

from django.conf import settings

# The Routers' Redis (ROUTING_REDIS_URL): LiteLLM waits this long for an answer, then logs the
# failure and goes on with what this process knows. Its default, 5 s (and 5 s more to connect),
# would hold calls that long while Redis hangs, and it takes no retry policy with a URL.
ROUTER_REDIS_TIMEOUT_SECONDS = 0.25
# LiteLLM's keys (deployment:<id>:cooldown, ...) start with this, beside limits' own keys.
ROUTER_REDIS_NAMESPACE = "routing-admin:router"


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
    # /v1/messages to an OpenAI-like provider goes through its chat completions, which every
    # such server speaks; LiteLLM would use the Responses API for any it knows as "openai",
    # OpenAI-compatible endpoints included, and those mostly lack it.
    module.use_chat_completions_url_for_anthropic_messages = True
    _pin_connections(module)
    _carry_auth_on_side_requests(module)
    _tolerate_groq_without_service_tier()
    return module


def _pin_connections(module: ModuleType) -> None:
    """Make every HTTP connection LiteLLM opens go through providers.routing.outbound (checked
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
    _pin_token_requests()


# A token request is small: this bounds a stalled token endpoint, not a generation.
TOKEN_REQUEST_TIMEOUT = 30.0


def _pin_token_requests() -> None:
    """Vertex AI's OAuth token requests (google-auth, sync and async alike: every refresh
    goes through VertexBase.refresh_auth) use the outbound client instead of `requests`."""
    from litellm.llms.vertex_ai.vertex_llm_base import VertexBase

    from ..kinds.vertex import outbound_auth_request

    def refresh_auth(self, credentials) -> None:
        # The lock is LiteLLM's: google-auth's refresh() is not safe to run concurrently.
        with self._sync_refresh_lock:
            credentials.refresh(outbound_auth_request(TOKEN_REQUEST_TIMEOUT))

    VertexBase.refresh_auth = refresh_auth


# Headers LiteLLM's shared client adds to the request being made (see below).
_side_headers: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "side_headers", default=None
)


def _side_request_auth(server_base: str, same_server) -> tuple[str, dict[str, str]] | None:
    """The key and headers of the provider at `server_base`, if exactly one set is known."""
    from . import live

    snap = live.last_built()
    found = set()
    for entry in snap.providers.values() if snap is not None else ():
        if entry.kind.side_requests_need_auth and same_server(entry.base_url, server_base):
            headers = entry.kind.merged_headers(entry.headers)
            found.add((entry.kind.effective_api_key(entry.api_key), tuple(sorted(headers.items()))))
    if len(found) != 1:
        return None
    key, headers = found.pop()
    return key, dict(headers)


def _carry_auth_on_side_requests(module: ModuleType) -> None:
    """Before some calls (tools, streaming) LiteLLM asks Ollama's POST /api/show about the
    model, with neither the provider's key nor its custom headers: behind an authenticating
    proxy that is refused, and LiteLLM then guesses what the model supports. The request is
    made with the key and headers of the provider at that address."""
    from litellm.llms.ollama.common_utils import OllamaModelInfo

    original = OllamaModelInfo.get_runtime_model_info
    client = module.module_level_client
    original_post = client.post

    @functools.wraps(original_post)
    def post(*args: Any, headers: dict | None = None, **kwargs: Any) -> Any:
        extra = _side_headers.get()
        if extra:
            headers = {**extra, **(headers or {})}
        return original_post(*args, headers=headers, **kwargs)

    def same_server(a: str, b: str) -> bool:
        return OllamaModelInfo.get_server_api_base(a) == OllamaModelInfo.get_server_api_base(b)

    @functools.wraps(original)
    def get_runtime_model_info(self, model: str, api_base=None, api_key=None):
        auth = _side_request_auth(api_base, same_server) if api_base else None
        if auth is None:
            return original(self, model=model, api_base=api_base, api_key=api_key)
        key, headers = auth
        token = _side_headers.set(headers)
        try:
            return original(self, model=model, api_base=api_base, api_key=api_key or key or None)
        finally:
            _side_headers.reset(token)

    client.post = post
    OllamaModelInfo.get_runtime_model_info = get_runtime_model_info


def _tolerate_groq_without_service_tier() -> None:
    """LiteLLM's Groq transform reads `service_tier` from the response without a default,
    and crashes ('ModelResponse' object has no attribute 'service_tier') when Groq, or a
    Groq-compatible server, leaves it out. Absent, it is None (which LiteLLM maps to auto)."""
    from litellm.llms.groq.chat.transformation import GroqChatConfig

    original = GroqChatConfig.transform_response
    parent = GroqChatConfig.__mro__[1].transform_response

    @functools.wraps(original)
    def transform_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except AttributeError as exc:
            if "service_tier" not in str(exc):
                raise
        # The transform is pure (the raw answer in, a new response out): run its steps
        # again, with the tier read as absent instead of crashing.
        response = parent(self, *args, **kwargs)
        tier = getattr(response, "service_tier", None)
        response.service_tier = self._map_groq_service_tier(original_service_tier=tier)
        self._add_web_search_usage(model_response=response)
        return response

    GroqChatConfig.transform_response = transform_response


_router_redis_lock = threading.Lock()
_router_redis: tuple[str, Any] | None = None


def router_redis() -> Any | None:
    """The LiteLLM RedisCache that every Router of this process shares, so that cooldowns,
    allowed_fails counts and usage-based routing's rpm/tpm hold across workers and machines;
    None without ROUTING_REDIS_URL (and nothing is imported then).

    One for the process, not one per Router: a Router is built per configuration, and a
    RedisCache opens a connection pool and pings Redis (synchronously) when it is created."""
    global _router_redis
    url = settings.ROUTING_REDIS_URL
    if not url:
        return None
    found = _router_redis
    if found is None or found[0] != url:
        with _router_redis_lock:
            found = _router_redis
            if found is None or found[0] != url:
                litellm()
                from litellm.caching.redis_cache import RedisCache

                cache = RedisCache(
                    url=url,
                    namespace=ROUTER_REDIS_NAMESPACE,
                    socket_timeout=ROUTER_REDIS_TIMEOUT_SECONDS,
                    socket_connect_timeout=ROUTER_REDIS_TIMEOUT_SECONDS,
                )
                found = _router_redis = (url, cache)
    return found[1]


def _selectors(router: Any) -> list[Any]:
    # The routing strategy's state keepers; LiteLLM puts them in its process-wide callbacks.
    names = router._DEFAULT_SELECTOR_ATTR_BY_STRATEGY.values()
    return [getattr(router, name, None) for name in names]


def _sync_loop(router: Any) -> asyncio.AbstractEventLoop | None:
    """The loop of the task that pushes usage-based-routing-v2's counts to Redis, if any."""
    for selector in _selectors(router):
        task = getattr(selector, "_sync_task", None)
        if task is not None:
            return task.get_loop()
    return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def bind_router_to_running_loop(router: Any) -> None:
    """usage-based-routing-v2 pushes this process's counts to Redis, and reads everyone
    else's, from a task on the loop its Router was built on. Built outside the gateway's loop
    (a group test on the dashboard runs in a thread), that task would sit on a loop that never
    runs: rebuild the strategy here, on the loop that calls it."""
    loop = _running_loop()
    built_on = _sync_loop(router)
    if loop is not None and built_on is not None and built_on is not loop:
        router.routing_strategy_init(router.routing_strategy, router.routing_strategy_args)


def retire_router(router: Any) -> None:
    """Unhook a Router that a newer configuration replaced (it may finish the calls it has).
    LiteLLM registers every Router and its routing strategy in process-wide callback lists,
    which keep them alive and call them for every model call: through the Redis they share,
    each Router still hooked would count every failure, and every token, once more."""
    router.discard()
    selectors = _selectors(router)
    loop = _sync_loop(router)
    if loop is not None and loop.is_running() and loop is not _running_loop():
        # Its task belongs to the gateway's loop, which this thread must not touch.
        loop.call_soon_threadsafe(router._unregister_router_selectors, selectors)
    else:
        router._unregister_router_selectors(selectors)


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
    threading.Thread(target=_preload, name="litellm-preload", daemon=True).start()


def _preload() -> None:
    litellm()
    # Created here, off the loop: RedisCache pings Redis synchronously when it is created.
    router_redis()
