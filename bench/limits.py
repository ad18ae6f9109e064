"""`uv run python -m bench.limits [--calls N] [--redis URL] [--postgres URL]`: what the
limits cost per call, before and after it (limits.counters), on each backend.

Counts with a token and its team, each with every limit set (rpm, tpm, concurrency and a
budget), then with rpm alone, one call at a time on one event loop (the gateway's worker),
and the price of a call (usage.pricing) against LiteLLM's `cost_per_token`. The database is
a fresh SQLite file in a temporary directory, or the PostgreSQL database given (its tables
are created there, so give a scratch one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from decimal import Decimal


def _setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _subjects(every: bool):
    from limits.counters import Subject
    from limits.rules import Budget, Limits

    if not every:
        return [Subject("token", "bench", Limits(rpm=10**9))]
    limits = Limits(
        rpm=10**9, tpm=10**12, max_parallel=10**6, budget=Budget(Decimal(10**6), "month")
    )
    return [Subject("token", "bench", limits), Subject("team", "bench-team", limits)]


async def _calls(n: int, every: bool) -> tuple[float, float]:
    """Median µs of `before`, then of `settle`."""
    from limits import counters
    from usage.pricing import Spent

    subjects = _subjects(every)
    keys = ("token:bench", "team:bench-team")
    spent = Spent("openai/gpt-4o-mini", 7, 20)
    before, after = [], []
    for i in range(n + 20):
        t0 = time.perf_counter()
        ticket = await counters.before(subjects, ledger_keys=keys)
        t1 = time.perf_counter()
        await ticket.settle(spent)
        t2 = time.perf_counter()
        assert ticket.allowed and not ticket.unavailable, ticket
        if i >= 20:  # warm-up: connections, scripts loaded, price rates learnt
            before.append((t1 - t0) * 1e6)
            after.append((t2 - t1) * 1e6)
    return statistics.median(before), statistics.median(after)


def _pricing(n: int) -> tuple[float, float]:
    from providers.routing.llm import litellm
    from usage import pricing

    lib = litellm()
    pricing.cost("openai/gpt-4o-mini", 7, 20)
    t0 = time.perf_counter()
    for i in range(n):
        pricing.cost("openai/gpt-4o-mini", 7 + i, 20)
    t1 = time.perf_counter()
    for i in range(n):
        lib.cost_per_token(model="openai/gpt-4o-mini", prompt_tokens=7 + i, completion_tokens=20)
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--redis", default=os.environ.get("ROUTING_TEST_REDIS_URL", ""))
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _setup(args.postgres or f"sqlite:///{tmp}/bench.sqlite3")
        from django.conf import settings
        from django.db import connection

        if args.redis:
            import redis

            redis.Redis.from_url(args.redis).flushdb()
        rows = []
        for backend, url in (("database", ""), ("redis", args.redis)):
            if backend == "redis" and not url:
                continue
            settings.ROUTING_REDIS_URL = url
            name = f"{backend} ({connection.vendor})" if backend == "database" else backend
            for every in (False, True):
                b, a = asyncio.run(_calls(args.calls, every))
                what = "token+team, all 4 limits" if every else "token, rpm only"
                rows.append(f"{name:22} {what:26} before {b:7.0f} µs   after {a:7.0f} µs")
        ours, theirs = _pricing(args.calls)
        print("\n".join(rows))
        print(
            f"price of a call: usage.pricing {ours:.1f} µs, litellm.cost_per_token {theirs:.0f} µs"
        )


if __name__ == "__main__":
    main()
