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
    return module


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
