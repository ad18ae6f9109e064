"""`uv run python -m bench [--quick] [--json FILE] [--with-litellm-proxy] [--relay 0|1]`: what
the routing layer costs per call, against a local mock upstream, and the dashboard at scale.
`python -m bench --profile` profiles gateway calls instead (bench/profile.py).

Everything runs on 127.0.0.1 in a temporary directory with its own database and keys (the
project's db.sqlite3 and .env are never touched). See bench/arms.py for the arms.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from . import arms as arms_module
from . import chart, env, mock, propagation, report, servers, streaming
from .driver import MARK, Driver
from .env import die_with_parent
from .load import HttpLoad, own_cpu
from .redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results"
WORKER_COUNTS = (1, 2)
# uvicorn without uvloop and httptools: one every-feature gateway at this many workers.
PLAIN_STACK_WORKERS = 1
CONCURRENCY = 16
FULL = {
    "mock_seconds": 2.0,
    "warmup_s": 0.6,
    "c1": (10, 0.6),  # rounds, seconds per arm and round
    "c16": (8, 0.8),
    "stream": (6, 0.6),
    "cold": 30,
    "switches": 10,
    "dashboard": {"providers": 1000, "groups": 100, "rows": 1_000_000},
    "page_repeats": 10,
}
QUICK = {
    "mock_seconds": 0.5,
    "warmup_s": 0.3,
    "c1": (3, 0.25),
    "c16": (3, 0.3),
    "stream": (2, 0.3),
    "cold": 10,
    "switches": 4,
    "dashboard": {"providers": 100, "groups": 10, "rows": 20_000},
    "page_repeats": 5,
}


def _start_servers(
    world: env.World, proxy_python: Path | None, redis: RedisServer | None, relay: str
) -> list[servers.Server]:
    """The bare gateways (a token for all models, no limit, no metrics), the every-feature
    ones (limits in the database, and in Redis when it runs), one every-feature gateway on
    uvicorn without uvloop and httptools, and LiteLLM's proxy when asked for."""
    backends = {"database": ""} | ({"redis": redis.url} if redis is not None else {})
    started = [servers.start_gateway(world, w, relay=relay) for w in WORKER_COUNTS]
    for workers in WORKER_COUNTS:
        for limits, url in backends.items():
            started.append(
                servers.start_gateway(world, workers, limits=limits, redis_url=url, relay=relay)
            )
    limits, url = list(backends.items())[-1]
    started.append(
        servers.start_gateway(
            world, PLAIN_STACK_WORKERS, limits=limits, redis_url=url, stack="plain", relay=relay
        )
    )
    if proxy_python is not None:
        started += [servers.start_proxy(world, proxy_python, w) for w in WORKER_COUNTS]
    return started


def _body(stream: bool = False) -> bytes:
    body = {"model": "default", "messages": env.MESSAGES} | ({"stream": True} if stream else {})
    return json.dumps(body).encode()


def _proxy(args: argparse.Namespace) -> tuple[Path | None, dict]:
    if not args.with_litellm_proxy:
        return None, {"status": "skipped", "reason": "not asked for (--with-litellm-proxy)"}
    wanted = report.machine()["litellm"]
    t0 = time.perf_counter()
    python, reason = servers.install_proxy(wanted)
    if python is None:
        return None, {"status": "skipped", "reason": f"could not be installed: {reason}"}
    return python, {
        "status": "ran",
        "version": wanted,
        "install_s": time.perf_counter() - t0,
        "reason": "",
    }


def _redis(world: env.World) -> tuple[RedisServer | None, dict]:
    """A redis-server of the run's own, in its temporary directory; why not, when not."""
    try:
        server = RedisServer(world.tmp).start()
    except RuntimeError as exc:
        return None, {"status": "skipped", "reason": str(exc)}
    return server, {"status": "ran", "reason": ""}


def _wait_ready(running: list[servers.Server], body: bytes, result: dict) -> None:
    """Every gateway must start; arm 5 is measured whole or not at all, its reason noted."""
    deadline = time.monotonic() + 300
    for server in list(running):
        if server not in running:
            continue
        problem = servers.wait_ready(server, body, deadline)
        if problem and server.name.startswith("gateway"):
            raise RuntimeError(f"{server.name} did not start: {problem}")
        if problem:
            result["proxy"] = {"status": "skipped", "reason": f"{server.name}: {problem}"}
            for proxy in [s for s in running if not s.name.startswith("gateway")]:
                proxy.stop()
                running.remove(proxy)


def _stream_arms(world: env.World, running: list[servers.Server]) -> list[arms_module.Arm]:
    """The floor (httpx straight to the mock), then every every-feature gateway on the
    standard stack and every proxy, streamed."""
    body = _body(stream=True)
    floor = streaming.StreamLoad(
        world.mock_url + "/v1/chat/completions",
        {"authorization": "Bearer x", "content-type": "application/json"},
        body,
        own_cpu,
    )
    found = [arms_module.stream_arm("httpx", 1, floor)]
    for server in running:
        gateway = server.name.startswith("gateway")
        if gateway and (not server.limits or server.name.endswith(servers.PLAIN_SUFFIX)):
            continue
        load = streaming.StreamLoad(
            server.base_url + "/v1/chat/completions", server.headers, body, server.cpu_seconds
        )
        found.append(arms_module.stream_arm(server.name, 4 if gateway else 5, load))
    return found


def measure_arms(world: env.World, plan: dict, result: dict, proxy_python: Path | None) -> None:
    body = _body()
    config = {"mock_url": world.mock_url, "params": world.params}
    drivers = {name: Driver(name, world.env, config) for name in ("httpx", "direct", "service")}
    redis, redis_status = _redis(world)
    result["limits"] = {
        "rpm": env.LIMITED_RPM,
        "allowed_models": env.ALLOWED_MODELS,
        "redis": redis_status,
    }
    running = _start_servers(world, proxy_python, redis, result["relay"])
    loads: list = []
    try:
        _wait_ready(running, body, result)
        arms = [
            arms_module.driver_arm("httpx", 1, drivers["httpx"]),
            arms_module.driver_arm("direct", 2, drivers["direct"]),
            arms_module.driver_arm("service", 3, drivers["service"]),
        ]
        for server in running:
            loads.append(HttpLoad(server, body, CONCURRENCY))
            number = 4 if server.name.startswith("gateway") else 5
            arms.append(arms_module.http_arm(server.name, number, loads[-1]))
        stream_arms = _stream_arms(world, running)
        loads += [arm.load for arm in stream_arms]
        arms_module.warm_up(arms, plan["warmup_s"], CONCURRENCY)
        arms_module.warm_up(stream_arms, plan["warmup_s"], 1)
        for concurrency in (1, CONCURRENCY):
            rounds, seconds = plan[f"c{concurrency}"]
            arms_module.interleave(arms, rounds=rounds, seconds=seconds, concurrency=concurrency)
        rounds, seconds = plan["stream"]
        arms_module.interleave(stream_arms, rounds=rounds, seconds=seconds, concurrency=1)
        summaries = {arm.name: arms_module.summary(arm) for arm in arms}
        cold = drivers["service"].ask(op="cold", n=plan["cold"])["samples"]
        summaries["service-cold"] = {"number": 3, "c1": arms_module.stats.latency(cold)}
        order = ["httpx", "direct", "service", "service-cold"]
        result["arms"] = {name: summaries[name] for name in order} | {
            name: s for name, s in summaries.items() if name not in order
        }
        result["streaming"] = {
            "chunks": mock.CHUNKS,
            "chunk_delay_ms": mock.CHUNK_DELAY_MS,
            "arms": {arm.name: arms_module.stream_summary(arm) for arm in stream_arms},
        }
        result["propagation"] = [
            propagation.measure(server, body, plan["switches"])
            for server in running
            if server.name.startswith("gateway") and not server.limits
        ]
    finally:
        for load in loads:
            load.close()
        for server in running:
            server.stop()
        for driver in drivers.values():
            driver.stop()
        if redis is not None:
            redis.stop()


def measure_dashboard(plan: dict) -> dict:
    """In a process of its own, on a database of its own."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="routing-bench-dashboard-") as tmp:
        child_env = env.make_env(Path(tmp), f"sqlite:///{Path(tmp) / 'dashboard.sqlite3'}")
        child_env["BENCH_DASHBOARD"] = json.dumps(
            {"size": plan["dashboard"], "repeats": plan["page_repeats"]}
        )
        done = subprocess.run(
            [sys.executable, "-m", "bench.dashboard"],
            preexec_fn=die_with_parent,
            cwd=env.ROOT,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"dashboard measurement failed: {done.stderr[-2000:]}")


def run(args: argparse.Namespace) -> dict:
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    result: dict = {
        "quick": args.quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "worker_counts": list(WORKER_COUNTS),
        "concurrency": CONCURRENCY,
        "relay": args.relay,
        "plan": plan,
    }
    proxy_python, result["proxy"] = _proxy(args)
    world = env.create_world()
    upstream = mock.start()
    try:
        # Before anything else runs: nothing competes with the mock for the CPU here.
        result["mock"] = mock.throughput(upstream, plan["mock_seconds"])
        env.configure(world, upstream.base_url)
        measure_arms(world, plan, result, proxy_python)
    finally:
        upstream.stop()
        world.cleanup()
    if not args.no_dashboard:
        result["dashboard"] = measure_dashboard(plan)
    result["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["duration_s"] = time.perf_counter() - started
    report.derive(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="What the routing layer costs per call, and the dashboard at scale.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls and a smaller dashboard")
    parser.add_argument(
        "--json", metavar="FILE", default=str(RESULTS / "latest.json"), help="every figure"
    )
    parser.add_argument(
        "--svg", metavar="FILE", default=str(RESULTS / "latency.svg"), help="the chart"
    )
    parser.add_argument(
        "--with-litellm-proxy",
        action="store_true",
        help="install LiteLLM's proxy into .bench/litellm-proxy and measure it too",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="skip the dashboard pages")
    parser.add_argument(
        "--relay",
        choices=("0", "1"),
        default="1",
        help="ROUTING_GATEWAY_RELAY for every gateway arm (0: every call through LiteLLM)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: profile gateway calls with relay off and on (bench/profile.py)",
    )
    parser.add_argument("--calls", type=int, default=2000, help="--profile: calls profiled")
    parser.add_argument("--profile-dir", default=str(RESULTS), help="--profile: where its files go")
    args = parser.parse_args()
    if args.profile:
        from . import profile

        profile.main(calls=args.calls, out=Path(args.profile_dir))
        return
    result = run(args)
    print(report.text(result))
    verdicts = Path(args.json).with_suffix(".verdicts.md")
    for path, content in (
        (args.json, json.dumps(result, indent=2)),
        (args.svg, chart.render(result)),
        (verdicts, report.verdicts_markdown(result) + "\n"),
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content)
    print(f"\nwrote {args.json}, {args.svg} and {verdicts} in {result['duration_s']:.0f} s")


if __name__ == "__main__":
    main()
