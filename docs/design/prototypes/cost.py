import os, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
t0 = time.time()
import litellm
print("import", round(time.time() - t0, 1), "s; version", litellm.__version__ if hasattr(litellm, "__version__") else "")
print("entries in local map:", len(litellm.model_cost))
for m in ["gpt-4o-mini", "openai/gpt-4o-mini", "claude-haiku-4-5", "anthropic/claude-haiku-4-5", "azure/gpt-4o-mini",
          "openrouter/openai/gpt-4o-mini", "groq/llama-3.1-8b-instant", "ollama/llama3.2", "openai/my-vllm-model"]:
    try:
        p, c = litellm.cost_per_token(model=m, prompt_tokens=1000, completion_tokens=500)
        print(f"{m:32s} prompt ${p:.6f} completion ${c:.6f}")
    except Exception as e:
        print(f"{m:32s} {type(e).__name__}: {str(e)[:90]}")
# a whole response, and a stream rebuilt from its chunks (mock_response: no network)
r = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="hello there")
print("usage", r.usage.prompt_tokens, r.usage.completion_tokens, "completion_cost", litellm.completion_cost(completion_response=r),
      "hidden response_cost", r._hidden_params.get("response_cost"))
chunks = list(litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="hello there friend", stream=True))
full = litellm.stream_chunk_builder(chunks, messages=[{"role": "user", "content": "hi"}])
print("stream rebuilt usage", full.usage.prompt_tokens, full.usage.completion_tokens, "cost", litellm.completion_cost(completion_response=full))
# abandoned stream: count what was received
part = chunks[:2]
text = "".join((c.choices[0].delta.content or "") for c in part)
pt = litellm.token_counter(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
ct = litellm.token_counter(model="gpt-4o-mini", text=text, count_response_tokens=True)
print("abandoned after", repr(text), "tokens", pt, ct, "cost", sum(litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=pt, completion_tokens=ct)))
# own price for a model the map lacks
litellm.register_model({"openai/my-vllm-model": {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7, "litellm_provider": "openai", "mode": "chat"}})
print("registered", litellm.cost_per_token(model="openai/my-vllm-model", prompt_tokens=1000, completion_tokens=500))
