"""What a run found: the machine, derived figures, the targets (issue 8's service and
dashboard targets, issue 18's gateway targets, each with its verdict), and the tables (plain
text for stdout, Markdown for the README)."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path

from .verdicts import FEATURES, FLOOR, PLAIN, added, every_feature_arms, verdicts

DIRECT, SERVICE = "direct", "service"
PAGE_TARGET_MS = 100.0
SERVICE_TARGET = 1.05


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    cores = os.cpu_count()
    load = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": cores,
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "django": version("django"),
        "litellm": version("litellm"),
        "load_at_start": [round(x, 2) for x in load],
        "description": f"{cores} cores ({cpu}), {memory_kb / 2**20:.0f} GiB, Linux "
        f"{platform.release()}, Python {sys.version.split()[0]}, LiteLLM {version('litellm')}",
    }


def _gateway_ratios(arms: dict, workers: int, derived: dict) -> None:
    """The bare gateway against the proxy (no target: the verdicts use every feature on)."""
    gateway, proxy = f"gateway-{workers}w", f"litellm-proxy-{workers}w"
    if gateway not in arms or proxy not in arms:
        return
    derived["gateway_vs_proxy"][f"{workers}w"] = {
        "added_latency_ratio": added(arms, gateway) / added(arms, proxy),
        "throughput_ratio": arms[gateway]["c16"]["throughput_rps"]
        / arms[proxy]["c16"]["throughput_rps"],
    }


def _streaming(report: dict) -> dict:
    """What each streamed arm adds over the floor: to the first byte, and to every chunk."""
    streams = report.get("streaming", {}).get("arms", {})
    if FLOOR not in streams:
        return {}
    floor = streams[FLOOR]
    return {
        name: {
            "added_ttfb_ms": arm["ttfb_median_ms"] - floor["ttfb_median_ms"],
            "added_per_chunk_ms": arm["chunk_lag_median_ms"] - floor["chunk_lag_median_ms"],
        }
        for name, arm in streams.items()
        if name != FLOOR
    }


def _stack(arms: dict) -> dict:
    """uvicorn with uvloop and httptools against without, for the same every-feature arm."""
    found = {}
    for plain in (n for n in arms if n.endswith(PLAIN)):
        standard = arms.get(plain.removesuffix(PLAIN))
        if standard is None:
            continue
        p, s = arms[plain], standard
        found[plain.removesuffix(PLAIN)] = {
            "median_ms_saved": p["c1"]["median_ms"] - s["c1"]["median_ms"],
            "cpu_ms_per_request_saved": p["c16"]["cpu_ms_per_request"]
            - s["c16"]["cpu_ms_per_request"],
            "throughput_ratio": s["c16"]["throughput_rps"] / p["c16"]["throughput_rps"],
        }
    return found


def _features_cost(arms: dict) -> dict:
    """Each every-feature gateway arm against the same gateway with none: what the allow-list,
    the rpm limit (counted in the database, or in Redis) and metrics add."""
    found = {}
    for name, arm in arms.items():
        bare = FEATURES in name and not name.endswith(PLAIN)
        base = arms.get(name.split(FEATURES)[0]) if bare else None
        if base is None:
            continue
        figures = {"added_median_ms": arm["c1"]["median_ms"] - base["c1"]["median_ms"]}
        if "c16" in arm and "c16" in base:
            figures["throughput_ratio"] = (
                arm["c16"]["throughput_rps"] / base["c16"]["throughput_rps"]
            )
            figures["added_cpu_ms_per_request"] = (
                arm["c16"]["cpu_ms_per_request"] - base["c16"]["cpu_ms_per_request"]
            )
        found[name] = figures
    return found


def derive(report: dict) -> None:
    """Overheads, ratios and targets, written into the report."""
    arms = report["arms"]
    floor = arms[FLOOR]["c1"]["median_ms"]
    derived = {
        "added_median_ms_over_floor": {n: a["c1"]["median_ms"] - floor for n, a in arms.items()},
        "service_over_direct": arms[SERVICE]["c1"]["median_ms"] / arms[DIRECT]["c1"]["median_ms"],
        "gateway_vs_proxy": {},
        "features": _features_cost(arms),
        "streaming": _streaming(report),
        "uvicorn_standard": _stack(arms),
    }
    targets = [
        {
            "target": "service (3, hot) median <= 1.05 x direct LiteLLM (2)",
            "value": round(derived["service_over_direct"], 3),
            "met": derived["service_over_direct"] <= SERVICE_TARGET,
        }
    ]
    for workers in report["worker_counts"]:
        _gateway_ratios(arms, workers, derived)
    targets += verdicts(report)
    for name, page in report.get("dashboard", {}).get("pages", {}).items():
        targets.append(
            {
                "target": f"dashboard {name}: median < {PAGE_TARGET_MS:g} ms, fixed queries",
                "value": f"{page['median_ms']:.1f} ms, {page['queries']} queries "
                f"({page['queries_small']} at a tenth of the rows)",
                "met": page["median_ms"] < PAGE_TARGET_MS and page["fixed_queries"],
            }
        )
    report["derived"], report["targets"] = derived, targets


COLUMNS = (
    "arm",
    "median ms",
    "p90 ms",
    "p99 ms",
    "+ms vs 1",
    "c16 req/s",
    "c16 p99 ms",
    "CPU ms/req",
    "peak RSS MB",
)


def rows(report: dict) -> list[list[str]]:
    added = report["derived"]["added_median_ms_over_floor"]
    found = []
    for name, arm in report["arms"].items():
        c1, c16 = arm["c1"], arm.get("c16")
        cpu = c16 or c1
        found.append(
            [
                f"{arm['number']} {name}",
                f"{c1['median_ms']:.2f}",
                f"{c1['p90_ms']:.2f}",
                f"{c1['p99_ms']:.2f}",
                f"{added[name]:+.2f}",
                f"{c16['throughput_rps']:.0f}" if c16 else "-",
                f"{c16['p99_ms']:.1f}" if c16 else "-",
                f"{cpu['cpu_ms_per_request']:.2f}" if "cpu_ms_per_request" in cpu else "-",
                f"{arm['peak_rss_mb']:.0f}" if "peak_rss_mb" in arm else "-",
            ]
        )
    return found


def text(report: dict) -> str:
    table = [list(COLUMNS), *rows(report)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    machine = report["machine"]
    at_end = machine.get("load_at_end")
    lines = [
        f"machine: {machine['description']}; load average (1 min) at start "
        f"{machine['load_at_start'][0]}" + (f", at end {at_end[0]}" if at_end else ""),
        f"mock upstream (own process): {report['mock']['client_rps']:.0f} req/s to one "
        f"keep-alive client, {report['mock']['mock_cpu_ms_per_request']:.3f} ms CPU per "
        f"request (capacity about {report['mock']['mock_capacity_rps']:,.0f} req/s)",
        "",
    ]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    lines += ["", *_notes(report)]
    return "\n".join(lines)


def _notes(report: dict) -> list[str]:
    lines = []
    if report.get("quick"):
        lines.append("quick run: fewer samples and a smaller dashboard; targets are for full runs")
    proxy = report["proxy"]
    if proxy["status"] != "ran":
        lines.append(f"arm 5 (LiteLLM proxy) skipped: {proxy['reason']}")
    for name, page in report.get("dashboard", {}).get("pages", {}).items():
        lines.append(
            f"dashboard {name:<10} median {page['median_ms']:7.1f} ms, "
            f"{page['queries']:3d} queries ({page['queries_small']} at a tenth of the rows), "
            f"peak {page['peak_alloc_mb']:.1f} MB allocated"
        )
    if "dashboard" in report:
        size = report["dashboard"]["size"]
        lines.append(
            f"  at {size['providers']:,} providers, {size['groups']:,} groups, "
            f"{size['rows']:,} request-log rows"
        )
    limits = report.get("limits", {})
    if limits.get("redis", {}).get("status") == "skipped":
        lines.append(f"gateway with limits in Redis skipped: {limits['redis']['reason']}")
    featured = every_feature_arms(report["arms"])
    if featured:
        lines.append(
            f"every feature on (the verdicts' arms): {', '.join(featured)}: a token allowed "
            f"{', '.join(limits.get('allowed_models', []))} with an rpm limit counted at "
            "every call, the request log, metrics"
        )
    for name, cost in report.get("derived", {}).get("features", {}).items():
        base = name.split(FEATURES)[0]
        line = f"{name}: every feature adds {cost['added_median_ms']:+.2f} ms at c=1 over {base}"
        if "throughput_ratio" in cost:
            line += (
                f", {cost['added_cpu_ms_per_request']:+.2f} ms CPU per request and "
                f"{cost['throughput_ratio']:.2f} x its throughput at c=16"
            )
        lines.append(line)
    for prop in report.get("propagation", []):
        lines.append(
            f"switch reached all {prop['workers_reached']} of {prop['workers']} gateway workers "
            f"in {prop['median_ms']:.1f} ms median, {prop['max_ms']:.1f} ms max "
            f"({prop['switches']} switches)"
        )
    lines += _stream_lines(report)
    for name, saved in report.get("derived", {}).get("uvicorn_standard", {}).items():
        lines.append(
            f"{name}: uvloop+httptools save {saved['median_ms_saved']:+.2f} ms at c=1 and "
            f"{saved['cpu_ms_per_request_saved']:+.2f} ms CPU per request, "
            f"{saved['throughput_ratio']:.2f} x the throughput of asyncio+h11 at c=16"
        )
    relay = report.get("relay")
    if relay is not None:
        lines.append(f"gateway arms ran with ROUTING_GATEWAY_RELAY={relay}")
    for target in report["targets"]:
        verdict = _verdict_word(target["met"])
        arm = f" [{target['arm']}]" if "arm" in target else ""
        figures = f" ({target['figures']})" if target.get("figures") else ""
        lines.append(f"target {verdict:>12}: {target['target']}{arm}: {_value(target)}{figures}")
    return lines


def _verdict_word(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "MISSED"


def _stream_lines(report: dict) -> list[str]:
    streaming = report.get("streaming")
    if not streaming:
        return []
    added = report.get("derived", {}).get("streaming", {})
    lines = [
        f"streamed, {streaming['chunks']} chunks {streaming['chunk_delay_ms']:g} ms apart, "
        "one call at a time (TTFB: time to first byte; lag: mock to client, per chunk):"
    ]
    for name, arm in streaming["arms"].items():
        line = (
            f"  {arm['number']} {name:<28} TTFB {arm['ttfb_median_ms']:6.2f} ms "
            f"(p90 {arm['ttfb_p90_ms']:6.2f}), lag per chunk {arm['chunk_lag_median_ms']:5.2f} "
            f"ms, whole stream {arm['total_median_ms']:6.1f} ms, CPU {arm['cpu_ms_per_call']:.2f} "
            "ms per call"
        )
        if name in added:
            line += (
                f"; adds {added[name]['added_ttfb_ms']:+.2f} ms TTFB, "
                f"{added[name]['added_per_chunk_ms']:+.2f} ms per chunk"
            )
        lines.append(line)
    return lines


def _table(columns, body) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """The README's table: the same rows, in Markdown."""
    return _table(COLUMNS, rows(report))


def _value(target: dict) -> str:
    value = target["value"]
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def verdicts_markdown(report: dict) -> str:
    """The README's verdict table: every target of the run, its arm, figures and verdict."""
    body = [
        [
            target["target"],
            f"`{target['arm']}` vs `{target['against']}`" if "arm" in target else "-",
            _value(target),
            target.get("figures", ""),
            f"**{_verdict_word(target['met'])}**",
        ]
        for target in report["targets"]
    ]
    return _table(("target", "arm", "value", "figures", "verdict"), body)
