"""Waiting for a job within its limits, from outside: the same for the cold runner (the job is
the grader's own child) and the warm one (the job is forked by a worker).

CPU time is the kernel's limit inside the job, counted from the end of the grader's start-up;
memory is the resident set of the job's processes, sampled through `/proc`; the wall clock is
only a backstop, and a job that uses no CPU at all for a minute is waiting for something.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

from grader.run import procs
from grader.wire import Limits

__all__ = ["Ended", "watch"]

POLL_S = 0.05
WALL_FACTOR = 3  # the wall-clock backstop: 3x the CPU-time limit ...
START_ALLOWANCE_S = 60  # ... plus the grader's own start-up on a loaded machine
JOB_CPU_SLACK_S = 1.0  # the whole job's CPU may exceed one process's limit by this much
IDLE_S = 60  # a job that uses no CPU at all for this long is waiting for something
PRIVATE_EVERY = 5  # the job's private memory (smaps) is read every 5th poll: it costs more


class Ended:
    """How a job ended: the limit it broke (if any), its exit status, its peak memory, and its
    CPU time as the kernel accounts it for the job's processes."""

    def __init__(self) -> None:
        self.status, self.message = "", ""
        self.peak, self.cpu_s, self.cpu_ratio = 0.0, 0.0, 0.0
        self.private_peak = 0.0  # memory of the job's own, beyond pages shared with a warm worker
        self.returncode: int | None = None

    def reap(self, proc: subprocess.Popen, flags: int) -> bool:
        """Collect the job's exit status without blocking (WNOHANG) or blocking (0), and its
        CPU time as the kernel counted it (the job's processes are all reaped inside its pid
        namespace, so they count too): exact, where the samples may be late on a busy grader."""
        pid, status, usage = os.wait4(proc.pid, flags)
        if pid == 0:
            return False
        proc.returncode = self.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_s = max(self.cpu_s, usage.ru_utime + usage.ru_stime)
        return True


def watch(
    limits: Limits,
    started: float,
    ended: Ended,
    *,
    done: Callable[[], bool],
    pids: Callable[[], list[int]],
    memory_pids: Callable[[list[int]], list[int]] | None = None,
) -> None:
    """Wait until `done()` (which sets `ended.returncode`) within the job's limits; `ended`
    says which limit it broke, if any. `pids()`: the job's processes now; `memory_pids`: those
    of them whose memory counts (a warm job's own init and its parent are the worker's forks:
    their pages are the worker's, not the job's). Defaults to all."""
    backstop = WALL_FACTOR * limits.timeout_s + START_ALLOWANCE_S
    last_cpu, last_progress, polls = 0.0, started, 0
    while not done():
        time.sleep(POLL_S)
        polls += 1
        found = pids()
        counted = memory_pids(found) if memory_pids else found
        used = procs.usage(found)
        rss = procs.usage(counted).rss_mb if memory_pids else used.rss_mb
        ended.peak = max(ended.peak, rss)
        if polls % PRIVATE_EVERY == 1:
            ended.private_peak = max(ended.private_peak, procs.private_mb(counted))
        ended.cpu_s = max(ended.cpu_s, used.cpu_s)
        ended.cpu_ratio = max(ended.cpu_ratio, used.cpu_ratio)
        if rss > limits.memory_mb:
            ended.status, ended.message = "memory", _MEMORY.format(limits.memory_mb)
            return
        if used.cpu_limit and used.cpu_s > used.cpu_limit + JOB_CPU_SLACK_S:
            # RLIMIT_CPU holds per process: many processes together are held here, to the
            # same budget (the child's own start-up plus the limit) for the whole job.
            ended.status, ended.message = "timeout", _CPU.format(limits.timeout_s)
            return
        now = time.perf_counter()
        if abs(used.cpu_s - last_cpu) > 0.005:  # any change: some process ran (or ended)
            last_cpu, last_progress = used.cpu_s, now
        elif now - last_progress > IDLE_S:
            ended.status, ended.message = "timeout", _IDLE.format(IDLE_S)
            return
        if now - started > backstop:
            ended.status, ended.message = "timeout", _WALL.format(backstop)
            return
    # SIGXCPU comes only from the kernel's CPU limit; a SIGKILL is the limit's hard end only when
    # the job had used its CPU time (else it is a crash).
    code = ended.returncode
    cpu_limit = code in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    killed = code in (-signal.SIGKILL, 137)
    if cpu_limit or (killed and ended.cpu_ratio > 0.9):
        ended.status, ended.message = "timeout", _CPU.format(limits.timeout_s)


_CPU = (
    "your code used {:g} s of CPU time (the limit) and was stopped; look for a loop that never "
    "ends, or too many iterations"
)
_WALL = (
    "your code was still running after {:g} s of wall-clock time (the backstop) and was "
    "stopped; look for code that waits (input(), sleep) or a loop that never ends"
)
_IDLE = (
    "your code used no CPU for {:g} s and was stopped: it was waiting (input(), sleep, a "
    "window that never opens); graded code must run without anyone at the keyboard"
)
_MEMORY = "your code used more than {} MB of memory (the limit) and was stopped (out of memory)"
