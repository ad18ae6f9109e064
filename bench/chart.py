"""The chart of a report, as hand-written SVG (no plotting library): latency by arm at
concurrency 1 (median, p90, p99), throughput by arm at concurrency 16, and, when the run
streamed, time to first byte and lag per chunk by streamed arm."""

from __future__ import annotations

import math
from html import escape

WIDTH = 860
LABEL = 235  # room for the arm names, left of the bars
BAR, GAP = 9, 10
PLOT = WIDTH - LABEL - 110  # room after the longest bar for its value
LATENCY = (
    ("median_ms", "median", "#9db4ee"),
    ("p90_ms", "p90", "#4d72d8"),
    ("p99_ms", "p99", "#1d3a8f"),
)
THROUGHPUT_COLOUR = "#2f7d4f"
STREAMED = (
    ("ttfb_median_ms", "first byte", "#d9822b"),
    ("chunk_lag_median_ms", "lag per chunk", "#8a4b0f"),
)


def _scale(top: float) -> float:
    """A round axis maximum at or above `top`: 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(top))
    return next(power * f for f in (1, 2, 5, 10) if power * f >= top)


def _text(x: float, y: float, body: str, *, anchor: str = "start", size: int = 12, weight=""):
    bold = ' font-weight="bold"' if weight else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{bold}>'
        f"{escape(body)}</text>"
    )


def _panel(rows, series, title: str, unit: str, top: float) -> tuple[list[str], float]:
    """One panel at y=0: a title, an axis and one group of bars per row."""
    top = _scale(top)
    parts = [_text(0, 16, title, size=14, weight="bold")]
    y = 30.0
    for name, values in rows:
        group = len(series) * (BAR + 2)
        parts.append(_text(LABEL - 8, y + group / 2 + 4, name, anchor="end"))
        for (key, _, colour), value in zip(series, values, strict=True):
            if value is None:
                parts.append(_text(LABEL + 4, y + BAR - 1, "not measured", size=10))
            else:
                width = max(PLOT * value / top, 1)
                parts.append(
                    f'<rect x="{LABEL}" y="{y:.1f}" width="{width:.1f}" height="{BAR}" '
                    f'fill="{colour}"><title>{escape(name)} {key}: {value:.2f} {unit}'
                    "</title></rect>"
                )
                label = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
                parts.append(_text(LABEL + width + 4, y + BAR - 1, label, size=10))
            y += BAR + 2
        y += GAP
    for i in range(5):
        x = LABEL + PLOT * i / 4
        parts.append(f'<line x1="{x:.1f}" y1="26" x2="{x:.1f}" y2="{y - GAP:.1f}" stroke="#ddd"/>')
        parts.append(_text(x, y + 6, f"{top * i / 4:g}", anchor="middle", size=10))
    parts.append(_text(LABEL + PLOT / 2, y + 22, unit, anchor="middle", size=11))
    return parts, y + 34


def _legend(series, y: float) -> list[str]:
    parts, x = [], LABEL
    for _, label, colour in series:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(_text(x + 16, y + 10, label, size=11))
        x += 80
    return parts


def render(report: dict) -> str:
    arms = report["arms"]
    latency_rows = [
        (f"{arm['number']} {name}", [arm["c1"][key] for key, _, _ in LATENCY])
        for name, arm in arms.items()
    ]
    top = max(v for _, values in latency_rows for v in values)
    latency, height = _panel(latency_rows, LATENCY, "Latency at concurrency 1", "ms", top)
    legend = _legend(LATENCY, height - 8)
    height += 14
    throughput_series = (("throughput_rps", "req/s", THROUGHPUT_COLOUR),)
    throughput_rows = [
        (f"{arm['number']} {name}", [arm["c16"]["throughput_rps"] if "c16" in arm else None])
        for name, arm in arms.items()
    ]
    top = max(v[0] for _, v in throughput_rows if v[0] is not None)
    throughput, extra = _panel(
        throughput_rows, throughput_series, "Throughput at concurrency 16", "requests/s", top
    )
    body = [
        *latency,
        *legend,
        f'<g transform="translate(0,{height + 10:.1f})">',
        *throughput,
        "</g>",
    ]
    height += extra
    streams = report.get("streaming", {}).get("arms", {})
    if streams:
        rows = [
            (f"{arm['number']} {name}", [arm[key] for key, _, _ in STREAMED])
            for name, arm in streams.items()
        ]
        top = max(v for _, values in rows for v in values)
        title = "Streamed, one call at a time (medians)"
        streamed, extra = _panel(rows, STREAMED, title, "ms", top)
        body += [
            f'<g transform="translate(0,{height + 10:.1f})">',
            *streamed,
            *_legend(STREAMED, extra - 8),
            "</g>",
        ]
        height += extra + 14
    machine = report["machine"]
    caption = f"{machine['description']} · {report['finished_at']}"
    body.append(_text(0, height + 24, caption, size=10))
    total = height + 34
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{total:.0f}" '
        f'viewBox="-10 -5 {WIDTH + 10} {total + 5:.0f}" font-family="sans-serif" '
        'role="img"><title>Latency and throughput by arm</title>'
        '<rect x="-10" y="-5" width="100%" height="100%" fill="white"/>'
        + "".join(body)
        + "</svg>\n"
    )
