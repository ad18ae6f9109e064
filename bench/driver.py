"""One in-process arm in a process of its own: `python -m bench.driver ARM`.

The bench sends one JSON command a line on stdin and reads one JSON answer (a line that
starts with MARK, as a library may print on stdout too). A process per arm means the
CPU time and peak memory of an arm are its own, not the mock's or another arm's.
  httpx     raw HTTP to the mock (the floor of the in-process arms)
  direct    litellm.completion with the parameters the service layer builds
  service   providers.services.completion, configuration in the database
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .env import die_with_parent

MARK = "BENCH:"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_block(call: Callable[[], object], seconds: float, concurrency: int) -> dict:
    """Calls for `seconds`, `concurrency` threads at a time; each call's latency, the wall
    time and the process's CPU time over the block."""
    samples: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        mine = []
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t0)
        with lock:
            samples.extend(mine)

    cpu0, started = _cpu(), time.perf_counter()
    if concurrency == 1:
        worker()
    else:
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return {"samples": samples, "wall": time.perf_counter() - started, "cpu": _cpu() - cpu0}


def _httpx_arm(mock_url: str) -> Callable[[], object]:
    import httpx

    from .env import MESSAGES, MODEL

    client = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    body = json.dumps({"model": MODEL, "messages": MESSAGES}).encode()
    headers = {"authorization": "Bearer x", "content-type": "application/json"}
    url = mock_url + "/v1/chat/completions"

    def call() -> object:
        response = client.post(url, content=body, headers=headers)
        # Parsed like every other arm parses it.
        return response.json()

    return call


def _direct_arm(params: dict) -> Callable[[], object]:
    from providers.routing.llm import litellm

    from .env import MESSAGES

    lib = litellm()
    return lambda: lib.completion(messages=MESSAGES, **params)


def _service_arm() -> tuple[Callable[[], object], Callable[[int], list[float]]]:
    import django

    django.setup()
    from providers import services
    from providers.models import Provider

    from .env import MESSAGES, PROVIDER

    def cold(n: int) -> list[float]:
        """The first call right after a configuration change made by this process."""
        samples = []
        for i in range(n):
            provider = Provider.objects.get(name=PROVIDER)
            services.provider_update(provider=provider, timeout=30 + i % 2, actor="bench")
            t0 = time.perf_counter()
            services.completion(MESSAGES)
            samples.append(time.perf_counter() - t0)
        return samples

    return (lambda: services.completion(MESSAGES)), cold


def main(arm: str) -> None:
    config = json.loads(os.environ["BENCH_DRIVER"])
    cold = None
    if arm == "httpx":
        call = _httpx_arm(config["mock_url"])
    elif arm == "direct":
        call = _direct_arm(config["params"])
    else:
        call, cold = _service_arm()
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "run":
            answer = run_block(call, command["seconds"], command["concurrency"])
        elif command["op"] == "cold" and cold is not None:
            answer = {"samples": cold(command["n"])}
        elif command["op"] == "rss":
            answer = {"peak_rss_mb": _peak_rss_mb()}
        else:
            break
        print(MARK + json.dumps(answer), flush=True)


class Driver:
    """The bench's handle on a driver process."""

    def __init__(self, arm: str, env: dict[str, str], config: dict) -> None:
        self.arm = arm
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.driver", arm],
            preexec_fn=die_with_parent,
            cwd=Path(__file__).resolve().parent.parent,
            env={**env, "BENCH_DRIVER": json.dumps(config)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **command: object) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"driver {self.arm!r} exited ({self.process.wait()})")
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


if __name__ == "__main__":
    main(sys.argv[1])
