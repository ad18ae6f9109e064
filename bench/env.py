"""The bench's own world: a temporary directory with its own database and generated keys,
never the project's db.sqlite3 or .env, and the configuration every arm shares."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "hi"}]
PROVIDER, PROVIDER_B, MODEL = "bench", "bench-b", "bench-model"
API_KEY = "sk-fake-bench-key-0000000"
# The every-feature arms' token: its rpm limit is counted at every call, never refused (a run
# makes far fewer calls in any minute), and it may call these models only (not "all models").
LIMITED_RPM = 1_000_000
ALLOWED_MODELS = ["default", f"{PROVIDER}/{MODEL}"]
# What turns metrics on in the every-feature arms (observability/setup.py), and scrapes them.
METRICS_TOKEN = "bench-metrics-token-0000000"


@dataclass
class World:
    tmp: Path
    env: dict[str, str]
    mock_url: str = ""
    token: str = ""
    limited_token: str = ""
    params: dict = field(default_factory=dict)

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_env(tmp: Path, database_url: str) -> dict[str, str]:
    """The environment of every process of the bench (this one, drivers, workers): real
    variables, so the project's .env (read by settings, never overriding) has no say."""
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "SECRET_KEY": "bench-only-" + Fernet.generate_key().decode(),
        "ROUTING_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        # Plain HTTP on loopback: no redirect to https.
        "ROUTING_HTTPS_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ROUTING_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        # Only the change signal may carry a switch, so propagation measures the signal.
        "ROUTING_CONFIG_RECHECK_SECONDS": "3600",
        "ROUTING_PRELOAD_LITELLM": "1",
        "LOG_LEVEL": "WARNING",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "PYTHONPATH": str(ROOT),
    }


def stop_process(process: subprocess.Popen | None, grace: float) -> None:
    """Ask a child to end, wait `grace` seconds, then kill it: gone when this returns."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): a child of the bench ends when the bench does, even when
    the bench is killed, so no server or mock outlives a run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def create_world() -> World:
    tmp = Path(tempfile.mkdtemp(prefix="routing-bench-"))
    env = make_env(tmp, f"sqlite:///{tmp / 'bench.sqlite3'}")
    setup_django(env)
    return World(tmp=tmp, env=env)


def configure(world: World, mock_url: str) -> None:
    """Two providers on the mock (B answers under /b/), A the default, a gateway token for
    all models, and one with a model allow-list and a requests-per-minute limit: all through
    the service layer, as an admin would."""
    from gateway.services import token_create
    from providers import services
    from providers.routing import live

    provider = services.provider_create(
        name=PROVIDER, kind="openai", base_url=mock_url + "/v1", api_key=API_KEY, actor="bench"
    )
    services.provider_create(
        name=PROVIDER_B, kind="openai", base_url=mock_url + "/b/v1", api_key=API_KEY, actor="bench"
    )
    services.default_model_set(provider=provider, model=MODEL, actor="bench")
    _, world.token = token_create(name="bench", actor="bench")
    _, world.limited_token = token_create(
        name="bench-every-feature", rpm=LIMITED_RPM, allowed_models=ALLOWED_MODELS, actor="bench"
    )
    world.mock_url = mock_url
    world.params = dict(live.snapshot().resolve(None).params)


def switch(to_b: bool) -> None:
    from providers import services
    from providers.models import Provider

    provider = Provider.objects.get(name=PROVIDER_B if to_b else PROVIDER)
    services.default_model_set(provider=provider, model=MODEL, actor="bench")
