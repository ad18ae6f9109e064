"""Streamed chat completions (`"stream": true`), one at a time: time to first byte, and how
long each chunk took from the mock to here.

The mock stamps each chunk's content with the time.monotonic() it wrote it at (bench/mock.py),
so a chunk's lag is its arrival here minus that stamp: what the path in between (nothing for
the floor, the gateway or LiteLLM's proxy) adds to every chunk, measured on one clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from statistics import median

import httpx

from . import stats


def _stamp(line: bytes) -> float | None:
    """The mock's stamp in one SSE line, if it carries one."""
    if not line.startswith(b"data:"):
        return None
    data = line[5:].strip()
    if data == b"[DONE]":
        return None
    try:
        choices = json.loads(data).get("choices") or [{}]
        content = (choices[0].get("delta") or {}).get("content") or ""
        return float(content)
    except (ValueError, AttributeError, TypeError):
        return None


class StreamLoad:
    """One keep-alive client, one streamed call at a time, for the whole run."""

    def __init__(
        self, url: str, headers: dict[str, str], body: bytes, cpu: Callable[[], float]
    ) -> None:
        self.url, self.headers, self.body, self.cpu = url, headers, body, cpu
        self.client = httpx.Client(timeout=60)

    def call(self) -> dict:
        lags, ttfb, buffer = [], None, b""
        t0 = time.monotonic()
        with self.client.stream("POST", self.url, content=self.body, headers=self.headers) as r:
            if r.status_code != 200:
                r.read()
                raise RuntimeError(f"{self.url}: HTTP {r.status_code} {r.text[:300]}")
            for piece in r.iter_raw():
                now = time.monotonic()
                if ttfb is None and piece:
                    ttfb = now - t0
                buffer += piece
                *lines, buffer = buffer.split(b"\n")
                lags += [now - s for line in lines if (s := _stamp(line.strip())) is not None]
        done = time.monotonic() - t0
        if not lags:
            raise RuntimeError(f"{self.url}: a stream without the mock's stamped chunks")
        return {"ttfb": ttfb, "total": done, "lags": lags}

    def run(self, seconds: float, concurrency: int = 1) -> dict:
        """Streamed calls for `seconds`, one at a time (`concurrency` is not used)."""
        cpu0, started = self.cpu(), time.perf_counter()
        deadline = started + seconds
        calls = []
        while time.perf_counter() < deadline or not calls:
            calls.append(self.call())
        return {
            "calls": calls,
            "wall": time.perf_counter() - started,
            "cpu": self.cpu() - cpu0,
        }

    def close(self) -> None:
        self.client.close()


def summary(blocks: list[dict]) -> dict:
    """An arm's figures over its blocks: milliseconds, like every other figure."""
    calls = [c for block in blocks for c in block["calls"]]
    lags = [lag for c in calls for lag in c["lags"]]
    ttfb = stats.latency([c["ttfb"] for c in calls])
    return {
        "n": len(calls),
        "chunks_per_call": median(len(c["lags"]) for c in calls),
        "ttfb_median_ms": ttfb["median_ms"],
        "ttfb_p90_ms": ttfb["p90_ms"],
        "ttfb_p99_ms": ttfb["p99_ms"],
        "total_median_ms": median(c["total"] for c in calls) * 1000,
        "chunk_lag_median_ms": median(lags) * 1000,
        "chunk_lag_p90_ms": stats.percentile(lags, 0.90) * 1000,
        "cpu_ms_per_call": sum(b["cpu"] for b in blocks) / len(calls) * 1000,
    }
