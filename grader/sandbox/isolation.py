"""The limits a sandboxed child sets on itself just before the student's code runs.

The walls themselves (namespaces, the allow-list of what the job sees, the unprivileged uid)
are put up from outside by bubblewrap before this process starts (`grader.run.walls`). What is
left to do in here is what only makes sense once the grader's own start-up is over: the
CPU-time limit counts from now (so a loaded machine, or a slow TensorFlow import, costs the
student nothing), and the process, memory, file-size and core limits hold for everything the
student's code starts. Nothing the student does can raise them again.
"""

from __future__ import annotations

import ctypes
import resource

from grader.wire import Isolation

PR_SET_NO_NEW_PRIVS = 38


def apply_limits(cfg: Isolation) -> None:
    """Set the job's limits on this process (inherited by its children)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    cpu = int(spent + cfg.cpu_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    mem = cfg.address_space_mb * 1024 * 1024
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = cfg.file_size_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NPROC, (cfg.nproc, cfg.nproc))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
