import asyncio, os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm
from litellm import Router
from litellm.router_utils.cooldown_handlers import async_get_cooldown_deployments
REDIS = sys.argv[2]
def mk():
    return Router(
        model_list=[{"model_name": "g", "litellm_params": {"model": "openai/m", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"},
                     "model_info": {"id": "dep-1"}},
                    {"model_name": "g", "litellm_params": {"model": "openai/m2", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"},
                     "model_info": {"id": "dep-2"}}],
        redis_url=REDIS, cache_responses=False, allowed_fails=1, cooldown_time=30, num_retries=0,
        cache_kwargs={"socket_timeout": 0.25, "socket_connect_timeout": 0.25})
async def main():
    role = sys.argv[1]
    t0 = time.monotonic(); r = mk(); print(role, "init", round(time.monotonic() - t0, 2), "s")
    if role == "A":
        for i in range(4):
            try: await r.acompletion(model="g", messages=[{"role": "user", "content": "x"}], timeout=2)
            except Exception as e: print("A call", i, type(e).__name__)
        await asyncio.sleep(0.3)
        print("A sees", await async_get_cooldown_deployments(r, None))
    else:
        for _ in range(25):
            print("B sees", round(time.monotonic()-t0,1), await async_get_cooldown_deployments(r, None)); await asyncio.sleep(1)
asyncio.run(main())
