"""GET /metrics: who may scrape it, and what a call through the request log's record counts."""

import contextlib
import os
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client.parser import text_string_to_metric_families

from gateway.services import token_create
from observability import setup
from observability.views import (
    METRICS_ADDRESS_REFUSED,
    METRICS_NOT_COUNTED,
    METRICS_OFF,
    METRICS_TOKEN_WRONG,
)
from usage import request_log

TOKEN = "scrape-" + "y" * 24
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="session")
def metrics_dir(tmp_path_factory):
    # For the whole session: prometheus_client reads it whenever a new series is made.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path_factory.mktemp("metrics"))
    return setup.metrics_module()


@pytest.fixture
def counting(metrics_dir):
    """This process counts, as a server started with metrics on does."""
    request_log.observer = setup._RequestLogObserver(metrics_dir, None)
    yield metrics_dir
    request_log.observer = None


def _scrape(client, **headers):
    return client.get("/metrics", headers=headers)


def _value(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_it_refuses_and_says_what_to_set_when_nothing_is_configured(client, settings):
    settings.ROUTING_METRICS_TOKEN, settings.ROUTING_METRICS_ALLOWED_IPS = "", []
    response = _scrape(client)
    assert response.status_code == 403
    assert response.content.decode().strip() == METRICS_OFF
    assert setup.metrics_wanted() is False


def test_it_requires_the_bearer_token(client, settings, metrics_dir):
    settings.ROUTING_METRICS_TOKEN = TOKEN
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = _scrape(client, **headers)
        assert response.status_code == 401
        assert response.content.decode().strip() == METRICS_TOKEN_WRONG
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in response.content.decode()
    response = _scrape(client, Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")


def test_allowed_addresses_and_both_together(client, settings, metrics_dir):
    settings.ROUTING_METRICS_TOKEN = ""
    settings.ROUTING_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    response = _scrape(client)
    assert response.status_code == 403
    assert response.content.decode().strip() == METRICS_ADDRESS_REFUSED.format(address="127.0.0.1")
    settings.ROUTING_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "127.0.0.1"]
    assert _scrape(client).status_code == 200
    # Both set: a scrape needs both.
    settings.ROUTING_METRICS_TOKEN = TOKEN
    assert _scrape(client).status_code == 401
    assert _scrape(client, Authorization=f"Bearer {TOKEN}").status_code == 200
    settings.ROUTING_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert _scrape(client, Authorization=f"Bearer {TOKEN}").status_code == 403


def test_a_bad_address_entry_stops_the_start(settings):
    settings.ROUTING_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "not-an-ip"]
    with pytest.raises(ImproperlyConfigured, match="'not-an-ip'"):
        setup.metrics_wanted()


def test_only_get(client, settings):
    settings.ROUTING_METRICS_TOKEN = TOKEN
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


def test_a_process_that_does_not_count_says_so(client, settings, monkeypatch):
    settings.ROUTING_METRICS_TOKEN = TOKEN
    monkeypatch.setattr(setup, "_installed", {})
    response = _scrape(client, Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 503
    assert response.content.decode().strip() == METRICS_NOT_COUNTED


@pytest.mark.django_db
def test_a_record_is_counted_with_its_labels(client, settings, counting):
    from accounts.services import team_create

    team = team_create(name="ml", actor="test")
    token_create(name="svc", team=team, actor="test")
    from providers.routing import live

    live.snapshot()  # the team of a token is read from the snapshot, as in a server
    settings.ROUTING_METRICS_TOKEN = TOKEN
    before = _scrape(client, Authorization=f"Bearer {TOKEN}").content.decode()
    labels = {"endpoint": "/v1/embeddings", "token": "svc", "team": "ml", "provider": "p1"}
    reset = request_log.current_token.set("svc")
    try:
        request_log.record(
            endpoint="/v1/embeddings", at=None, requested_model="p1/m", provider="p1",
            model="m", fallbacks=0, ok=True, status=200, error="", latency_ms=250.0,
            prompt_tokens=11, completion_tokens=0,
        )  # fmt: skip
    finally:
        request_log.current_token.reset(reset)
    request_log.discard()
    after = _scrape(client, Authorization=f"Bearer {TOKEN}").content.decode()
    timing = {"endpoint": "/v1/embeddings", "provider": "p1", "model": "m"}
    for name, delta, where in (
        ("routing_requests_total", 1, labels),
        ("routing_tokens_total", 11, labels),
        # Histograms leave the token and team out (a series per bucket each).
        ("routing_request_duration_seconds_count", 1, timing),
        ("routing_request_duration_seconds_sum", 0.25, timing),
    ):
        assert _value(after, name, **where) - _value(before, name, **where) == delta, name
    assert _value(after, "routing_request_errors_total", token="svc") == _value(
        before, "routing_request_errors_total", token="svc"
    )


def test_recording_costs_little(counting):
    """Roughly what a call pays for being counted (issue 18 wants a light gateway)."""
    fields = {
        "requested_model": "pa/m", "provider": "pa", "model": "m", "fallbacks": 0, "ok": True,
        "status": 200, "error": "", "latency_ms": 12.0, "prompt_tokens": 7,
        "completion_tokens": 3, "token_name": "t",
    }  # fmt: skip
    observer, rounds = request_log.observer, 2000
    started = time.perf_counter()
    for _ in range(rounds):
        observer.recorded(dict(fields), "/v1/chat/completions")
    per_call = (time.perf_counter() - started) / rounds
    print(f"metrics per recorded call: {per_call * 1e6:.1f} µs")
    assert per_call < 0.002  # a generous bound on a loaded 2-core machine


@pytest.mark.django_db(transaction=True)
def test_a_cooldown_is_counted_with_its_deployment(
    client, settings, metrics_dir, upstream_factory, make_provider, monkeypatch
):
    from providers import services
    from providers.routing import snapshot
    from providers.services import DeploymentSpec as D

    a, b = upstream_factory("a"), upstream_factory("b")
    make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    services.group_save(name="pair", deployments=[D("pa", "x"), D("pb", "y")])
    monkeypatch.setattr(snapshot, "observer", setup._SnapshotObserver(metrics_dir, None))
    settings.ROUTING_METRICS_TOKEN = TOKEN
    labels = {"group": "pair", "provider": "pa", "model": "x", "status": "429"}
    before = _value(_scrape(client, Authorization=f"Bearer {TOKEN}").content.decode(),
                    "routing_cooldowns_total", **labels)  # fmt: skip
    a.fail_next(429, times=20)
    # Simple shuffle picks either deployment: ask until pa has refused once.
    for _ in range(40):
        if a.requests:
            break
        # pa's 429 is relayed: that is the call that cooled it down.
        with contextlib.suppress(services.ProviderError):
            services.completion(HI, model="pair")
    assert a.requests, "the router never picked pa"
    after = _value(_scrape(client, Authorization=f"Bearer {TOKEN}").content.decode(),
                   "routing_cooldowns_total", **labels)  # fmt: skip
    assert after - before == 1


AZURE = "/openai/deployments/{deployment}/"


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/embeddings", "/v1/embeddings"),
        ("/openai/deployments/fast/chat/completions", AZURE + "chat/completions"),
        ("/openai/deployments/pa/gpt-4o/embeddings", AZURE + "embeddings"),
        ("/openai/deployments/pa/chat/chat/completions", AZURE + "chat/completions"),
        ("/openai/deployments/pa/m/completions", AZURE + "completions"),
    ],
)
def test_the_endpoint_label_names_the_api_never_the_deployment(path, endpoint):
    from observability.asgi import endpoint_of

    assert endpoint_of(path) == endpoint
