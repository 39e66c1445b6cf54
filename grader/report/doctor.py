"""`grader doctor`: what this machine allows the sandbox to do, and what that means."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from grader.run import walls

__all__ = ["diagnose"]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return "absent"


def _bwrap_version(exe: str) -> str:
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "does not start"
    return done.stdout.strip() or done.stderr.strip()


def diagnose() -> tuple[list[tuple[str, str]], str, bool]:
    """(facts as (what, found) rows, the verdict in words, whether a class can be graded)."""
    rows = [("python", f"{sys.version.split()[0]} at {sys.executable}")]
    root = os.geteuid() == 0
    rows.append(("grader runs as", "root" if root else f"uid {os.geteuid()} (an ordinary user)"))
    exe = walls.bwrap()
    rows.append(("bubblewrap", f"{exe} ({_bwrap_version(exe)})" if exe else "not installed"))
    rows.append(
        (
            "user namespaces",
            f"user.max_user_namespaces = {_read('/proc/sys/user/max_user_namespaces')}",
        )
    )
    clone = _read("/proc/sys/kernel/unprivileged_userns_clone")
    if clone != "absent":
        rows.append(("unprivileged user namespaces", "allowed" if clone == "1" else "refused"))
    cgroup = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1 or hybrid"
    rows.append(("cgroups", f"{cgroup} (not needed: the pid namespace ends a job)"))
    why = walls.probe()
    rows.append(("sandbox test", "passed" if why is None else f"failed: {why}"))
    if why is None:
        from grader.run.warm import warm_available

        warm = warm_available()
        rows.append(
            (
                "warm workers",
                "available: TensorFlow imported once per worker, each job forked behind its "
                "own walls"
                if warm is None
                else f"unavailable ({warm}): every job starts a fresh interpreter (cold runner)",
            )
        )
    if why is None:
        who = "a fresh unprivileged uid per job" if root else "your own uid inside a user namespace"
        verdict = (
            f"Student code runs behind bubblewrap's walls, as {who}: it sees only the "
            f"interpreter, its libraries and its own inputs; no network; one kill ends every "
            f"process of a job. `grader grade` will run."
        )
        return rows, verdict, True
    verdict = (
        "Student code cannot be isolated on this machine. `grader grade` refuses to run a class "
        "(unless --unsafe-no-sandbox, which runs student code with your rights); `grader check` "
        "still runs a student's own file and says it ran without a sandbox. To fix: install "
        "bubblewrap (apt-get install bubblewrap) and allow user namespaces "
        "(sysctl user.max_user_namespaces=10000; on Ubuntu 24.04 and later also "
        "kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for bwrap)."
    )
    return rows, verdict, False
