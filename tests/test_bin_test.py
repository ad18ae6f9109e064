"""`bin/test -h` explains the test command and starts nothing (no uv sync, no apt-get)."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_markers_and_options_without_running_anything(tmp_path, flag):
    called = tmp_path / "called"
    for tool in ("uv", "apt-get", "sudo", "pytest", "pg_ctlcluster"):
        fake = tmp_path / tool
        fake.write_text(f'#!/bin/sh\necho {tool} "$@" >> {called}\nexit 1\n')
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    result = subprocess.run(
        [str(ROOT / "bin" / "test"), flag], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert not called.exists(), called.read_text()
    out = result.stdout
    assert out.startswith("Usage: bin/test")
    for needle in ("browser", "live", "-k completion", "PostgreSQL", "env -u DATABASE_URL"):
        assert needle in out, needle
    assert result.stderr == ""
