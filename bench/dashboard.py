"""Dashboard pages at scale, in a process of its own with its own database:
`python -m bench.dashboard` (configured by the bench through BENCH_DASHBOARD).

Pages are timed in-process with Django's test Client (server time: no network, no
browser), their queries counted with CaptureQueriesContext, and their Python allocations
measured with tracemalloc on a separate request (tracing slows a request down). The query
counts are taken twice, at a tenth of the rows and at all of them: a fixed number of
queries means the two agree.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import tracemalloc

from .driver import MARK

PAGES = {
    "overview": "/",
    "groups": "/groups/",
    "usage": "/usage/",
    "usage-30d": "/usage/?range=30d",
    "audit": "/audit/",
}


def _queries(client) -> dict[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for name, url in PAGES.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        counts[name] = len(captured.captured_queries)
    return counts


def _measure(client, repeats: int) -> dict[str, dict]:
    pages = {}
    for name, url in PAGES.items():
        client.get(url)  # warm: templates compiled, database pages cached
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            response = client.get(url)
            samples.append(time.perf_counter() - t0)
            assert response.status_code == 200, (url, response.status_code)
        tracemalloc.start()
        client.get(url)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        pages[name] = {
            "url": url,
            "n": repeats,
            "median_ms": statistics.median(samples) * 1000,
            "max_ms": max(samples) * 1000,
            "peak_alloc_mb": peak / 2**20,
            "html_kb": len(response.content) / 1024,
        }
    return pages


def run(size: dict, repeats: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from . import seed

    call_command("migrate", verbosity=0)
    # A loopback host name: plain HTTP is allowed for loopback only.
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(seed.admin_user())
    timings = {}

    # Queries are counted at a tenth of the rows, then at all of them: a page whose count
    # grows with the rows does a query per row somewhere.
    t0 = time.perf_counter()
    seed.providers(0, size["providers"])
    seed.groups(0, size["groups"], size["providers"])
    timings["seed_config_s"] = time.perf_counter() - t0
    pairs = seed.deployments(size["groups"], size["providers"])
    tenth = size["rows"] // 10
    timings["seed_rows_s"] = seed.request_log(tenth, pairs, seed=1)
    small_queries = _queries(client)
    timings["seed_rows_s"] += seed.request_log(size["rows"] - tenth, pairs)
    full_queries = _queries(client)
    pages = _measure(client, repeats)
    for name, page in pages.items():
        page["queries"] = full_queries[name]
        page["queries_small"] = small_queries[name]
        # Fixed: ten times the rows cost no more queries.
        page["fixed_queries"] = full_queries[name] <= small_queries[name]
    return {"size": size, "pages": pages, "timings": timings}


if __name__ == "__main__":
    config = json.loads(os.environ["BENCH_DASHBOARD"])
    report = run(config["size"], config["repeats"])
    print(MARK + json.dumps(report), flush=True)
