"""What a run found: the machine, derived figures, the targets of issue 8, and the table
(plain text for stdout, Markdown for the README)."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path

FLOOR, DIRECT, SERVICE = "httpx", "direct", "service"
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


def _added(arms: dict, name: str) -> float:
    return arms[name]["c1"]["median_ms"] - arms[FLOOR]["c1"]["median_ms"]


def _gateway_targets(arms: dict, workers: int, derived: dict) -> list[dict]:
    gateway, proxy = f"gateway-{workers}w", f"litellm-proxy-{workers}w"
    if gateway not in arms or proxy not in arms:
        return []
    added = _added(arms, gateway) / _added(arms, proxy)
    rps = arms[gateway]["c16"]["throughput_rps"] / arms[proxy]["c16"]["throughput_rps"]
    derived["gateway_vs_proxy"][f"{workers}w"] = {
        "added_latency_ratio": added,
        "throughput_ratio": rps,
    }
    return [
        {
            "target": f"gateway added latency <= 0.5 x proxy's, {workers} worker(s), c=1",
            "value": round(added, 3),
            "met": added <= 0.5,
        },
        {
            "target": f"gateway throughput >= 2 x proxy's, {workers} worker(s), c=16",
            "value": round(rps, 2),
            "met": rps >= 2,
        },
    ]


LIMITED = "-rpm-"


def _limits_cost(arms: dict) -> dict:
    """Each limited gateway arm against the same gateway without a limit: what counting the
    token's requests per minute adds (in the database, or in Redis)."""
    found = {}
    for name, arm in arms.items():
        base = arms.get(name.split(LIMITED)[0]) if LIMITED in name else None
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
        "limits": _limits_cost(arms),
    }
    targets = [
        {
            "target": "service (3, hot) median <= 1.05 x direct LiteLLM (2)",
            "value": round(derived["service_over_direct"], 3),
            "met": derived["service_over_direct"] <= SERVICE_TARGET,
        }
    ]
    for workers in report["worker_counts"]:
        targets += _gateway_targets(arms, workers, derived)
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
    lines = [
        f"machine: {report['machine']['description']}; load average at start "
        f"{report['machine']['load_at_start'][0]}",
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
    for name, cost in report.get("derived", {}).get("limits", {}).items():
        base = name.split(LIMITED)[0]
        line = f"{name}: an rpm limit adds {cost['added_median_ms']:+.2f} ms at c=1 over {base}"
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
    for target in report["targets"]:
        verdict = "met" if target["met"] else "MISSED"
        lines.append(f"target {verdict:>6}: {target['target']}: {target['value']}")
    return lines


def markdown(report: dict) -> str:
    """The README's table: the same rows, in Markdown."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(report)]
    return "\n".join(lines)
