"""`uv run python -m bench [--quick] [--json FILE]`: what the routing layer costs per call.

Arms, interleaved in rounds after warm-up, against the same local mock and request:
  httpx     raw HTTP straight to the mock (the floor)
  direct    litellm.completion with the same parameters the service layer would build
  service   providers.services.completion with the configuration in the database (hot)
  cold      the first service call right after a configuration change (rebuild)
Target (issue 2): service median at most 5% above direct.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

MESSAGES = [{"role": "user", "content": "hi"}]


def _setup_django(tmp: Path) -> None:
    from cryptography.fernet import Fernet

    os.environ.update(
        SECRET_KEY="bench-only-" + Fernet.generate_key().decode(),
        ROUTING_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        ROUTING_ALLOWED_PRIVATE_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="routing_admin.settings",
        LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(samples: list[float], cpu: float) -> dict:
    return {
        "n": len(samples),
        "median_ms": statistics.median(samples) * 1000,
        "p90_ms": _percentile(samples, 0.90) * 1000,
        "p99_ms": _percentile(samples, 0.99) * 1000,
        "cpu_ms_per_call": cpu / len(samples) * 1000,
    }


def run(quick: bool) -> dict:
    from bench.mock import MockUpstream, direct_throughput

    tmp = Path(tempfile.mkdtemp(prefix="routing-bench-"))
    _setup_django(tmp)
    import httpx

    from providers import live, services
    from providers.llm import litellm

    mock = MockUpstream()
    # Measured before any LiteLLM call: its background threads would slow this loop down.
    mock_rps = direct_throughput(mock.base_url, 0.5 if quick else 2.0)
    provider = services.provider_create(
        name="bench",
        kind="openai",
        base_url=mock.base_url + "/v1",
        api_key="sk-fake-bench-key-0000000",
        actor="bench",
    )
    services.default_model_set(provider=provider, model="bench-model", actor="bench")
    params = live.snapshot().resolve(None).params
    client = httpx.Client()
    body = json.dumps({"model": "bench-model", "messages": MESSAGES}).encode()

    arms = {
        "httpx": lambda: client.post(
            mock.base_url + "/v1/chat/completions",
            content=body,
            headers={"authorization": "Bearer x", "content-type": "application/json"},
        ),
        "direct": lambda: litellm().completion(messages=MESSAGES, **params),
        "service": lambda: services.completion(MESSAGES),
    }
    rounds, per_round, warmup = (6, 40, 50) if quick else (20, 100, 200)
    for _ in range(warmup):
        for call in arms.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in arms}
    cpu: dict[str, float] = dict.fromkeys(arms, 0.0)
    names = list(arms)
    for round_number in range(rounds):
        # Alternate the order so neither arm always runs on a warmer cache.
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            call = arms[name]
            c0 = time.process_time()
            for _ in range(per_round):
                t0 = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0

    cold: list[float] = []
    for i in range(10 if quick else 30):
        services.provider_update(provider=provider, timeout=30 + i, actor="bench")
        t0 = time.perf_counter()
        services.completion(MESSAGES)
        cold.append(time.perf_counter() - t0)

    results = {name: _summary(samples[name], cpu[name]) for name in arms}
    results["cold"] = _summary(cold, 0.0) | {"cpu_ms_per_call": None}
    ratio = results["service"]["median_ms"] / results["direct"]["median_ms"]
    return {
        "machine": {
            "cores": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": sys.platform,
        },
        "mock_direct_rps": mock_rps,
        "arms": results,
        "service_over_direct": ratio,
        "target_service_over_direct": 1.05,
        "target_met": ratio <= 1.05,
    }


def _print(report: dict) -> None:
    print(f"mock upstream, one keep-alive client: {report['mock_direct_rps']:.0f} req/s")
    print(f"{'arm':<9}{'median ms':>11}{'p90 ms':>9}{'p99 ms':>9}{'cpu ms/call':>13}")
    for name, r in report["arms"].items():
        cpu = "-" if r["cpu_ms_per_call"] is None else f"{r['cpu_ms_per_call']:.3f}"
        print(f"{name:<9}{r['median_ms']:>11.3f}{r['p90_ms']:>9.3f}{r['p99_ms']:>9.3f}{cpu:>13}")
    verdict = "met" if report["target_met"] else "MISSED"
    print(
        f"service / direct median: {report['service_over_direct']:.3f} "
        f"(target <= {report['target_service_over_direct']}: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under a minute)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = parser.parse_args()
    report = run(args.quick)
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
