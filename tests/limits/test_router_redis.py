"""The LiteLLM Router on ROUTING_REDIS_URL: a deployment cooled down by one gateway process is
skipped by another (two real servers, one database, one Redis), how fresh that is, each failure
counted once however many Routers the configuration changes built, usage-based routing's
counts reaching Redis, and calls answered promptly while Redis hangs or is closed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings as dj

from gateway.services import token_create
from providers import services
from providers.models import Deployment, RoutingGroup
from providers.routing import live, llm
from providers.services import DeploymentSpec as D
from tests.conftest import shared_database_url
from tests.gateway.test_gateway import gateway  # noqa: F401 - the uvicorn fixture
from tests.limits.test_rpm import REDIS_URL

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
HI = [{"role": "user", "content": "hi"}]
PREFIX = llm.ROUTER_REDIS_NAMESPACE + ":"


@pytest.fixture
def shared_redis(settings):
    r = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    r.ping()  # bin/test starts Redis where it is missing: a failure here is real
    # Deployment ids repeat across tests: an earlier test's cooldown must not apply here.
    for key in r.scan_iter(PREFIX + "*"):
        r.delete(key)
    settings.ROUTING_REDIS_URL = REDIS_URL
    return r


@pytest.fixture
def group(upstream_factory, make_provider):
    """Group `g`: a deployment on `bad`, which answers every call with a 500, and one on
    `good`. One failure is allowed, the second cools `bad` down for a minute."""
    bad, good = upstream_factory("bad"), upstream_factory("good")
    good.reply_text = "from good"
    bad.fail_next(500, times=1000)
    make_provider(name="pbad", base_url=bad.base_url + "/v1")
    make_provider(name="pgood", base_url=good.base_url + "/v1")
    services.group_save(name="g", deployments=[D("pbad", "m"), D("pgood", "m")])
    services.router_settings_update(allowed_fails=1, cooldown_time=60, num_retries=0)
    bad_id = Deployment.objects.get(provider__name="pbad").id
    return bad, good, bad_id


def _cooldown_key(deployment_id: int) -> str:
    return f"{PREFIX}deployment:{deployment_id}:cooldown"


def _ask(base: str, token: str) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        json={"model": "g", "messages": HI},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _gateway_processes(count: int, **extra_env: str):
    """`count` gateway servers, each its own uvicorn process on the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": shared_database_url(),
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback, like bin/run (and test keys are only accepted there).
        "ROUTING_HTTPS_REDIRECT": "0",
        "ROUTING_PRELOAD_LITELLM": "1",
        **extra_env,
    }
    command = [sys.executable, "-m", "uvicorn", "routing_admin.asgi:application"]
    servers = []
    try:
        for _ in range(count):
            port = _free_port()
            options = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            process = subprocess.Popen([*command, *options], cwd=ROOT, env=env)
            servers.append((f"http://127.0.0.1:{port}", process))
        # Ready once LiteLLM is loaded: on a loaded 2-core machine that takes a minute or more.
        deadline = time.monotonic() + 600
        for base, process in servers:
            while True:
                try:
                    health = httpx.get(base + "/healthz", timeout=10)
                    if health.status_code == 200 and health.json()["litellm"] == "loaded":
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and process.poll() is None, "not ready"
                time.sleep(0.2)
        yield [base for base, _ in servers]
    finally:
        for _, process in servers:
            process.terminate()
        for _, process in servers:
            process.wait(30)


def test_a_deployment_cooled_down_on_one_server_is_skipped_on_another(shared_redis, group):
    bad, good, bad_id = group
    _, token = token_create(name="app")
    with _gateway_processes(2, ROUTING_REDIS_URL=REDIS_URL) as (a, b):
        # A: calls until its failures on `bad` cool it down (calls go to either deployment).
        for _ in range(60):
            _ask(a, token)
            if shared_redis.exists(_cooldown_key(bad_id)):
                break
        assert shared_redis.exists(_cooldown_key(bad_id)), "A never cooled `bad` down"
        # allowed_fails=1: the second failure cooled it down, each counted once.
        assert len(bad.requests) == 2
        # B has never called the group: its first look at the cooldowns goes to Redis.
        answers = [_ask(b, token) for _ in range(10)]
        assert [r.status_code for r in answers] == [200] * 10
        assert {r.json()["choices"][0]["message"]["content"] for r in answers} == {"from good"}
        assert len(bad.requests) == 2, "B tried the deployment A had cooled down"


async def _cooldowns(router) -> list[str]:
    from litellm.router_utils.cooldown_handlers import async_get_cooldown_deployments

    return await async_get_cooldown_deployments(router, None)


def test_a_cooldown_reaches_a_router_that_just_looked_within_the_read_interval(shared_redis, group):
    """LiteLLM re-reads Redis for a cooldown it does not hold every
    DEFAULT_COOLDOWN_REDIS_READ_INTERVAL_SECONDS (1 s): that is how stale another process can be."""
    _, _, bad_id = group
    # The watcher: a Router unhooked from LiteLLM's callbacks (as one in another process is),
    # so it can learn of the cooldown only through Redis.
    watcher = live.snapshot().router()
    from litellm.constants import DEFAULT_COOLDOWN_REDIS_READ_INTERVAL_SECONDS as INTERVAL

    live.reset()
    caller = live.snapshot().router()
    assert watcher is not caller

    async def measure() -> tuple[float, float]:
        assert await _cooldowns(watcher) == []
        looked = time.monotonic()
        for _ in range(60):
            with contextlib.suppress(Exception):
                await caller.acompletion(model="g", messages=HI)
            if shared_redis.exists(_cooldown_key(bad_id)):
                break
        written = time.monotonic()
        assert shared_redis.exists(_cooldown_key(bad_id))
        while str(bad_id) not in await _cooldowns(watcher):
            assert time.monotonic() - written < 10, "the cooldown never reached the watcher"
            await asyncio.sleep(0.01)
        seen = time.monotonic()
        return seen - looked, seen - written

    since_look, since_write = asyncio.run(measure())
    print(f"cooldown seen {since_write:.3f} s after written, {since_look:.3f} s after the look")
    # Not before the interval since its last look, then at its next look.
    assert since_look >= INTERVAL * 0.9 or since_write < 0.05
    assert since_write <= INTERVAL + 0.5


def _hooked_routers() -> set[int]:
    """The Routers that LiteLLM's process-wide callback lists call."""
    import litellm
    from litellm import Router

    lists = (
        litellm.input_callback,
        litellm.success_callback,
        litellm._async_success_callback,
        litellm.failure_callback,
        litellm._async_failure_callback,
        litellm.callbacks,
    )
    bound = (getattr(c, "__self__", None) for callbacks in lists for c in callbacks)
    return {id(owner) for owner in bound if isinstance(owner, Router)}


def test_each_failure_counts_once_however_often_the_configuration_changed(
    shared_redis, upstream_factory, make_provider
):
    bad = upstream_factory("bad")
    bad.fail_next(500, times=1000)
    make_provider(name="pbad", base_url=bad.base_url + "/v1")
    services.group_save(name="solo", deployments=[D("pbad", "m")])
    services.router_settings_update(allowed_fails=50, cooldown_time=60, num_retries=0)
    bad_id = Deployment.objects.get(provider__name="pbad").id
    hooked = _hooked_routers()
    for n in range(4):
        token_create(name=f"t{n}")  # a configuration change: the next call builds a new Router
        with pytest.raises(services.ProviderError):
            services.completion(HI, model="solo")
    assert len(bad.requests) == 4
    # Each Router a newer configuration replaced was unhooked, or it would count them again.
    assert int(shared_redis.get(f"{PREFIX}deployment:{bad_id}:allowed_fails")) == 4
    assert _hooked_routers() - hooked == {id(live.last_built().router())}


def test_every_router_of_a_process_shares_one_redis_client(shared_redis, group, settings):
    first = live.snapshot().router()
    token_create(name="change")
    second = live.snapshot().router()
    assert first is not second
    assert first.cache.redis_cache is second.cache.redis_cache is llm.router_redis()
    settings.ROUTING_REDIS_URL = ""
    live.reset()
    assert llm.router_redis() is None
    assert live.snapshot().router().cache.redis_cache is None


def test_usage_based_routing_counts_reach_redis_when_the_router_was_built_off_the_loop(
    gateway,  # noqa: F811
    shared_redis,
    group,
):
    bad, good, _ = group
    bad.reset()  # both deployments answer
    services.router_settings_update(routing_strategy="usage-based-routing-v2")
    # A group test on the dashboard runs in a thread: it builds the Router off the gateway's loop.
    _, token = token_create(name="app")
    assert services.group_test(group=RoutingGroup.objects.get(name="g")).ok
    router = live.snapshot().router()
    assert not llm._sync_loop(router).is_running()
    assert _ask(gateway, token).status_code == 200
    assert live.snapshot().router() is router
    # Its counts are now pushed to Redis, and everyone else's read, by a task on a running loop.
    assert llm._sync_loop(router).is_running()
    deadline = time.monotonic() + 10
    while not list(shared_redis.scan_iter(PREFIX + "*:rpm:*")):
        assert time.monotonic() < deadline, "usage-based routing never pushed its counts"
        time.sleep(0.02)


@pytest.fixture(params=["hung", "closed"])
def dead_redis(request):
    """A Redis address that accepts connections and never answers, or a closed port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if request.param == "closed":
        listener.close()
        yield f"redis://127.0.0.1:{port}/0"
        return
    listener.listen(256)
    listener.settimeout(0.1)
    held, stop = [], threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{port}/0"
    stop.set()
    listener.close()
    for conn in held:
        conn.close()


def test_calls_are_answered_promptly_while_redis_does_not_answer(
    gateway,  # noqa: F811
    group,
    dead_redis,
    settings,
):
    bad, good, _ = group
    settings.ROUTING_REDIS_URL = dead_redis
    _, token = token_create(name="app")
    took = []
    for _ in range(12):
        started = time.monotonic()
        _ask(gateway, token)
        took.append(time.monotonic() - started)
    print("call durations with Redis away:", [round(t, 2) for t in took])
    assert live.last_built().router().cache.redis_cache is llm.router_redis()
    # LiteLLM's defaults (5 s to connect, 5 s to answer) would hold the first call 10 s or more.
    assert max(took) < 2.5, took
    # Cooldowns fall back to this process's memory: `bad` was tried only until cooled down.
    assert len(bad.requests) == 2
    assert len(good.requests) == 10
