"""The walls around a job: bubblewrap, run by an unprivileged uid, with an allow-list of mounts.

Why bubblewrap rather than our own `unshare` calls: it is small, audited, packaged by Debian
(`bubblewrap`, security updates) and does exactly this job, unprivileged: user, pid, mount,
network, ipc and uts namespaces, a root file system built from an allow-list, `--die-with-parent`
and `--new-session`. Our own code then only decides *what* a job may see.

The rules, whether the grader runs as root or as an ordinary user:
* bwrap is always run by an unprivileged uid: as root, `grader.run.launch` first drops to a
  fresh uid for the job (root running bwrap stays host root inside, merely without capabilities);
* a job sees the interpreter, its libraries and the grader's sandbox side read-only, its inputs
  read-only, and size-capped private tmpfs for its working folder, `/tmp`, `/dev/shm` and
  `/var/tmp`; a private `/proc`; nothing else (no course, no other student, no output folder, no
  home, no `/run`), and never a data file the held-out split could be rebuilt from;
* every process of the job lives in the job's pid namespace: killing its init ends them all;
* it writes nothing to the host: its inputs arrive as file copies (`--file`), its results leave
  through a pipe the parent reads with a size cap.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["INNER_UID", "JOB_ROOT", "Walls", "bwrap", "probe", "readable_paths"]

INNER_UID = 1000  # the uid the job sees; on the host it is the uid that ran bwrap
JOB_ROOT = "/job"  # inputs under /job/in (read-only), the working folder /job/work
GRADER_PACKAGE = Path(__file__).resolve().parent.parent


@functools.cache
def bwrap() -> str | None:
    """The bubblewrap binary, or None."""
    return shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )


@dataclass(frozen=True)
class Walls:
    """What one job may see and use.

    Args:
        readonly: host paths bound read-only at the same path (interpreter, libraries).
        hidden: files or folders under those paths the job must not see (data sets).
        files: (memfd, path inside) of the inputs copied in, read-only.
        work_mb: size of the job's working folder (a tmpfs). Defaults to `1024`.
        tmp_mb: size of `/tmp` (also `/var/tmp`). Defaults to `256`.
        shm_mb: size of `/dev/shm`. Defaults to `64`.
        env: the job's whole environment.
        seccomp: a memfd holding the job's seccomp filter (`grader.run.seccomp`), or None.
        worker: the walls of a warm worker (`grader.run.warm`) instead of one job's: the same
            allow-list, but one user namespace only (bwrap's second one, made for `--uid` and
            `--disable-userns`, would lock the mounts and forbid the job namespaces the worker
            builds for each job), no inputs, every place a job may write left for the worker to
            cover with a fresh tmpfs per job, and the rest of the root read-only. Defaults to
            `False`.
    """

    readonly: tuple[str, ...]
    hidden: tuple[str, ...] = ()
    files: tuple[tuple[int, str], ...] = ()
    work_mb: int = 1024
    tmp_mb: int = 256
    shm_mb: int = 64
    env: dict[str, str] = field(default_factory=dict)
    seccomp: int | None = None
    worker: bool = False

    def argv(self, command: list[str]) -> list[str]:
        """The bwrap command line that runs `command` behind these walls."""
        exe = bwrap()
        if exe is None:
            raise FileNotFoundError("bubblewrap (bwrap) is not installed")
        mb = 1024 * 1024
        args = [exe, "--unshare-all", "--unshare-user"]
        if not self.worker:
            args += ["--disable-userns", "--uid", str(INNER_UID), "--gid", str(INNER_UID)]
        args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
        args += ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "sbin", "lib", "lib64"):
            if os.path.islink(f"/{link}"):  # merged /usr (Debian): keep the links
                args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
            elif os.path.isdir(f"/{link}"):
                args += ["--ro-bind", f"/{link}", f"/{link}"]
        for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts"):
            args += ["--ro-bind-try", etc, etc]
        # The private /tmp first: an interpreter or a course kept under /tmp is bound on top.
        args += ["--size", str(self.tmp_mb * mb), "--tmpfs", "/tmp"]
        args += ["--dir", "/var", "--symlink", "../tmp", "/var/tmp"]
        for path in self.readonly:
            args += ["--ro-bind", path, path]
        args += _hide(self.hidden, self.readonly)
        args += self._places(mb)
        args += [
            "--proc",
            "/proc",
            "--ro-bind-try",
            "/sys/devices/system/cpu",
            "/sys/devices/system/cpu",
        ]
        if self.worker:
            args += ["--remount-ro", "/"]
        args += ["--chdir", "/" if self.worker else f"{JOB_ROOT}/work", "--clearenv"]
        for key, value in self.env.items():
            args += ["--setenv", key, value]
        if self.seccomp is not None:
            args += ["--seccomp", str(self.seccomp)]
        return [*args, "--", *command]

    def _places(self, mb: int) -> list[str]:
        """The job's inputs, working folder and devices; for a worker, the places only (each
        job gets fresh ones) and the device nodes bound one by one (bwrap's `--dev` needs its
        second user namespace)."""
        if self.worker:
            args = ["--dir", f"{JOB_ROOT}/in", "--dir", f"{JOB_ROOT}/work", "--dir", "/dev/shm"]
            for node in DEVICES:
                args += ["--dev-bind", node, node]
            for i, name in enumerate(("stdin", "stdout", "stderr")):
                args += ["--symlink", f"/proc/self/fd/{i}", f"/dev/{name}"]
            return [*args, "--symlink", "/proc/self/fd", "/dev/fd"]
        args = ["--size", str(_inputs_size(self.files)), "--tmpfs", f"{JOB_ROOT}/in"]
        for fd, dest in self.files:
            args += ["--perms", "0444", "--file", str(fd), dest]
        args += ["--remount-ro", f"{JOB_ROOT}/in"]
        args += ["--size", str(self.work_mb * mb), "--tmpfs", f"{JOB_ROOT}/work"]
        return [*args, "--dev", "/dev", "--size", str(self.shm_mb * mb), "--tmpfs", "/dev/shm"]


DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _inputs_size(files: tuple[tuple[int, str], ...]) -> int:
    """A tmpfs just large enough for the inputs (plus room for their metadata)."""
    return sum(os.fstat(fd).st_size for fd, _ in files) + (1 << 20)


def _hide(hidden: tuple[str, ...], readonly: tuple[str, ...]) -> list[str]:
    """Cover each hidden path that lies under a bound path: a folder by an empty tmpfs; a file by
    a tmpfs over its folder with every other entry bound back, then made read-only again."""
    args: list[str] = []
    files_by_dir: dict[str, set[str]] = {}
    for path in sorted(set(hidden)):
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in readonly):
            continue  # not visible anyway
        if os.path.isdir(path) and not os.path.islink(path):
            args += ["--tmpfs", path, "--remount-ro", path]
        elif os.path.lexists(path):
            files_by_dir.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
    for folder, names in files_by_dir.items():
        args += ["--tmpfs", folder]
        for entry in sorted(os.listdir(folder)):
            if entry not in names:
                args += ["--ro-bind", f"{folder}/{entry}", f"{folder}/{entry}"]
        args += ["--remount-ro", folder]
    return args


def readable_paths() -> tuple[str, ...]:
    """What a job needs read-only: the interpreter's installation (its prefix, and the venv's)
    and its library folders as `sysconfig` names them, and of the grader only its sandbox side
    (`grader/__init__.py`, `wire.py`, `sandbox/`) when the package sits in a source checkout.

    Never `sys.path`: it holds the working directory of `python -m grader` (a course, a class
    folder), `$PYTHONPATH` and whatever `.pth` files add."""
    package = str(GRADER_PACKAGE)
    paths = {os.path.realpath(sys.base_prefix), sys.prefix, os.path.realpath(sys.prefix)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(os.path.realpath(sysconfig.get_paths()[key]))
    if "-packages" not in GRADER_PACKAGE.parent.name:  # an editable install: not the checkout
        paths |= {f"{package}/__init__.py", f"{package}/wire.py", f"{package}/sandbox"}
    return tuple(_outermost({p for p in paths if os.path.exists(p)}))


def _outermost(paths: set[str]) -> list[str]:
    out: list[str] = []
    for path in sorted(paths, key=len):
        if not any(path == o or path.startswith(o.rstrip("/") + "/") for o in out):
            out.append(path)
    return out


@functools.cache
def probe() -> str | None:
    """None when bubblewrap can build these walls here, else why not (one line)."""
    exe = bwrap()
    if exe is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    command = Walls(readonly=()).argv(["/usr/bin/true"])
    if os.geteuid() == 0:
        command = [
            sys.executable,
            "-I",
            "-m",
            "grader.run.launch",
            "--uid",
            "65534",
            "--",
            *command,
        ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap could not start: {exc}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        return f"bubblewrap cannot create namespaces here: {lines[-1]}"
    return None
