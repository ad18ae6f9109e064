"""The benchmark harness's pure parts: statistics, /proc readings, the report and the chart.
(The harness itself runs with `python -m bench`, not in the test suite.)"""

import os
import xml.etree.ElementTree as ET

from bench import chart, report, stats


def _arm(number: int, median: float, rps: float | None) -> dict:
    arm = {
        "number": number,
        "c1": {"n": 10, "median_ms": median, "p90_ms": median * 1.2, "p99_ms": median * 2},
        "peak_rss_mb": 100.0,
    }
    if rps is not None:
        arm["c16"] = {
            "throughput_rps": rps,
            "p99_ms": 50.0,
            "median_ms": 40.0,
            "cpu_ms_per_request": 1.5,
        }
    return arm


def _report() -> dict:
    return {
        "machine": {"description": "2 cores <test>", "load_at_start": [0.5, 0.4, 0.3]},
        "finished_at": "2026-01-01T00:00:00+00:00",
        "mock": {"client_rps": 2000, "mock_cpu_ms_per_request": 0.05, "mock_capacity_rps": 2e4},
        "proxy": {"status": "ran", "reason": ""},
        "worker_counts": [1],
        "arms": {
            "httpx": _arm(1, 0.3, 2000),
            "direct": _arm(2, 3.0, 300),
            "service": _arm(3, 3.1, 290),
            "service-cold": _arm(3, 6.0, None),
            "gateway-1w": _arm(4, 4.0, 250),
            "litellm-proxy-1w": _arm(5, 8.3, 110),
        },
    }


def test_percentiles_are_nearest_rank():
    samples = [float(i) for i in range(1, 101)]
    assert stats.percentile(samples, 0.5) == 50
    assert stats.percentile(samples, 0.9) == 90
    assert stats.percentile(samples, 0.99) == 99
    assert stats.percentile([7.0], 0.99) == 7
    figures = stats.latency([0.001, 0.002, 0.003])
    assert figures["median_ms"] == 2.0 and figures["p99_ms"] == 3.0


def test_it_reads_its_own_process_from_proc():
    assert stats.cpu_seconds(os.getpid()) > 0
    assert stats.peak_rss_mb(os.getpid()) > 1
    assert stats.tree(os.getpid())[0] == os.getpid()


def test_derived_figures_and_targets():
    result = _report()
    report.derive(result)
    derived = result["derived"]
    assert round(derived["service_over_direct"], 3) == 1.033
    ratios = derived["gateway_vs_proxy"]["1w"]
    assert round(ratios["added_latency_ratio"], 3) == round(3.7 / 8.0, 3)
    assert round(ratios["throughput_ratio"], 3) == round(250 / 110, 3)
    assert [t["met"] for t in result["targets"]] == [True, True, True]
    assert "gateway-1w" in report.text(result)
    assert report.markdown(result).count("\n") == len(result["arms"]) + 1
    assert derived["limits"] == {}


def test_limited_gateway_arms_are_set_beside_the_same_gateway_without_a_limit():
    result = _report()
    result["arms"]["gateway-1w-rpm-database"] = _arm(4, 6.0, 200)
    result["arms"]["gateway-1w-rpm-redis"] = _arm(4, 4.5, 240)
    report.derive(result)
    limits = result["derived"]["limits"]
    assert set(limits) == {"gateway-1w-rpm-database", "gateway-1w-rpm-redis"}
    assert round(limits["gateway-1w-rpm-database"]["added_median_ms"], 3) == 2.0
    assert round(limits["gateway-1w-rpm-redis"]["throughput_ratio"], 3) == round(240 / 250, 3)
    table = report.text(result)
    assert "4 gateway-1w-rpm-redis" in table
    assert "gateway-1w-rpm-database: an rpm limit adds +2.00 ms at c=1 over gateway-1w" in table
    # Both are gateways with a limit, not new targets against the proxy.
    assert len(result["targets"]) == 3


def test_the_chart_is_svg_with_a_bar_per_figure():
    result = _report()
    report.derive(result)
    svg = ET.fromstring(chart.render(result))
    bars = svg.findall(".//{http://www.w3.org/2000/svg}rect")
    # A background, 3 latency bars per arm, 3 legend swatches, one throughput bar per arm
    # that has one (the cold arm has none).
    assert len(bars) == 1 + 3 * 6 + 3 + 5
    assert chart._scale(7.3) == 10 and chart._scale(0.42) == 0.5 and chart._scale(180) == 200
