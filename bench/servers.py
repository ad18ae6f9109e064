"""The HTTP servers under test: this project's gateway (uvicorn, N workers) and LiteLLM's
own proxy (in a virtual environment of its own, installed on request), both on 127.0.0.1
in front of the same mock with the same model list."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import stats
from .env import METRICS_TOKEN, ROOT, World, die_with_parent, stop_process

PROXY_DIR = ROOT / ".bench" / "litellm-proxy"
MASTER_KEY = "sk-bench-master-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    workers: int
    process: subprocess.Popen
    port: int
    token: str
    log: Path
    # Where the token's rpm limit is counted: "" (no limit), "database" or "redis". A gateway
    # with a limit runs with every feature on: allow-list, limit, request log, metrics.
    limits: str = ""
    worker_pids: list[int] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "content-type": "application/json"}

    def pids(self) -> list[int]:
        return stats.tree(self.process.pid)

    def cpu_seconds(self) -> float:
        return stats.tree_cpu_seconds(self.pids())

    def peak_rss_mb(self) -> dict[str, float]:
        """The largest serving process's high-water mark, and the sum over the tree."""
        peaks = []
        for pid in self.pids():
            try:
                peaks.append(stats.peak_rss_mb(pid))
            except OSError:
                continue
        return {"peak_rss_mb": max(peaks), "tree_peak_rss_mb": sum(peaks)}

    def stop(self) -> None:
        stop_process(self.process, 20)


# uvicorn's event loop and HTTP parser: "standard" is what `uvicorn[standard]` (a dependency)
# gives bin/run and production (uvloop, httptools); "plain" is uvicorn without its extras.
STACKS = {
    "standard": ["--loop", "uvloop", "--http", "httptools"],
    "plain": ["--loop", "asyncio", "--http", "h11"],
}


PLAIN_SUFFIX = "-asyncio-h11"


def gateway_name(workers: int, limits: str = "", stack: str = "standard") -> str:
    return (
        f"gateway-{workers}w"
        + (f"-all-{limits}" if limits else "")
        + (PLAIN_SUFFIX if stack == "plain" else "")
    )


def _uvicorn_args(port: int, workers: int, stack: str) -> list[str]:
    return (
        STACKS[stack]
        + [
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        + (
            # A loaded 2-core machine may take a minute to import LiteLLM in every worker: they
            # must not be killed as unhealthy meanwhile.
            ["--workers", str(workers), "--timeout-worker-healthcheck", "300"]
            if workers > 1
            else []
        )
    )


def start_gateway(
    world: World,
    workers: int,
    *,
    limits: str = "",
    redis_url: str = "",
    stack: str = "standard",
    relay: str = "1",
) -> Server:
    """The gateway with `workers` workers on uvicorn's `stack`, and ROUTING_GATEWAY_RELAY set
    to `relay` ("0": every call through LiteLLM). With `limits`, every feature is on: its
    calls carry the token with a model allow-list and an rpm limit, counted in the database
    ("database") or in Redis at `redis_url` ("redis"), and metrics are counted (/metrics);
    without, the token may call all models, no limit, no metrics. The request log is on in
    both (it always is)."""
    port = free_port()
    name = gateway_name(workers, limits, stack)
    log = world.tmp / f"{name}.log"
    metrics = {"ROUTING_METRICS_TOKEN": "", "ROUTING_METRICS_ALLOWED_IPS": ""}
    if limits:
        # A new, empty directory for each server (observability/multiproc.py).
        metrics_dir = world.tmp / f"metrics-{name}"
        metrics_dir.mkdir(mode=0o700)
        metrics = {
            "ROUTING_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "routing_admin.asgi:application"]
        + _uvicorn_args(port, workers, stack),
        preexec_fn=die_with_parent,
        cwd=ROOT,
        env={
            **{k: v for k, v in world.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
            **metrics,
            "ROUTING_SERVE_STATIC": "0",
            "ROUTING_REDIS_URL": redis_url,
            "ROUTING_GATEWAY_RELAY": relay,
            # Should Redis fail mid-run, the run stops on a 429 rather than measure calls
            # that were let through uncounted.
            "ROUTING_LIMITS_ON_REDIS_FAILURE": "closed",
        },
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    token = world.limited_token if limits else world.token
    return Server(name, workers, process, port, token, log, limits)


def install_proxy(version: str) -> tuple[Path | None, str]:
    """LiteLLM's proxy in .bench/litellm-proxy, with uv; the reason when that fails."""
    python = PROXY_DIR / "bin" / "python"
    marker = PROXY_DIR / "installed.txt"
    if marker.exists() and marker.read_text() == version and python.exists():
        return python, ""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        return None, "uv is not on PATH"
    PROXY_DIR.parent.mkdir(exist_ok=True)
    # A folder that ignores itself: nothing of it is ever committed.
    (PROXY_DIR.parent / ".gitignore").write_text("*\n")
    steps = [
        [uv, "venv", "-q", "--allow-existing", "--python", sys.executable, str(PROXY_DIR)],
        [uv, "pip", "install", "-q", "--python", str(python), f"litellm[proxy]=={version}"],
    ]
    for step in steps:
        done = subprocess.run(step, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return None, f"`{' '.join(step[1:3])}` failed: {done.stderr.strip()[-300:]}"
    marker.write_text(version)
    return python, ""


def proxy_config(world: World) -> tuple[dict, dict[str, str]]:
    """The project's own export: the same model list, `default` included, that LiteLLM's
    proxy loads; a master key so that both servers check a bearer token."""
    from providers.services import export_config

    config, secrets = export_config(include_secrets=True)
    config["general_settings"] = {"master_key": MASTER_KEY}
    return config, secrets


def start_proxy(world: World, python: Path, workers: int) -> Server:
    config, secrets = proxy_config(world)
    path = world.tmp / "litellm-config.json"
    # JSON is YAML: LiteLLM reads it with its YAML loader.
    path.write_text(json.dumps(config))
    port = free_port()
    log = world.tmp / f"proxy-{workers}.log"
    env = {
        key: value
        for key, value in world.env.items()
        if key not in {"DATABASE_URL", "PYTHONPATH", "DJANGO_SETTINGS_MODULE"}
    }
    process = subprocess.Popen(
        [str(python.parent / "litellm"), "--config", str(path), "--host", "127.0.0.1"]
        + ["--port", str(port), "--num_workers", str(workers)],
        preexec_fn=die_with_parent,
        cwd=world.tmp,
        env={**env, **secrets, "LITELLM_LOG": "ERROR"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return Server(f"litellm-proxy-{workers}w", workers, process, port, MASTER_KEY, log)


def wait_ready(server: Server, body: bytes, deadline: float) -> str:
    """Ready when several fresh connections in a row (so every worker, likely) answer a real
    completion; the reason when not, by the deadline."""
    import httpx

    in_a_row = 0
    while in_a_row < 4 * server.workers:
        if server.process.poll() is not None:
            return f"exited with {server.process.returncode}: {server.log.read_text()[-500:]}"
        if time.monotonic() > deadline:
            return f"not ready in time: {server.log.read_text()[-500:]}"
        try:
            response = httpx.post(
                server.base_url + "/v1/chat/completions",
                content=body,
                headers={**server.headers, "connection": "close"},
                timeout=60,
            )
            ok = response.status_code == 200
            if response.status_code in (301, 302, 400, 401, 403, 404):
                return f"answered HTTP {response.status_code}: {response.text[:300]}"
            if ok and server.limits and "x-ratelimit-limit-requests" not in response.headers:
                return "answered without rate-limit headers: the limit is not counted"
        except httpx.HTTPError:
            ok = False
        in_a_row = in_a_row + 1 if ok else 0
        if not ok:
            time.sleep(0.25)
    pids = server.pids()
    server.worker_pids = pids if server.workers == 1 else pids[1:]
    return _metrics_counted(server) if server.limits else ""


def _metrics_counted(server: Server) -> str:
    """An every-feature gateway must count its calls in /metrics; the reason when not."""
    import httpx

    response = httpx.get(
        server.base_url + "/metrics",
        headers={"authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=30,
    )
    if response.status_code != 200 or "routing_requests_total" not in response.text:
        return f"/metrics answered HTTP {response.status_code} without routing_requests_total"
    return ""
