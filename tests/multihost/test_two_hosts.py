"""Proof on more than one machine (issue 16): two app instances as two hosts, A on 127.0.0.2
and B on 127.0.0.3, each the production command with 2 workers, sharing one PostgreSQL and
one Redis (tests/multihost/cluster.py), called with the official `openai` client on both.

Bounds are constants, awaited by polling a condition; no test waits out a clock."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import openai
import pytest

from limits import counters
from routing_admin.run_once import ALREADY_RUNNING
from tests.multihost.cluster import (
    FAILURE_MODES,
    HI,
    IN_A_ROW,
    MODELS,
    RPM,
    Cluster,
    Host,
    wait_until,
)

# LISTEN/NOTIFY takes milliseconds; the hosts' safety-net re-read is 60 s away.
SWITCH_BOUND_SECONDS = 3.0
REVOKE_BOUND_SECONDS = 3.0
# The one health-check run waits at the held upstreams; the other must find the lock taken
# and exit meanwhile (Django's start-up, a connection, a query).
SKIPPED_RUN_BOUND_SECONDS = 30.0
# After Redis answers again, each worker tries it at the end of its pause.
REDIS_BACK_BOUND_SECONDS = counters.REDIS_RETRY_AFTER_SECONDS + 5.0


@dataclass
class Outcome:
    host: str
    status: int
    code: str | None = None
    text: str = ""
    # x-ratelimit-remaining-requests: present when the call was counted.
    remaining: str | None = None

    @property
    def counted(self) -> bool:
        return self.status == 200 and self.remaining is not None


def _call(host: Host, client: openai.OpenAI) -> Outcome:
    try:
        raw = client.chat.completions.with_raw_response.create(model="default", messages=HI)
    except openai.APIStatusError as exc:
        return Outcome(host.name, exc.status_code, (exc.body or {}).get("code"))
    answer = raw.parse()
    remaining = raw.headers.get("x-ratelimit-remaining-requests")
    return Outcome(host.name, 200, None, answer.choices[0].message.content, remaining)


def _all_answer(host: Host, token: str, text: str) -> bool:
    client = host.client(token, fresh=True)
    return all(_call(host, client).text == text for _ in range(IN_A_ROW))


def _all_refuse(host: Host, token: str, code: str) -> bool:
    client = host.client(token, fresh=True)
    return all(_call(host, client).code == code for _ in range(IN_A_ROW))


def _hosts(cluster: Cluster) -> tuple[Host, Host]:
    return cluster.hosts["A"], cluster.hosts["B"]


def test_a_default_switched_on_a_answers_from_the_new_provider_on_b(cluster):
    a, b = _hosts(cluster)
    token = cluster.token("switch")
    assert _all_answer(b, token, "Hello from old")
    dashboard = cluster.dashboard("A")
    try:
        dashboard.post("/default/", {"provider": "new", "model": MODELS["new"]})
    finally:
        dashboard.close()
    switched = time.monotonic()
    wait_until(
        lambda: _all_answer(b, token, "Hello from new"),
        SWITCH_BOUND_SECONDS,
        "every answer on B from the new provider",
    )
    print(f"switch on A reached B in {time.monotonic() - switched:.3f} s")
    assert _all_answer(a, token, "Hello from new")
    # Made on A's dashboard, by the person signed in there.
    actor, change = cluster.database.query(
        "SELECT actor_name, changes FROM providers_auditevent WHERE action = 'default.set' "
        "ORDER BY id DESC LIMIT 1"
    )[0]
    assert actor == "admin" and change["default"][1] == f"new/{MODELS['new']}"


def test_a_tokens_rpm_holds_for_both_hosts_together(cluster):
    hosts = _hosts(cluster)
    token = cluster.token("rpm")
    before = cluster.chat_calls()
    clients = [(host, host.client(token)) for host in hosts]
    started = time.monotonic()
    # 16 at once, 8 on each host: exactly 10 pass, counted in one sliding window.
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda i: _call(*clients[i % 2]), range(16)))
    passed = [o for o in outcomes if o.status == 200]
    assert len(passed) == RPM, outcomes
    assert {o.host for o in passed} == {"A", "B"}
    assert sorted(int(o.remaining) for o in passed) == list(range(RPM))
    refused = [o for o in outcomes if o.status != 200]
    assert all((o.status, o.code) == (429, "rate_limit_exceeded") for o in refused), refused
    # The 17th and 18th, one on each host: refused too, and no refused call reached a provider.
    for _, client in clients:
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="default", messages=HI)
        assert f"token 'rpm' may make {RPM} requests per minute" in refused.value.body["message"]
    assert cluster.chat_calls() - before == RPM
    assert cluster.redis_count("rpm") == RPM
    # All of it inside one window: nothing left it meanwhile.
    assert time.monotonic() - started < counters.WINDOW_SECONDS


def test_a_token_revoked_on_a_is_refused_on_b_at_its_next_request(cluster):
    a, b = _hosts(cluster)
    token = cluster.token("revoke-me")
    assert _call(b, b.client(token)).status == 200
    dashboard = cluster.dashboard("A")
    try:
        dashboard.post("/tokens/revoke-me/revoke/", {})
    finally:
        dashboard.close()
    revoked = time.monotonic()
    wait_until(
        lambda: _all_refuse(b, token, "invalid_api_key"),
        REVOKE_BOUND_SECONDS,
        "every call on B refused",
    )
    print(f"revocation on A reached B in {time.monotonic() - revoked:.3f} s")
    assert _all_refuse(a, token, "invalid_api_key")


def _model_lists(upstream) -> int:
    """Connection tests an upstream received (an OpenAI provider's test lists its models)."""
    return len([r for r in list(upstream.requests) if r.path == "/v1/models"])


def test_health_check_started_on_both_hosts_at_once_runs_once(cluster):
    probes = "SELECT count(*) FROM providers_proberesult WHERE source = 'health-check'"
    (before,) = cluster.database.query(probes)[0]
    tests_before = {name: _model_lists(u) for name, u in cluster.upstreams.items()}
    # The run that takes the lock holds it while its connection tests wait at the upstreams.
    gates = [upstream.hold() for upstream in cluster.upstreams.values()]
    runs = {name: cluster.start_manage("routing", "health-check", host=name) for name in "AB"}
    try:
        first_done = wait_until(
            lambda: next((n for n, p in runs.items() if p.poll() is not None), None),
            SKIPPED_RUN_BOUND_SECONDS,
            "one of the two runs ends while the other holds the lock",
        )
    finally:
        for gate in gates:
            gate.set()
    outputs = {name: cluster.finish(process) for name, process in runs.items()}
    skipped, ran = first_done, "B" if first_done == "A" else "A"
    assert outputs[skipped].strip() == ALREADY_RUNNING.format(name="health-check")
    assert f"All {len(cluster.upstreams)} enabled providers answered." in outputs[ran]
    # Each provider tested once, its result recorded once.
    for name, upstream in cluster.upstreams.items():
        assert _model_lists(upstream) - tests_before[name] == 1, name
    assert cluster.database.query(probes)[0][0] - before == len(cluster.upstreams)


# What a limited call gets while Redis does not answer, by ROUTING_LIMITS_ON_REDIS_FAILURE:
# refused, or let through uncounted (no rate headers).
WHILE_DOWN = {"closed": (429, "limits_unavailable"), "open": (200, None)}


def _while_redis_is_down(host: Host, token: str) -> None:
    client = host.client(token, fresh=True)
    for _ in range(IN_A_ROW):
        outcome = _call(host, client)
        assert (outcome.status, outcome.code) == WHILE_DOWN[FAILURE_MODES[host.name]], outcome
        assert not outcome.counted, outcome
    health = host.healthz()
    assert health["status"] == "degraded", health
    assert health["limits"]["backend"] == "redis" and health["limits"]["state"] == "degraded"


def _count_again(hosts: tuple[Host, Host], token: str) -> list[Outcome]:
    """Calls on both hosts until each has refused one over the limit. A worker still in its
    pause after the outage answers by its failure mode, uncounted: such a call does not count
    here either, and the worker is asked again."""
    clients = [(host, host.client(token, fresh=True)) for host in hosts]
    outcomes: list[Outcome] = []

    def refused_on_both() -> bool:
        for host, client in clients:
            outcomes.append(_call(host, client))
        refused = {o.host for o in outcomes if o.code == "rate_limit_exceeded"}
        return refused == {"A", "B"}

    wait_until(refused_on_both, REDIS_BACK_BOUND_SECONDS, "limits counted again on A and B")
    return outcomes


def test_redis_stopped_mid_run_each_hosts_failure_mode_holds_and_counting_resumes(cluster):
    hosts = _hosts(cluster)
    token = cluster.token("outage")
    for host in hosts:
        assert _call(host, host.client(token)).counted
    assert cluster.redis_count("outage") == 2

    cluster.redis.stop()
    try:
        for host in hosts:  # A refuses (closed), B lets the calls through (open)
            _while_redis_is_down(host, token)
    finally:
        cluster.redis.start()

    # Redis came back empty (no persistence): a new window, counted exactly on both.
    for host in hosts:
        wait_until(
            lambda h=host: h.healthz()["limits"] == {"backend": "redis", "state": "ok"},
            REDIS_BACK_BOUND_SECONDS,
            f"/healthz on {host.name} says Redis answers",
        )
    outcomes = _count_again(hosts, token)
    counted = [o for o in outcomes if o.counted]
    assert len(counted) == RPM, outcomes
    assert sorted(int(o.remaining) for o in counted) == list(range(RPM))
    late = [o for o in outcomes if not o.counted and o.code != "rate_limit_exceeded"]
    assert all((o.status, o.code) == WHILE_DOWN[FAILURE_MODES[o.host]] for o in late), late
    assert cluster.redis_count("outage") == RPM
