"""Provider health: history, consecutive failures, and routing groups while unhealthy,
against test servers on 127.0.0.1 that answer, fail and hang."""

import time

import pytest

from providers import services
from providers.models import AuditEvent, ProbeResult, Provider
from providers.routing import live
from providers.selectors import health as health_selectors
from providers.services import DeploymentSpec as D
from providers.services import connection, health


@pytest.fixture
def threshold(settings):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 3
    return 3


@pytest.fixture
def servers(upstream_factory, make_provider):
    a, b = upstream_factory("a"), upstream_factory("b")
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    pb = make_provider(name="pb", base_url=b.base_url + "/v1")
    return a, b, pa, pb


def _fail(provider, upstream, times=1):
    upstream.fail_next(500, times=times)
    for _ in range(times):
        services.provider_test(provider=provider, actor="tester")


def _serving(group: str) -> list[str]:
    return [d.label for d in live.snapshot().groups[group].deployments]


def test_each_test_is_recorded_with_its_latency(make_provider, upstream):
    provider = make_provider(name="a", base_url=upstream.base_url + "/v1")
    services.provider_test(provider=provider, actor="tester")
    upstream.fail_next(503)
    services.provider_test(provider=provider, actor="tester")
    ok, failed = ProbeResult.objects.filter(provider=provider).order_by("at", "id")
    assert ok.ok and ok.latency_ms > 0 and ok.status == 200 and ok.source == "tester"
    assert not failed.ok and failed.status == 503 and "HTTP 503" in failed.message
    assert Provider.objects.get().discovered_models == ["upstream-model-a", "upstream-model-b"]


def test_it_turns_unhealthy_after_the_threshold_and_healthy_after_a_success(
    make_provider, upstream, threshold
):
    provider = make_provider(name="a", base_url=upstream.base_url + "/v1")
    _fail(provider, upstream, times=threshold - 1)
    provider.refresh_from_db()
    assert provider.consecutive_failures == 2 and provider.unhealthy_since is None

    upstream.fail_next(500)
    result = services.provider_test(provider=provider, actor="tester")
    assert result.health_change == "unhealthy"
    provider.refresh_from_db()
    assert provider.consecutive_failures == 3 and provider.unhealthy_since is not None
    event = AuditEvent.objects.get(action="provider.unhealthy")
    assert event.target == "a" and event.actor_name == "tester"
    assert event.changes["health"] == ["healthy", "unhealthy"]

    # A fourth failure changes nothing more (no second audit event).
    _fail(provider, upstream)
    assert AuditEvent.objects.filter(action="provider.unhealthy").count() == 1

    result = services.provider_test(provider=provider, actor="tester")
    assert result.ok and result.health_change == "healthy"
    provider.refresh_from_db()
    assert provider.consecutive_failures == 0 and provider.unhealthy_since is None
    assert AuditEvent.objects.filter(action="provider.healthy", target="a").exists()


def test_a_success_resets_the_count_before_the_threshold(make_provider, upstream, threshold):
    provider = make_provider(name="a", base_url=upstream.base_url + "/v1")
    _fail(provider, upstream, times=2)
    services.provider_test(provider=provider)
    _fail(provider, upstream, times=2)
    provider.refresh_from_db()
    assert provider.consecutive_failures == 2 and provider.unhealthy_since is None


def test_history_keeps_the_last_fifty_per_provider(make_provider):
    a, b = make_provider(name="a"), make_provider(name="b")
    for i in range(health.HISTORY_LENGTH + 5):
        result = connection.ConnectionResult(ok=True, message=f"run {i}", latency_ms=float(i))
        health.probe_record(provider=a, result=result)
    health.probe_record(provider=b, result=connection.ConnectionResult(ok=False, message="x"))
    kept = health_selectors.history(provider=a)
    assert len(kept) == health.HISTORY_LENGTH
    assert kept[0].message == "run 5" and kept[-1].message == "run 54"
    assert ProbeResult.objects.filter(provider=b).count() == 1


def test_a_hanging_provider_fails_within_its_own_timeout(make_provider, upstream):
    upstream.hang(5)
    provider = make_provider(name="slow", base_url=upstream.base_url + "/v1", timeout=0.5)
    started = time.monotonic()
    result = services.provider_test(provider=provider)
    assert time.monotonic() - started < 3
    where = upstream.base_url.removeprefix("http://")
    hint = connection.TIMED_OUT_HINT.format(where=where)
    assert not result.ok and result.message == f"{connection.TIMED_OUT.format(timeout=0.5)} {hint}"
    assert ProbeResult.objects.get().ok is False


def test_the_connection_test_keeps_its_own_limit_below_the_model_call_timeout(
    make_provider, upstream, monkeypatch
):
    # A provider at the model-call default (600 s) is tested within CONNECTION_TEST_TIMEOUT
    # (10 s; half a second here, so that the test stays fast).
    from providers import models

    monkeypatch.setattr(models, "CONNECTION_TEST_TIMEOUT", 0.5)
    upstream.hang(5)
    provider = make_provider(name="slow", base_url=upstream.base_url + "/v1")
    assert provider.timeout == models.MODEL_CALL_TIMEOUT == 600
    started = time.monotonic()
    result = services.provider_test(provider=provider)
    assert time.monotonic() - started < 3
    assert not result.ok and result.message.startswith(connection.TIMED_OUT.format(timeout=0.5))


@pytest.mark.django_db(transaction=True)
def test_test_many_is_bounded_and_a_hanging_provider_never_stalls_the_rest(
    upstream_factory, make_provider
):
    hanging, good, bad = upstream_factory("hang"), upstream_factory("good"), upstream_factory("bad")
    hanging.hang(5)
    bad.fail_next(500, times=5)
    providers = [
        make_provider(name="hang", base_url=hanging.base_url + "/v1", timeout=0.5),
        make_provider(name="good", base_url=good.base_url + "/v1"),
        make_provider(name="bad", base_url=bad.base_url + "/v1"),
        make_provider(name="good2", base_url=good.base_url + "/v1"),
    ]
    arrived = []
    started = time.monotonic()
    # Two workers: while one waits on the hanging provider, the other tests the rest.
    results = services.provider_test_many(
        providers=providers,
        max_workers=2,
        actor="tester",
        on_result=lambda p, r: arrived.append((p.name, r.ok)),
    )
    assert time.monotonic() - started < 3
    assert arrived[-1] == ("hang", False)
    assert sorted(arrived[:3]) == [("bad", False), ("good", True), ("good2", True)]
    assert [p.name for p, _ in results] == ["hang", "good", "bad", "good2"]
    assert ProbeResult.objects.count() == 4
    assert Provider.objects.get(name="hang").consecutive_failures == 1


def test_an_unhealthy_provider_with_the_switch_leaves_its_groups(servers, settings):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    a, _, pa, pb = servers
    services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    health.provider_drain_set(provider=pa, drain_when_unhealthy=True, actor="tester")
    assert _serving("fast") == ["pa/m", "pb/m"]

    _fail(pa, a)
    assert _serving("fast") == ["pb/m"]
    # The real Router is built from the same list.
    router = live.snapshot().router()
    assert [d["model_info"]["deployment"] for d in router.model_list] == ["pb/m"]
    # Still callable directly: only routing groups leave it out.
    assert live.snapshot().resolve("pa/m").provider.name == "pa"

    services.provider_test(provider=pa, actor="tester")
    assert _serving("fast") == ["pa/m", "pb/m"]


def test_without_the_switch_an_unhealthy_provider_stays(servers, settings):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    a, _, pa, _ = servers
    services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    _fail(pa, a)
    assert Provider.objects.get(name="pa").unhealthy_since is not None
    assert _serving("fast") == ["pa/m", "pb/m"]


def test_a_group_is_never_left_empty_for_health_alone(servers, settings):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    a, _, pa, _ = servers
    services.group_save(name="solo", deployments=[D("pa", "m")])
    services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    health.provider_drain_set(provider=pa, drain_when_unhealthy=True)
    _fail(pa, a)
    assert _serving("solo") == ["pa/m"]
    assert _serving("fast") == ["pb/m"]


def test_the_default_provider_is_flagged_never_taken_out(servers, settings):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    a, _, pa, _ = servers
    services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    services.default_model_set(provider=pa, model="m", actor="tester")
    health.provider_drain_set(provider=pa, drain_when_unhealthy=True)
    assert health_selectors.default_health_warning() == ""

    _fail(pa, a)
    assert _serving("fast") == ["pa/m", "pb/m"]
    assert live.snapshot().resolve(None).provider.name == "pa"
    warning = health_selectors.default_health_warning()
    assert warning.startswith("The default model's provider pa is unhealthy")


def test_a_default_group_with_only_unhealthy_providers_is_flagged(servers, settings):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    a, b, pa, pb = servers
    group = services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    services.default_model_set(group=group)
    _fail(pa, a)
    assert health_selectors.default_health_warning() == ""
    _fail(pb, b)
    assert "default routing group fast" in health_selectors.default_health_warning()


def test_the_switch_is_audited_and_reaches_the_router(servers, settings):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    a, _, pa, _ = servers
    services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    _fail(pa, a)
    version = Provider.objects.get(name="pa").version
    health.provider_drain_set(provider=pa, drain_when_unhealthy=True, actor="alice")
    assert _serving("fast") == ["pb/m"]
    event = AuditEvent.objects.filter(action="provider.update", target="pa").first()
    assert event.actor_name == "alice"
    assert event.changes == {"drain_when_unhealthy": [False, True]}
    # Not an edit of the form's fields: an open edit form stays valid.
    assert Provider.objects.get(name="pa").version == version

    health.provider_drain_set(provider=pa, drain_when_unhealthy=False, actor="alice")
    assert _serving("fast") == ["pa/m", "pb/m"]
