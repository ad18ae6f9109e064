"""Where the workers of one server keep their metrics: prometheus_client's multiprocess mode.

Each worker (`uvicorn --workers N`) counts in memory-mapped files of its own, in one directory
that every worker of the same server shares; /metrics, answered by any worker, adds them up.
The directory must be new for each server run, or a restart would add the last run's counts
to this one's, and must not be shared with another server.

PROMETHEUS_MULTIPROC_DIR, when set, is used as it is: whoever sets it empties it before the
server starts (a Kubernetes emptyDir, a systemd RuntimeDirectory, `rm -rf` in the start
script). Otherwise the app picks one below the temporary directory, named after the server:

- a worker that uvicorn's supervisor started (`--workers N`: Python's multiprocessing) is
  named after that supervisor, its process id and start time, so every worker of the server
  finds the same directory, and a worker the supervisor restarts after a crash finds it too;
- a process on its own (`bin/run`, `uvicorn` without --workers) is named after itself.

A restart is a new supervisor, so a new directory: counts start from zero, as Prometheus
expects after a restart. The worker that creates a directory removes those of servers that
no longer run; each worker starting drops the gauges of dead workers of its own server.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import stat
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

ENV = "PROMETHEUS_MULTIPROC_DIR"
NOT_OURS = (
    "{path} belongs to another user or is not a directory, so the metrics of this server "
    "cannot be kept there safely; set PROMETHEUS_MULTIPROC_DIR to an empty directory of "
    "this user's."
)


def _started(pid: int) -> str:
    """When a process started (clock ticks since boot, Linux), or "" where that is unknown:
    with the pid, it names a process even after its pid is reused."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat_line.rpartition(")")[2].split()[19]


def _alive(name: str) -> bool:
    pid_text, _, started = name.partition("-")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    return _started(pid) == started


def server_name() -> str:
    """`<pid>-<start>` of the server this process belongs to (see the module's docstring)."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid else os.getpid()
    return f"{pid}-{_started(pid)}"


def _own_dir(path: Path) -> None:
    """Create `path` (mode 0700) unless it exists; refuse it unless it is this user's."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ImproperlyConfigured(NOT_OURS.format(path=path))


def choose() -> str:
    """Set PROMETHEUS_MULTIPROC_DIR for this process (before prometheus_client is imported)
    and return it."""
    given = os.environ.get(ENV, "").strip()
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        return given
    root = Path(tempfile.gettempdir()) / f"routing-admin-metrics-{os.getuid()}"
    _own_dir(root)
    here = root / server_name()
    try:
        here.mkdir(mode=0o700)
    except FileExistsError:
        _own_dir(here)
    else:
        # The first worker of this server: the directories of servers gone are left-overs.
        for other in root.iterdir():
            if other != here and not _alive(other.name):
                shutil.rmtree(other, ignore_errors=True)
    os.environ[ENV] = str(here)
    return str(here)


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges (queue depth, configuration version) of workers that died: their
    counters stay, since what they counted happened."""
    from prometheus_client import multiprocess

    pids = set()
    for file in Path(path).glob("gauge_live*_*.db"):
        pid = file.stem.rpartition("_")[2]
        if pid.isdigit() and int(pid) != os.getpid():
            pids.add(int(pid))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            continue
