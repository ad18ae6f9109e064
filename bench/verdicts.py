"""Issue 18's targets and their verdicts: for each gateway arm with every feature on, against
the same run's LiteLLM proxy at the same worker count (and arm 1, the floor)."""

from __future__ import annotations

FLOOR = "httpx"


def added(arms: dict, name: str) -> float:
    """Milliseconds over arm 1 at concurrency 1, medians."""
    return arms[name]["c1"]["median_ms"] - arms[FLOOR]["c1"]["median_ms"]


FEATURES = "-all-"
PLAIN = "-asyncio-h11"
# Issue 18's targets.
ADDED_LATENCY_RATIO = 0.25
THROUGHPUT_RATIO = 4.0
CPU_OVER_FLOOR_MS = 1.5
TTFB_RATIO = 0.25


def every_feature_arms(arms: dict) -> list[str]:
    """The gateway arms with every feature on, on uvicorn's standard stack: limits in Redis
    first (the headline, where Redis ran), then in the database."""
    found = [n for n in arms if FEATURES in n and not n.endswith(PLAIN)]
    return sorted(found, key=lambda n: (not n.endswith("-redis"), n))


def _workers(name: str) -> int:
    return int(name.split("-")[1].rstrip("w"))


def _verdict(target: str, arm: str, against: str, value, limit: float, figures: str, met):
    return {
        "target": target,
        "issue": 18,
        "arm": arm,
        "against": against,
        "value": None if value is None else round(value, 3),
        "limit": limit,
        "figures": figures,
        "met": met,
    }


def _missing(target: str, arm: str, against: str, limit: float) -> dict:
    return _verdict(target, arm, against, None, limit, f"not measured: no {against} arm", None)


def _latency_verdicts(arms: dict, name: str) -> list[dict]:
    proxy = f"litellm-proxy-{_workers(name)}w"
    latency = f"added latency at c=1 <= {ADDED_LATENCY_RATIO:g} x proxy's"
    throughput = f"throughput at c=16 >= {THROUGHPUT_RATIO:g} x proxy's"
    if proxy not in arms:
        return [
            _missing(latency, name, proxy, ADDED_LATENCY_RATIO),
            _missing(throughput, name, proxy, THROUGHPUT_RATIO),
        ]
    ours, theirs = added(arms, name), added(arms, proxy)
    ratio = ours / theirs
    rps, proxy_rps = arms[name]["c16"]["throughput_rps"], arms[proxy]["c16"]["throughput_rps"]
    return [
        _verdict(
            latency,
            name,
            proxy,
            ratio,
            ADDED_LATENCY_RATIO,
            f"+{ours:.2f} ms vs +{theirs:.2f} ms over arm 1",
            ratio <= ADDED_LATENCY_RATIO,
        ),
        _verdict(
            throughput,
            name,
            proxy,
            rps / proxy_rps,
            THROUGHPUT_RATIO,
            f"{rps:.0f} vs {proxy_rps:.0f} req/s",
            rps / proxy_rps >= THROUGHPUT_RATIO,
        ),
    ]


def _cpu_verdict(arms: dict, name: str) -> dict:
    ours, floor = arms[name]["c16"]["cpu_ms_per_request"], arms[FLOOR]["c16"]["cpu_ms_per_request"]
    return _verdict(
        f"CPU per call at c=16 <= arm 1's + {CPU_OVER_FLOOR_MS:g} ms",
        name,
        FLOOR,
        ours - floor,
        CPU_OVER_FLOOR_MS,
        f"{ours:.2f} vs {floor:.2f} ms",
        ours - floor <= CPU_OVER_FLOOR_MS,
    )


def _ttfb_verdict(streams: dict, name: str) -> dict:
    proxy = f"litellm-proxy-{_workers(name)}w"
    target = f"streamed: added time to first byte <= {TTFB_RATIO:g} x proxy's"
    if name not in streams:
        return _missing(target, name, f"streamed {name}", TTFB_RATIO)
    if proxy not in streams:
        return _missing(target, name, proxy, TTFB_RATIO)
    floor = streams[FLOOR]["ttfb_median_ms"]
    ours = streams[name]["ttfb_median_ms"] - floor
    theirs = streams[proxy]["ttfb_median_ms"] - floor
    return _verdict(
        target,
        name,
        proxy,
        ours / theirs,
        TTFB_RATIO,
        f"+{ours:.2f} ms vs +{theirs:.2f} ms over arm 1",
        ours / theirs <= TTFB_RATIO,
    )


def verdicts(report: dict) -> list[dict]:
    """Issue 18's targets, for each every-feature gateway arm against the same run's proxy
    at the same worker count (and arm 1)."""
    arms, found = report["arms"], []
    streams = report.get("streaming", {}).get("arms", {})
    for name in every_feature_arms(arms):
        found += _latency_verdicts(arms, name)
        found.append(_cpu_verdict(arms, name))
        found.append(_ttfb_verdict(streams, name))
    return found
