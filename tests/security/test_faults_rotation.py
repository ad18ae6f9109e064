"""Key rotation interrupted half-way (the process killed with SIGKILL) and run again: every
secret readable under the new key alone, none lost. Runs on SQLite and on PostgreSQL: each
provider is rotated in its own transaction, which a killed process never commits."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as dj

from providers import crypto
from providers.models import Provider
from tests.conftest import SECRET
from tests.security.test_faults_concurrency import server_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

# Runs rotate-key in a child process that kills itself (SIGKILL: no cleanup, no rollback
# code, exactly like a power cut) at the point the test names.
ROTATE_AND_DIE = """
import os, signal, sys
import django
django.setup()
from django.db import connection
from providers import crypto
from providers.services import keys

point, count = sys.argv[1], int(sys.argv[2])
seen = 0

def die_on(hit):
    global seen
    if hit:
        seen += 1
        if seen == count:
            os.kill(os.getpid(), signal.SIGKILL)

def after_update(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if point == "after-update":
        # The row is rewritten but its transaction not yet committed.
        die_on(sql.startswith('UPDATE "providers_provider"'))
    return result

real_rotate = crypto.rotate

def rotate(token):
    if point == "mid-row":
        die_on(True)
    return real_rotate(token)

crypto.rotate = rotate
with connection.execute_wrapper(after_update):
    keys.rotate_keys(actor="doomed")
sys.exit("the rotation was meant to be killed")
"""
HEADERS = {"X-Org": "org-secret"}


@pytest.fixture
def secrets_stored(make_provider):
    """Five providers: keys and headers on most, one with nothing to rotate."""
    expected = {}
    for i in range(4):
        key = f"{SECRET}-{i}"
        make_provider(name=f"p{i}", api_key=key, headers=HEADERS)
        expected[f"p{i}"] = (key, HEADERS)
    make_provider(name="local", kind="ollama", base_url="http://127.0.0.1:11434", api_key="")
    expected["local"] = ("", {})
    return expected


def _rotate(keys: tuple[str, ...], *args: str) -> subprocess.CompletedProcess:
    env = server_env(ROUTING_ENCRYPTION_KEYS=",".join(keys))
    if args:
        command = [sys.executable, "-c", ROTATE_AND_DIE, *args]
    else:
        command = [sys.executable, "manage.py", "routing", "rotate-key"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def _readable(settings, keys: tuple[str, ...]) -> dict:
    settings.ROUTING_ENCRYPTION_KEYS = keys
    return {p.name: (p.get_api_key(), p.get_headers()) for p in Provider.objects.all()}


@pytest.mark.parametrize(
    "point,count",
    [("after-update", 2), ("mid-row", 4)],
    ids=["killed-between-update-and-commit", "killed-between-two-columns-of-a-row"],
)
def test_rotation_killed_half_way_then_rerun_leaves_every_secret_readable(
    secrets_stored, settings, point, count
):
    old = tuple(dj.ROUTING_ENCRYPTION_KEYS)
    new = (Fernet.generate_key().decode(), *old)
    killed = _rotate(new, point, str(count))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Half-way: some rows under the new key, some still under the old; all readable.
    assert _readable(settings, new) == secrets_stored
    stale = [
        crypto.needs_rotation(p.api_key_ciphertext)
        for p in Provider.objects.all()
        if p.api_key_ciphertext
    ]
    assert any(stale) and not all(stale)
    rerun = _rotate(new)
    assert rerun.returncode == 0, rerun.stderr
    # The old key can go: everything is readable under the new one alone.
    assert _readable(settings, new[:1]) == secrets_stored


def test_old_key_retired_after_an_interrupted_rotation_loses_nothing_once_put_back(
    secrets_stored, settings
):
    old = tuple(dj.ROUTING_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    killed = _rotate((new_key, *old), "after-update", "2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = {p.name: (p.api_key_ciphertext, p.headers_ciphertext) for p in Provider.objects.all()}
    # The operator retires the old key too early: rotate-key refuses to touch what it
    # cannot read, and says so, instead of blanking it.
    early = _rotate((new_key,))
    assert early.returncode == 1
    assert "left unchanged" in early.stderr
    after = {p.name: (p.api_key_ciphertext, p.headers_ciphertext) for p in Provider.objects.all()}
    assert after == before
    # With the old key back, a rerun finishes the job and nothing was lost.
    assert _rotate((new_key, *old)).returncode == 0
    assert _readable(settings, (new_key,)) == secrets_stored
