"""`python -m bench --profile [--calls N] [--profile-dir DIR]`: where one gateway call spends
its time, with ROUTING_GATEWAY_RELAY=0 (every call through LiteLLM: before) and =1 (after).

The gateway runs in a process of its own per setting, every feature on (the token with a
model allow-list and an rpm limit, counted in Redis where the bench can start one, else in
the database; the request log; metrics), against the bench's mock. Its ASGI application is
called in-process (httpx.ASGITransport: no HTTP server, so the profile is the gateway's own
code, LiteLLM's and the outbound call's), one call at a time on asyncio's own event loop
(uvloop's would hide its work in C), a warm-up, N calls timed without the profiler (wall and
CPU per call), then N calls under pyinstrument.

Writes, in DIR: profile-relay-0.txt and profile-relay-1.txt (pyinstrument's call tree), and
profile.md (the README's summary: time per call, and the top packages and frames by share of
the samples' own time).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from . import env, mock
from .driver import MARK
from .env import ROOT, die_with_parent
from .redis_server import RedisServer

WARMUP = 200
TOP = 12


def _package(path: str) -> str:
    """Who a frame belongs to: a library, a folder of this project, or Python's own."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith(str(ROOT)):
        return path[len(str(ROOT)) + 1 :].split("/", 1)[0] + " (this project)"
    if "/lib/python" in path:
        return "python: " + path.rsplit("/lib/python", 1)[1].split("/", 2)[1].removesuffix(".py")
    return path or "<unknown>"


def _self_times(frame, packages: Counter, frames: Counter, parent=("", "")) -> None:
    """pyinstrument keeps a frame's own time in synthetic children ("[self]"): add them up
    for the frame, by package and by function. A built-in (C) function counts for the
    package that called it."""
    parent_path, parent_package = parent
    own = frame.time - sum(child.time for child in frame.children)
    own += sum(child.time for child in frame.children if child.is_synthetic)
    path = frame.file_path or ""
    if parent_path.endswith("selectors.py"):
        # The event loop waiting for the mock or Redis: no CPU, and no one's cost.
        package = name = "(idle: the event loop waiting in select)"
    else:
        package = parent_package if path in ("", "<built-in>") else _package(path)
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
    if own > 0:
        packages[package] += own
        frames[name] += own
    for child in frame.children:
        if not child.is_synthetic:
            _self_times(child, packages, frames, (path, package))


async def _calls(client, n: int, body: bytes, headers: dict[str, str]) -> None:
    for _ in range(n):
        response = await client.post("/v1/chat/completions", content=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")


def child() -> None:
    """In the profiled process: `python -m bench.profile`."""
    import httpx
    from pyinstrument import Profiler

    config = json.loads(os.environ["BENCH_PROFILE"])
    from routing_admin.asgi import application

    body = json.dumps({"model": "default", "messages": env.MESSAGES}).encode()
    headers = {"authorization": f"Bearer {config['token']}", "content-type": "application/json"}
    n = config["calls"]

    async def run() -> tuple[dict, Profiler]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await _calls(client, WARMUP, body, headers)
            cpu0, t0 = time.process_time(), time.perf_counter()
            await _calls(client, n, body, headers)
            timed = {
                "wall_ms_per_call": (time.perf_counter() - t0) / n * 1000,
                "cpu_ms_per_call": (time.process_time() - cpu0) / n * 1000,
            }
            # Everything on this thread (LiteLLM's callbacks run as tasks of their own).
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            await _calls(client, n, body, headers)
            profiler.stop()
        return timed, profiler

    timed, profiler = asyncio.run(run())
    session = profiler.last_session
    packages, frames = Counter(), Counter()
    _self_times(session.root_frame(), packages, frames)
    total = sum(packages.values())
    Path(config["tree"]).write_text(profiler.output_text(time="percent_of_total"))
    answer = timed | {
        "calls": n,
        "samples": session.sample_count,
        "packages": [(name, t / total) for name, t in packages.most_common(TOP)],
        "frames": [(name, t / total) for name, t in frames.most_common(TOP)],
    }
    print(MARK + json.dumps(answer), flush=True)


def _profile(world: env.World, relay: str, calls: int, out: Path, redis_url: str) -> dict:
    metrics_dir = world.tmp / f"metrics-profile-{relay}"
    metrics_dir.mkdir(mode=0o700)
    tree = out / f"profile-relay-{relay}.txt"
    done = subprocess.run(
        [sys.executable, "-m", "bench.profile"],
        preexec_fn=die_with_parent,
        cwd=ROOT,
        env={
            **world.env,
            "ROUTING_GATEWAY_RELAY": relay,
            "ROUTING_PRELOAD_LITELLM": "0",
            "ROUTING_SERVE_STATIC": "0",
            "ROUTING_REDIS_URL": redis_url,
            "ROUTING_LIMITS_ON_REDIS_FAILURE": "closed",
            "ROUTING_METRICS_TOKEN": env.METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "BENCH_PROFILE": json.dumps(
                {"token": world.limited_token, "calls": calls, "tree": str(tree)}
            ),
        },
        capture_output=True,
        text=True,
        timeout=1800,
    )
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :]) | {"tree": tree.name}
    raise RuntimeError(f"profile with relay={relay} failed: {done.stderr[-2000:]}")


def summary(found: dict[str, dict], limits: str, machine: str) -> str:
    """profile.md: one column per relay setting."""
    settings = list(found)
    head = " | ".join(f"ROUTING_GATEWAY_RELAY={r}" for r in settings)
    lines = [
        "# One gateway call, profiled",
        "",
        f"`python -m bench --profile`: every feature on (limits in {limits}), "
        f"{found[settings[0]]['calls']} calls one at a time after a warm-up, in-process "
        f"(httpx.ASGITransport), pyinstrument. {machine}.",
        "",
        f"| per call | {head} |",
        "|" + " --- |" * (len(settings) + 1),
        "| wall ms (no profiler) | "
        + " | ".join(f"{found[r]['wall_ms_per_call']:.2f}" for r in settings)
        + " |",
        "| CPU ms (no profiler) | "
        + " | ".join(f"{found[r]['cpu_ms_per_call']:.2f}" for r in settings)
        + " |",
    ]
    titles = {
        "packages": "Top packages by share of own time (C functions count for their caller's):",
        "frames": "Top functions by share of own time:",
    }
    for key, title in titles.items():
        lines += ["", title, ""]
        for relay in settings:
            lines += [f"ROUTING_GATEWAY_RELAY={relay} ({found[relay]['tree']}):", ""]
            lines += [f"- {share:5.1%} `{name}`" for name, share in found[relay][key]]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(*, calls: int, out: Path) -> None:
    from . import report

    out.mkdir(parents=True, exist_ok=True)
    world = env.create_world()
    upstream = mock.start()
    redis = None
    try:
        env.configure(world, upstream.base_url)
        try:
            redis = RedisServer(world.tmp).start()
        except RuntimeError as exc:
            print(f"limits counted in the database: {exc}")
        url = redis.url if redis is not None else ""
        found = {relay: _profile(world, relay, calls, out, url) for relay in ("0", "1")}
    finally:
        if redis is not None:
            redis.stop()
        upstream.stop()
        world.cleanup()
    text = summary(
        found, "Redis" if redis is not None else "the database", report.machine()["description"]
    )
    (out / "profile.md").write_text(text)
    (out / "profile.json").write_text(json.dumps(found, indent=2))
    print(text)
    print(f"wrote {out / 'profile.md'}, profile.json and the call trees")


if __name__ == "__main__":
    child()
