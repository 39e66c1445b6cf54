"""The processes of a job, seen from outside through `/proc`: who they are, what they use, and
the one kill that ends them.

Every process of a job descends from the bwrap process the runner started (its pid namespace
has no way out: an orphan is adopted by the namespace's init, itself bwrap's child), so the
descendants of that pid are the job. Killing them with SIGKILL, the namespace's init among them,
ends the namespace and everything in it; a process ptrace-stopped by the student dies as well.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

__all__ = [
    "Usage",
    "children",
    "descendants",
    "kill_found",
    "kill_tree",
    "kill_uid",
    "of_uid",
    "private_mb",
    "usage",
]

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def children() -> dict[int, list[int]]:
    """Every process's children (one scan of /proc)."""
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                found.setdefault(int(fields[1]), []).append(int(entry))
    return found


def descendants(root: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """`root` and every process below it (one scan of /proc, unless `tree` is given)."""
    children_of = children() if tree is None else tree
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children_of.get(pid, ()))
    return out


class Usage:
    """Resident memory of a set of processes, and how close any of them came to its own
    CPU-time limit (RLIMIT_CPU, as the kernel reports it in /proc/PID/limits)."""

    def __init__(self) -> None:
        self.rss_mb = 0.0
        self.cpu_s = 0.0  # CPU time of the processes and of the children they have reaped
        self.cpu_ratio = 0.0  # max over processes of CPU used / its soft RLIMIT_CPU
        self.cpu_limit = 0.0  # the largest finite soft RLIMIT_CPU among them (0: none set)


def usage(pids: list[int]) -> Usage:
    found = Usage()
    for pid in pids:
        fields = _stat(pid)
        if fields is None:
            continue
        found.rss_mb += int(fields[21]) * _PAGE / (1024 * 1024)
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        found.cpu_s += cpu + (int(fields[13]) + int(fields[14])) / _TICK
        limit = _cpu_limit(pid)
        if limit:
            found.cpu_ratio = max(found.cpu_ratio, cpu / limit)
            found.cpu_limit = max(found.cpu_limit, limit)
    return found


def _cpu_limit(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Max cpu time"):
                    soft = line.split()[3]
                    return None if soft == "unlimited" else float(soft)
    except (OSError, IndexError, ValueError):
        return None
    return None


def kill_tree(root: int, uid: int | None = None) -> None:
    """SIGKILL `root` and all its descendants, then (a fresh uid per job, as root) every process
    left with the job's uid; repeated until none is left."""
    _kill_until_gone(lambda: descendants(root) + (of_uid(uid) if uid is not None else []))


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (a uid of the grader's own, never a person's)."""
    _kill_until_gone(lambda: of_uid(uid))


def kill_found(find: Callable[[], list[int]]) -> None:
    """SIGKILL whatever `find()` returns, again until it returns no live process."""
    _kill_until_gone(find)


def _kill_until_gone(find: Callable[[], list[int]]) -> None:
    for _ in range(5):
        alive = [p for p in find() if _stat(p) is not None]
        if not alive:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def of_uid(uid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    out.append(int(entry))
            except OSError:
                continue
    return out


def private_mb(pids: list[int]) -> float:
    """Memory that is the processes' own (private pages, resident or not shared): what a job
    forked from a warm worker costs beyond the pages it shares with the worker. 0 for a
    process whose map cannot be read."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith(("Private_Clean:", "Private_Dirty:")):
                        total_kb += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total_kb / 1024
