"""Figures from samples, and what the kernel knows about a process: CPU time and peak
memory read from /proc, so a process is measured from outside without psutil."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least q of the samples at or below it."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    # The epsilon keeps 0.99 * 100 (98.99999...) at rank 99.
    rank = max(math.ceil(q * len(ordered) - 1e-9) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def latency(samples: list[float]) -> dict[str, float]:
    """Seconds in, milliseconds out."""
    return {
        "n": len(samples),
        "median_ms": statistics.median(samples) * 1000 if samples else float("nan"),
        "p90_ms": percentile(samples, 0.90) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one live process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    """Direct children of a process (every thread's list, as /proc keeps them per thread)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            todo += children(current)
        except OSError:
            continue
    return pids


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def socket_owner(pids: list[int], server_port: int, client_port: int) -> int | None:
    """Which of `pids` holds the server end of the loopback TCP connection that our client
    opened from `client_port`: how a keep-alive connection is tied to a worker process."""
    wanted = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if (parts[1], parts[2]) == wanted:
            inode = parts[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) == target:
                        return pid
                except OSError:
                    continue
    return None
