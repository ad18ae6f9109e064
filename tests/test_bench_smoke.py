"""The benchmark harness's pure parts: statistics, /proc readings, the report and the chart.
(The harness itself runs with `python -m bench`, not in the test suite.)"""

import os
import xml.etree.ElementTree as ET

from bench import chart, report, stats, streaming, verdicts


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
    # The bare gateway has no verdicts of its own: they are for every feature on.
    assert [t["met"] for t in result["targets"]] == [True]
    assert "gateway-1w" in report.text(result)
    assert report.markdown(result).count("\n") == len(result["arms"]) + 1
    assert derived["features"] == {}


def test_every_feature_arms_are_set_beside_the_same_gateway_with_none():
    result = _report()
    result["arms"]["gateway-1w-all-database"] = _arm(4, 6.0, 200)
    result["arms"]["gateway-1w-all-redis"] = _arm(4, 4.5, 240)
    report.derive(result)
    features = result["derived"]["features"]
    assert set(features) == {"gateway-1w-all-database", "gateway-1w-all-redis"}
    assert round(features["gateway-1w-all-database"]["added_median_ms"], 3) == 2.0
    assert round(features["gateway-1w-all-redis"]["throughput_ratio"], 3) == round(240 / 250, 3)
    table = report.text(result)
    assert "4 gateway-1w-all-redis" in table
    assert "gateway-1w-all-database: every feature adds +2.00 ms at c=1 over gateway-1w" in table
    # Redis first: the headline arm.
    assert verdicts.every_feature_arms(result["arms"]) == [
        "gateway-1w-all-redis",
        "gateway-1w-all-database",
    ]


def _streams(**ttfb: float) -> dict:
    return {
        name: {
            "number": 1,
            "ttfb_median_ms": value,
            "ttfb_p90_ms": value,
            "chunk_lag_median_ms": value / 10,
            "total_median_ms": 30.0,
            "cpu_ms_per_call": 1.0,
        }
        for name, value in ttfb.items()
    }


def test_issue_18_verdicts_use_the_every_feature_arm_against_the_proxy():
    result = _report()
    # +1.7 ms over arm 1 against the proxy's +8.0: 0.2125; 500 against 110 req/s: 4.5.
    result["arms"]["gateway-1w-all-redis"] = _arm(4, 2.0, 500)
    # CPU per call 1.5 (the fixture's) against arm 1's 1.5.
    result["streaming"] = {
        "chunks": 20,
        "chunk_delay_ms": 1.0,
        "arms": _streams(**{"httpx": 1.0, "gateway-1w-all-redis": 4.0, "litellm-proxy-1w": 11.0}),
    }
    report.derive(result)
    found = {t["target"]: t for t in result["targets"] if t.get("issue") == 18}
    latency = found["added latency at c=1 <= 0.25 x proxy's"]
    assert (latency["arm"], latency["against"]) == ("gateway-1w-all-redis", "litellm-proxy-1w")
    assert latency["value"] == round(1.7 / 8.0, 3) and latency["met"] is True
    assert latency["figures"] == "+1.70 ms vs +8.00 ms over arm 1"
    throughput = found["throughput at c=16 >= 4 x proxy's"]
    assert throughput["value"] == round(500 / 110, 3) and throughput["met"] is True
    assert found["CPU per call at c=16 <= arm 1's + 1.5 ms"]["value"] == 0.0
    ttfb = found["streamed: added time to first byte <= 0.25 x proxy's"]
    # +3 ms against the proxy's +10: not met.
    assert ttfb["value"] == 0.3 and ttfb["met"] is False
    assert result["derived"]["streaming"]["gateway-1w-all-redis"]["added_ttfb_ms"] == 3.0
    table = report.verdicts_markdown(result)
    assert "| streamed: added time to first byte <= 0.25 x proxy's" in table
    assert "**MISSED**" in table and "**met**" in table
    assert "`gateway-1w-all-redis` vs `litellm-proxy-1w`" in table
    assert "target       MISSED: streamed" in report.text(result)


def test_a_verdict_without_the_proxy_says_not_measured():
    result = _report()
    del result["arms"]["litellm-proxy-1w"]
    result["arms"]["gateway-1w-all-database"] = _arm(4, 2.0, 500)
    report.derive(result)
    missing = [t for t in result["targets"] if t.get("issue") == 18 and t["met"] is None]
    # Latency, throughput and TTFB need the proxy (and TTFB a streamed arm); CPU does not.
    assert len(missing) == 3
    assert "**not measured**" in report.verdicts_markdown(result)


def test_uvicorn_without_its_extras_is_set_beside_the_same_arm_with_them():
    result = _report()
    result["arms"]["gateway-1w-all-redis"] = _arm(4, 4.0, 250)
    plain = _arm(4, 4.5, 200)
    plain["c16"]["cpu_ms_per_request"] = 2.0
    result["arms"]["gateway-1w-all-redis-asyncio-h11"] = plain
    report.derive(result)
    saved = result["derived"]["uvicorn_standard"]["gateway-1w-all-redis"]
    assert saved == {
        "median_ms_saved": 0.5,
        "cpu_ms_per_request_saved": 0.5,
        "throughput_ratio": 1.25,
    }
    # Not an every-feature arm of its own: no verdicts for it.
    assert {t["arm"] for t in result["targets"] if "arm" in t} == {"gateway-1w-all-redis"}


def test_a_stream_chunk_is_read_for_the_mock_stamp():
    chunk = b'data: {"choices": [{"delta": {"content": "123.5 "}}]}'
    assert streaming._stamp(chunk) == 123.5
    assert streaming._stamp(b"data: [DONE]") is None
    assert streaming._stamp(b'data: {"choices": [{"delta": {"role": "assistant"}}]}') is None
    assert streaming._stamp(b": keep-alive") is None
    blocks = [
        {"calls": [{"ttfb": 0.002, "total": 0.03, "lags": [0.001, 0.003]}], "cpu": 0.004},
        {"calls": [{"ttfb": 0.004, "total": 0.05, "lags": [0.002]}], "cpu": 0.002},
    ]
    figures = streaming.summary(blocks)
    assert figures["n"] == 2 and figures["chunk_lag_median_ms"] == 2.0
    assert figures["ttfb_median_ms"] == 3.0 and figures["cpu_ms_per_call"] == 3.0


def test_the_chart_is_svg_with_a_bar_per_figure():
    result = _report()
    report.derive(result)
    svg = ET.fromstring(chart.render(result))
    bars = svg.findall(".//{http://www.w3.org/2000/svg}rect")
    # A background, 3 latency bars per arm, 3 legend swatches, one throughput bar per arm
    # that has one (the cold arm has none).
    assert len(bars) == 1 + 3 * 6 + 3 + 5
    assert chart._scale(7.3) == 10 and chart._scale(0.42) == 0.5 and chart._scale(180) == 200


def test_the_chart_has_a_streamed_panel_when_the_run_streamed():
    result = _report()
    result["streaming"] = {"arms": _streams(httpx=1.0, **{"litellm-proxy-1w": 11.0})}
    report.derive(result)
    svg = ET.fromstring(chart.render(result))
    bars = svg.findall(".//{http://www.w3.org/2000/svg}rect")
    # As without, and two bars per streamed arm and two legend swatches.
    assert len(bars) == 1 + 3 * 6 + 3 + 5 + 2 * 2 + 2
    assert "Streamed, one call at a time" in chart.render(result)
