"""A dashboard as a team would have it after a while, for the layout, console and screenshot
tests: providers (one with a 63-character name and a long base URL), a routing group as the
default, tokens, and request-log records written by real calls through the service layer."""

from __future__ import annotations

from gateway.services import token_create
from providers import services
from providers.services import DeploymentSpec
from usage import request_log

LONG_NAME = "team-" + "x" * 50 + "-primary"  # 63 characters, the longest a name may be
assert len(LONG_NAME) == 63


def seed(upstream) -> None:
    base = upstream.base_url + "/v1"
    first = services.provider_create(
        name="openai-prod", kind="openai", base_url=base, api_key="sk-seed-0123456789abcd"
    )
    services.provider_create(
        name=LONG_NAME,
        kind="openai_compatible",
        base_url=base + "/a/rather/long/path/that/goes/on/and/on/for/a/while",
        api_key="sk-seed-long-0123456789",
    )
    services.provider_create(
        name="local-vllm", kind="vllm", base_url="http://127.0.0.1:9599/v1", api_key=""
    )
    services.provider_test(provider=first, actor="seed")
    services.group_save(
        name="fast",
        deployments=[DeploymentSpec("openai-prod", "gpt-4o-mini")],
        actor="seed",
    )
    services.default_model_set(provider=first, model="gpt-4o-mini", actor="seed")
    token_create(name="ci-pipeline", actor="seed")
    hi = [{"role": "user", "content": "hi"}]
    for model in ("openai-prod/gpt-4o-mini", "fast", "default"):
        services.completion(hi, model=model)
    list(services.completion(hi, model="fast", stream=True))
    request_log.flush()
