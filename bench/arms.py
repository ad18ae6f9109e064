"""The arms and the interleaved rounds that measure them.

  1 httpx          raw HTTP straight to the mock: the floor
  2 direct         litellm.completion with the same parameters
  3 service        providers.services.completion, configuration in the database (hot)
    service-cold   its first call right after a configuration change (rebuild)
  4 gateway-Nw     this project's gateway over HTTP, N uvicorn workers (uvloop, httptools),
                   a token for all models, no limit, no metrics: the routing alone
    gateway-Nw-all-database, gateway-Nw-all-redis
                   every feature on: a token with a model allow-list and an rpm limit
                   (never reached) counted at every call, in the database or in a
                   redis-server of the bench's own; the request log; metrics (/metrics)
    gateway-1w-all-...-asyncio-h11
                   the same on uvicorn without uvloop and httptools
  5 litellm-proxy-Nw   LiteLLM's own proxy over HTTP, N workers

Every arm runs the same request body against the same mock. Arms 1-3 run in processes of
their own (their CPU and memory are theirs); arms 4-5 are loaded from this process over
loopback, and their CPU and memory are read from the servers' processes.

Streamed (`"stream": true`, one call at a time, bench/streaming.py): the floor (httpx to the
mock), every every-feature gateway and every proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import stats, streaming
from .driver import Driver
from .load import HttpLoad


@dataclass
class Arm:
    name: str
    number: int
    run: Callable[[float, int], dict]
    peak_rss: Callable[[], dict]
    blocks: dict[int, list[dict]] = field(default_factory=dict)
    # What to close after the run, for the arms that hold a client of their own.
    load: object = None

    def measure(self, seconds: float, concurrency: int) -> None:
        self.blocks.setdefault(concurrency, []).append(self.run(seconds, concurrency))


def driver_arm(name: str, number: int, driver: Driver) -> Arm:
    return Arm(
        name=name,
        number=number,
        run=lambda seconds, c: driver.ask(op="run", seconds=seconds, concurrency=c),
        peak_rss=lambda: driver.ask(op="rss"),
    )


def http_arm(name: str, number: int, load: HttpLoad) -> Arm:
    return Arm(name=name, number=number, run=load.run, peak_rss=load.server.peak_rss_mb)


def stream_arm(name: str, number: int, load: streaming.StreamLoad) -> Arm:
    return Arm(name=name, number=number, run=load.run, peak_rss=dict, load=load)


def stream_summary(arm: Arm) -> dict:
    return {"number": arm.number} | streaming.summary(arm.blocks[1])


def warm_up(arms: list[Arm], seconds: float, concurrency: int) -> None:
    for arm in arms:
        arm.run(seconds, 1)
        arm.run(seconds, concurrency)


def interleave(arms: list[Arm], *, rounds: int, seconds: float, concurrency: int) -> None:
    """`rounds` blocks of `seconds` per arm; each round starts with a different arm, so that
    no arm always follows the same neighbour or runs on a warmer (or busier) machine. Blocks
    are timed, not counted, so that a slow arm cannot stretch the run."""
    for number in range(rounds):
        shift = number % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            arm.measure(seconds, concurrency)


def summary(arm: Arm) -> dict:
    """Every figure of one arm, from all of its blocks."""
    result: dict = {"number": arm.number}
    for concurrency, blocks in sorted(arm.blocks.items()):
        samples = [s for block in blocks for s in block["samples"]]
        wall = sum(block["wall"] for block in blocks)
        cpu = sum(block["cpu"] for block in blocks)
        figures = stats.latency(samples) | {
            "throughput_rps": len(samples) / wall,
            "cpu_ms_per_request": cpu / len(samples) * 1000,
            # Per block, to show how noisy the machine was.
            "block_medians_ms": [stats.latency(b["samples"])["median_ms"] for b in blocks],
        }
        if "client_cpu" in blocks[0]:
            client = sum(block["client_cpu"] for block in blocks)
            figures["client_cpu_ms_per_request"] = client / len(samples) * 1000
        result[f"c{concurrency}"] = figures
    result |= arm.peak_rss()
    return result
