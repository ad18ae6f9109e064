"""A dashboard at scale: providers, routing groups and request-log rows, written through
the service layer and the request log's own batch writer (which keeps the usage roll-ups
current in the same transaction), so the pages read what a real deployment would have."""

from __future__ import annotations

import itertools
import random
import time
from datetime import UTC, datetime, timedelta

KINDS = ("openai_compatible", "vllm", "ollama", "lm_studio")
TOKENS = tuple(f"app-{i:02d}" for i in range(20))
MODELS = ("chat-small", "chat-large")
BATCH = 10_000
SPAN = timedelta(days=29)
ADMIN, PASSWORD = "bench-admin", "bench-Password-1234"


def admin_user():
    from accounts.services import user_create

    return user_create(username=ADMIN, password=PASSWORD, role="admin", actor=None)


def providers(start: int, stop: int) -> None:
    from providers import services
    from providers.models import Provider

    for i in range(start, stop):
        services.provider_create(
            name=f"p{i:04d}",
            kind=KINDS[i % len(KINDS)],
            base_url=f"http://127.0.0.1:{9000 + i % 50}/v1",
            api_key=f"sk-bench-{i:08d}-key",
            actor="bench",
        )
    # What a connection test leaves behind: models found and the last result.
    Provider.objects.filter(name__gte=f"p{start:04d}", name__lt=f"p{stop:04d}").update(
        discovered_models=list(MODELS),
        last_test_ok=True,
        last_test_latency_ms=42.0,
        last_test_at=datetime.now(UTC),
    )


def deployments(group_count: int, provider_count: int) -> list[tuple[str, str]]:
    """Each group's three deployments, (provider, model): the pairs that traffic reaches."""
    return [
        (f"p{(i * 7 + k) % provider_count:04d}", MODELS[k % 2])
        for i in range(group_count)
        for k in range(3)
    ]


def groups(start: int, stop: int, provider_count: int) -> None:
    from providers import services
    from providers.services import DeploymentSpec

    pairs = deployments(stop, provider_count)
    for i in range(start, stop):
        specs = [DeploymentSpec(provider=p, model=m) for p, m in pairs[i * 3 : i * 3 + 3]]
        # Each group falls back to the one made before it: a chain, never a loop.
        fallbacks = [f"g{i - 1:03d}"] if i > start else []
        services.group_save(name=f"g{i:03d}", deployments=specs, fallbacks=fallbacks, actor="bench")


def _zipf(count: int) -> list[float]:
    """Cumulative weights of a Zipf law (s = 1.1): a few items take most of the traffic."""
    total, cumulative = 0.0, []
    for rank in range(1, count + 1):
        total += rank**-1.1
        cumulative.append(total)
    return cumulative


def _rows(rng: random.Random, count: int, pairs: list[tuple[str, str]]):
    """Traffic goes through the groups' deployments, and from 20 applications' tokens, both
    skewed; spread evenly over the last 29 days (inside the 30-day range)."""
    now, step = datetime.now(UTC), SPAN / max(count, 1)
    pair_weights, token_weights = _zipf(len(pairs)), _zipf(len(TOKENS))
    chosen = rng.choices(pairs, cum_weights=pair_weights, k=count)
    tokens = rng.choices(TOKENS, cum_weights=token_weights, k=count)
    for i in range(count):
        ok = rng.random() > 0.02
        provider, model = chosen[i]
        yield {
            "at": now - step * i,
            "token_name": tokens[i],
            "requested_model": "default",
            "provider": provider,
            "model": model,
            "fallbacks": 0,
            "ok": ok,
            "status": 200 if ok else 502,
            "error": "" if ok else "Provider failed with HTTP 502: bad gateway",
            "latency_ms": rng.lognormvariate(5.5, 0.6),
            "prompt_tokens": rng.randint(10, 2000) if ok else None,
            "completion_tokens": rng.randint(1, 800) if ok else None,
            "litellm_model": "",
            "stream": rng.random() < 0.2,
        }


def request_log(count: int, pairs: list[tuple[str, str]], *, seed: int = 8) -> float:
    """`count` rows, written in batches by the request log's writer; returns the seconds."""
    from usage import request_log as writer

    rows = _rows(random.Random(seed), count, pairs)
    started = time.perf_counter()
    while batch := list(itertools.islice(rows, BATCH)):
        writer.write(batch)
    return time.perf_counter() - started
