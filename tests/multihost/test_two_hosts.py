"""Proof on more than one machine (issue 16): two app instances as two hosts, A on 127.0.0.2
and B on 127.0.0.3, each the production command with 2 workers, sharing one PostgreSQL and
one Redis (tests/multihost/cluster.py), called with the official `openai` client on both.

Every scenario of the issue is a test here: a default switched (1), a token's rpm and a
team's budget (2), a cooldown (3, after 5: its providers must not be health-checked), a
revocation (4), health-check run once (5), Redis stopped and started (6, last: it empties
Redis). Bounds are constants, awaited by polling a condition; no test waits out a clock."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from limits import counters
from limits.models import Spend
from providers.routing.llm import ROUTER_REDIS_NAMESPACE
from routing_admin.run_once import ALREADY_RUNNING
from tests.multihost.calls import Outcome, call, price_in_nanos
from tests.multihost.cluster import (
    FAILURE_MODES,
    HI,
    IN_A_ROW,
    KEY_VARIABLE,
    MODELS,
    RPM,
    TEAM,
    TEAM_BUDGET_USD,
    TEAM_TOKENS,
    Cluster,
    Host,
    wait_until,
)
from tests.upstream import Upstream
from usage.models import RequestLog
from usage.pricing import nanos

# LISTEN/NOTIFY takes milliseconds; the hosts' safety-net re-read is 60 s away.
SWITCH_BOUND_SECONDS = 3.0
REVOKE_BOUND_SECONDS = 3.0
# The one health-check run waits at the held upstreams; the other must find the lock taken
# and exit meanwhile (Django's start-up, a connection, a query).
SKIPPED_RUN_BOUND_SECONDS = 30.0
# After Redis answers again, each worker tries it at the end of its pause.
REDIS_BACK_BOUND_SECONDS = counters.REDIS_RETRY_AFTER_SECONDS + 5.0


def _all_answer(host: Host, token: str, text: str) -> bool:
    client = host.client(token, fresh=True)
    return all(call(host, client).text == text for _ in range(IN_A_ROW))


def _all_refuse(host: Host, token: str, code: str) -> bool:
    client = host.client(token, fresh=True)
    return all(call(host, client).code == code for _ in range(IN_A_ROW))


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
        outcomes = list(pool.map(lambda i: call(*clients[i % 2]), range(16)))
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


# Priced in LiteLLM's map; the recording upstream answers it with 7 prompt tokens and one
# completion token a word ("Hello from old": 3).
BUDGET_MODEL = "gpt-4o"
BUDGET_USAGE = (7, 3)
# Calls until the budget refuses: far more than it has room for.
BUDGET_CALLS_AT_MOST = 40
# Each host writes its request log (and with it the ledger) in batches, every second.
LEDGER_BOUND_SECONDS = 10.0
SPEND, REQUEST_LOG = Spend._meta.db_table, RequestLog._meta.db_table
LEDGER_SPENT = f"SELECT sum(nanousd) FROM {SPEND} WHERE key = %s"
LOGGED_COSTS = f"SELECT cost FROM {REQUEST_LOG} WHERE token_name = ANY(%s) AND status = 200"
LOGGED_BUDGET_REFUSALS = (
    f"SELECT count(*) FROM {REQUEST_LOG} WHERE token_name = ANY(%s) AND status = 429 "
    "AND error LIKE 'Budget exceeded%%'"
)


def _scalar(cluster: Cluster, statement: str, *params: object) -> object:
    return cluster.database.query(statement, *params)[0][0]


def test_a_team_budget_stops_both_hosts_at_the_same_total(cluster):
    hosts = _hosts(cluster)
    tokens = {name: cluster.token(name) for name in TEAM_TOKENS}
    one = price_in_nanos(BUDGET_MODEL, *BUDGET_USAGE)
    budget = nanos(float(TEAM_BUDGET_USD))
    # A on the first token, B on it, A on the second, B on it: the team's calls alternate.
    callers = [(host, host.client(raw, fresh=True)) for raw in tokens.values() for host in hosts]
    model = f"old/{BUDGET_MODEL}"
    outcomes: list[Outcome] = []
    for n in range(BUDGET_CALLS_AT_MOST):
        outcomes.append(call(*callers[n % len(callers)], model=model))
        if outcomes[-1].status != 200:
            break
    passed = [o for o in outcomes if o.status == 200]
    # A call is let through while the team's spend is under the budget, and its cost counted
    # (in Redis, atomically) before its answer returns. One at a time, as here, the calls pass
    # until the spend reached the budget: the last one started under it and ended over it, by
    # less than its own price. Calls at once may all start under it: the overshoot is then
    # bounded by what the calls already admitted (in flight together) cost, on every host.
    assert len(passed) == math.ceil(budget / one), outcomes
    assert {o.host for o in passed} == {"A", "B"}
    assert (outcomes[-1].status, outcomes[-1].code) == (429, "budget_exceeded"), outcomes
    total = len(passed) * one
    assert 0 <= total - budget < one
    # Both hosts refuse both tokens now, and say the same total: one count for the team.
    messages = set()
    for host, client in callers:
        refused = call(host, client, model=model)
        assert (refused.status, refused.code) == (429, "budget_exceeded"), refused
        messages.add(refused.text)
    spent = f"{total / 1e9:,.6f}".rstrip("0").rstrip(".")
    assert messages == {
        f"Budget exceeded: team {TEAM!r} has spent ${spent} of its total budget of "
        f"${TEAM_BUDGET_USD}, which does not reset; an admin can raise or lift it."
    }
    # What both hosts wrote to the database: the ledger holds the same total (each host's
    # share, written with its request log), and so does the request log, call by call.
    wait_until(
        lambda: _scalar(cluster, LEDGER_SPENT, f"team:{TEAM}") == total,
        LEDGER_BOUND_SECONDS,
        "the ledger holds what both hosts spent",
    )
    costs = cluster.database.query(LOGGED_COSTS, list(TEAM_TOKENS))
    assert sorted(nanos(cost) for (cost,) in costs) == [one] * len(passed)
    refusals = len(outcomes) - len(passed) + len(callers)
    wait_until(
        lambda: _scalar(cluster, LOGGED_BUDGET_REFUSALS, list(TEAM_TOKENS)) == refusals,
        LEDGER_BOUND_SECONDS,
        "every refusal logged, with its reason",
    )


def test_a_token_revoked_on_a_is_refused_on_b_at_its_next_request(cluster):
    a, b = _hosts(cluster)
    token = cluster.token("revoke-me")
    assert call(b, b.client(token)).status == 200
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


# A routing group of two deployments, imported with `routing import-litellm` on A: `bad`
# answers every call with a 500, `good` answers. The Router's settings make the cooldown
# deterministic: the second failure (allowed_fails 1, counted in Redis for every process)
# cools `bad` down for a minute, far longer than the test; no retries, which would hide
# where a call went.
GROUP = "pair"
GROUP_CONFIG = """\
model_list:
  - model_name: {group}
    litellm_params: {{model: openai/m, api_base: "{bad}/v1", api_key: os.environ/{key}}}
    model_info: {{provider: bad}}
  - model_name: {group}
    litellm_params: {{model: openai/m, api_base: "{good}/v1", api_key: os.environ/{key}}}
    model_info: {{provider: good}}
router_settings: {{allowed_fails: 1, cooldown_time: 60, num_retries: 0}}
"""
# Calls on A until `bad` is cooled down: each picks either deployment at random.
COOLDOWN_CALLS_AT_MOST = 60


def _group_listed(host: Host, token: str) -> bool:
    return all(
        GROUP in {m.id for m in host.client(token, fresh=True).models.list()}
        for _ in range(IN_A_ROW)
    )


# After test_health_check_...: that one counts on the cluster's providers alone, and `bad`
# fails every call it gets.
def test_a_deployment_cooled_down_after_failures_on_a_is_skipped_on_b(cluster):
    a, b = _hosts(cluster)
    token = cluster.token("switch")  # no limits of its own
    bad, good = Upstream("bad").start(), Upstream("good").start()
    try:
        bad.fail_next(500, times=1000)
        config = cluster.tmp / "group.yaml"
        config.write_text(
            GROUP_CONFIG.format(group=GROUP, bad=bad.base_url, good=good.base_url, key=KEY_VARIABLE)
        )
        cluster.routing("import-litellm", str(config), host="A")
        for host in (a, b):
            wait_until(
                lambda h=host: _group_listed(h, token),
                SWITCH_BOUND_SECONDS,
                f"group {GROUP} on every worker of {host.name}",
            )
        (bad_id,) = cluster.database.query(
            "SELECT d.id FROM providers_deployment d JOIN providers_provider p "
            "ON p.id = d.provider_id WHERE p.name = 'bad'"
        )[0]
        cooldown = f"{ROUTER_REDIS_NAMESPACE}:deployment:{bad_id}:cooldown"
        shared = cluster.redis_client()
        try:
            a_client = a.client(token, fresh=True)
            for _ in range(COOLDOWN_CALLS_AT_MOST):
                call(a, a_client, model=GROUP)
                if shared.exists(cooldown):
                    break
            assert shared.exists(cooldown), f"A never cooled bad down: {len(bad.requests)} calls"
            tried = len(bad.requests)
            # B's workers have not called the group yet: their first look at the cooldowns
            # goes to Redis. Each call on a new connection, so both workers answer some.
            b_client = b.client(token, fresh=True)
            answers = [call(b, b_client, model=GROUP) for _ in range(2 * IN_A_ROW)]
            assert {(o.status, o.text) for o in answers} == {(200, "Hello from good")}, answers
            assert len(bad.requests) == tried, "B called the deployment A had cooled down"
            assert shared.exists(cooldown)  # still cooling down: what B saw was the cooldown
        finally:
            shared.close()
    finally:
        bad.stop()
        good.stop()


# What a limited call gets while Redis does not answer, by ROUTING_LIMITS_ON_REDIS_FAILURE:
# refused, or let through uncounted (no rate headers).
WHILE_DOWN = {"closed": (429, "limits_unavailable"), "open": (200, None)}


def _while_redis_is_down(host: Host, token: str) -> None:
    client = host.client(token, fresh=True)
    for _ in range(IN_A_ROW):
        outcome = call(host, client)
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
            outcomes.append(call(host, client))
        refused = {o.host for o in outcomes if o.code == "rate_limit_exceeded"}
        return refused == {"A", "B"}

    wait_until(refused_on_both, REDIS_BACK_BOUND_SECONDS, "limits counted again on A and B")
    return outcomes


def test_redis_stopped_mid_run_each_hosts_failure_mode_holds_and_counting_resumes(cluster):
    hosts = _hosts(cluster)
    token = cluster.token("outage")
    for host in hosts:
        assert call(host, host.client(token)).counted
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
