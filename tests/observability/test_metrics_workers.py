"""GET /metrics under `uvicorn --workers 2`: scraped while traffic runs, its counts add up to
the requests sent, whichever worker served them and whichever answers the scrape."""

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import team_create
from gateway.services import token_create
from providers import services
from providers.services import DeploymentSpec as D
from tests.observability.server import server_env, uvicorn
from usage import pricing

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
METRICS_TOKEN = "scrape-" + "x" * 24


def _samples(base: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(
        base + "/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}", "Connection": "close"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _total(samples: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, found), value in samples.items()
        if sample == name and labels.items() <= dict(found).items()
    )


def _ask(base: str, token: str, model: str) -> int:
    # A new connection each time, so the kernel spreads requests over the workers.
    response = httpx.post(
        base + "/v1/chat/completions",
        json={"model": model, "messages": HI},
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=180,
    )
    return response.status_code


def _stream(base: str, token: str) -> int:
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        json={"model": "default", "messages": HI, "stream": True},
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=180,
    ) as response:
        assert b"[DONE]" in response.read()
        return response.status_code


def test_counts_add_up_across_two_workers(upstream_factory, make_provider):
    a = upstream_factory("a")
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    services.default_model_set(provider=pa, model="gpt-4o-mini")
    services.group_save(name="fast", deployments=[D("pa", "small")])
    team = team_create(name="research", actor="test")
    _, token = token_create(name="app", team=team, actor="test")
    _, limited = token_create(name="narrow", allowed_models=["fast"], actor="test")
    # The writer prices calls as it writes them: soon after, here.
    env = server_env(
        ROUTING_METRICS_TOKEN=METRICS_TOKEN, ROUTING_REQUEST_LOG_INTERVAL_SECONDS="0.1"
    )
    with uvicorn(env, workers=2) as base:
        assert httpx.get(base + "/metrics", timeout=30).status_code == 401
        sent = {"default": 0, "fast": 0, "refused": 0}
        scrapes: list[dict] = []
        done = threading.Event()

        def scrape_while_traffic_runs() -> None:
            while not done.is_set():
                scrapes.append(_samples(base))

        scraper = threading.Thread(target=scrape_while_traffic_runs)
        scraper.start()
        try:
            for _ in range(12):
                assert _ask(base, token, "default") == 200
                sent["default"] += 1
                assert _ask(base, token, "fast") == 200
                sent["fast"] += 1
                assert _ask(base, limited, "default") == 403
                sent["refused"] += 1
            # Every endpoint is counted at the same seam: embeddings, Azure's deployment paths.
            for path in (
                "/v1/embeddings",
                "/openai/deployments/pa/text-embedding-3-small/embeddings",
            ):
                response = httpx.post(
                    base + path + "?api-version=2024-10-21",
                    json={"model": "pa/text-embedding-3-small", "input": "x"},
                    headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                    timeout=180,
                )
                assert response.status_code == 200, response.text
            # Streamed answers go through Django's handler, not the fast path: counted too.
            for _ in range(2):
                assert _stream(base, token) == 200
                sent["default"] += 1
        finally:
            done.set()
            scraper.join(60)
        words = len(a.reply_text.split())
        each = pricing.cost("openai/gpt-4o-mini", 7, words)
        deadline = time.monotonic() + 60
        samples = _samples(base)
        # Scraped again until the writer has priced the 14 calls to the priced model.
        chat = {"endpoint": "/v1/chat/completions"}
        while abs(_total(samples, "routing_cost_usd_total", **chat) - 14 * each) > 1e-12:
            assert time.monotonic() < deadline, _total(samples, "routing_cost_usd_total", **chat)
            samples = _samples(base)

    assert scrapes, "no scrape ran while the traffic did"
    requests = "routing_requests_total"
    embedded = _total(samples, requests, endpoint="/v1/embeddings")
    azure = "/openai/deployments/{deployment}/embeddings"
    assert (embedded, _total(samples, requests, endpoint=azure)) == (1, 1)
    assert _total(samples, requests, model="text-embedding-3-small") == 2
    assert _total(samples, requests) == sum(sent.values()) + 2
    assert _total(samples, requests, token="app", team="research", status="200") == 28
    assert _total(samples, "routing_cost_usd_total", token="app", team="research") > 0
    assert _total(samples, requests, group="fast", provider="pa", model="small") == 12
    assert _total(samples, requests, group="", provider="pa", model="gpt-4o-mini") == 14
    assert _total(samples, "routing_time_to_first_token_seconds_count") == 2
    assert _total(samples, requests, endpoint="/v1/chat/completions") == sum(sent.values())
    assert _total(samples, "routing_request_errors_total", token="narrow", status="403") == 12
    assert _total(samples, "routing_request_errors_total") == 12
    assert _total(samples, "routing_request_duration_seconds_count") == sum(sent.values()) + 2
    # The fake upstream answers 7 prompt tokens a call, and one completion token a word.
    assert _total(samples, "routing_tokens_total", type="prompt", **chat) == 26 * 7
    assert _total(samples, "routing_tokens_total", type="completion", **chat) == 26 * words
    # Counts only grow: a scrape during the traffic never saw more than the last one.
    for earlier in scrapes:
        assert _total(earlier, requests) <= _total(samples, requests)
    # Each worker says which configuration version it serves: both served (and counted).
    versions = [v for (name, _), v in samples.items() if name == "routing_config_version"]
    assert len(versions) == 2 and all(v >= 1 for v in versions)
    # Never a key or a token's value in the exposition.
    text = repr(samples)
    assert token not in text and limited not in text and "sk-test-" not in text
