"""The walls a sandboxed child puts up around itself before any student code runs.

As root: new mount and network namespaces, the course's private folders covered by empty
read-only mounts, the interpreter re-exposed read-only when it lives under a folder others
cannot enter, then a drop to the job's unprivileged uid; as an ordinary user: a user and
network namespace where the OS allows. Then no new privileges and the rlimits of the job.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys

from grader.wire import Isolation

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1


def _keep_interpreter_readable(libc) -> None:
    """The unprivileged uid must still read the Python installation. Where it lies under a
    folder others cannot enter (pyenv's `/root/.pyenv` under a 0700 `/root`), cover that
    folder with an empty tmpfs in this mount namespace and bind only the interpreter's own
    paths back, read-only. The rest of the folder stays invisible."""
    needed = {
        os.path.realpath(p)
        for p in [sys.base_prefix, sys.prefix, *sys.path]
        if p and os.path.isdir(p)
    }
    blocked: dict[str, list[str]] = {}
    for path in sorted(needed):
        parts = path.strip("/").split("/")
        for i in range(len(parts)):
            ancestor = "/" + "/".join(parts[: i + 1])
            if not os.stat(ancestor).st_mode & 0o001:
                blocked.setdefault(ancestor, []).append(path)
                break
    for ancestor, paths in blocked.items():
        keep = sorted(set(paths))
        fds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in keep]
        if (
            libc.mount(b"tmpfs", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755")
            != 0
        ):
            raise OSError(ctypes.get_errno(), f"covering {ancestor} failed")
        for path, fd in zip(keep, fds, strict=True):
            os.makedirs(path, mode=0o755, exist_ok=True)
            src = f"/proc/self/fd/{fd}".encode()
            if libc.mount(src, path.encode(), None, MS_BIND | MS_REC, None) != 0:
                raise OSError(ctypes.get_errno(), f"binding {path} failed")
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
            if libc.mount(None, path.encode(), None, flags, None) != 0:
                raise OSError(ctypes.get_errno(), f"making {path} read-only failed")
            os.close(fd)


def isolate(cfg: Isolation) -> list[str]:
    """Apply the isolation the OS allows; returns notes on what is in place."""
    notes = []
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.geteuid() == 0:
        if libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(mount, network) failed")
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "making mounts private failed")
        for path in cfg.hide:
            if not os.path.isdir(path):
                continue
            flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
            if libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, b"size=4k,mode=0555") != 0:
                raise OSError(ctypes.get_errno(), f"hiding {path} failed")
        _keep_interpreter_readable(libc)
        notes.append("network: none (own network namespace)")
        notes.append(f"hidden from student code: {len(cfg.hide)} private folders")
        uid = cfg.uid
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        notes.append(f"runs as unprivileged uid {uid}")
        nproc = cfg.nproc
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    else:
        # Not root (a student's laptop): an unprivileged user namespace still removes the network.
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
            notes.append("network: none (own network namespace)")
        else:
            notes.append("network: not isolated (the OS refused a network namespace)")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    mem = cfg.address_space_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = cfg.file_size_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return notes


def probe() -> int:
    """Try the walls `isolate` puts up as root, in this (throw-away) process: 0 when the OS
    allows them, else the number of the step that failed."""
    import tempfile

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
        return 1
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return 2
    folder = tempfile.mkdtemp()
    ok = libc.mount(b"tmpfs", folder.encode(), b"tmpfs", MS_RDONLY, b"size=4k") == 0
    if ok:
        libc.umount2(folder.encode(), 0)
    os.rmdir(folder)
    return 0 if ok else 3


if __name__ == "__main__" and sys.argv[1:] == ["--probe"]:
    sys.exit(probe())
