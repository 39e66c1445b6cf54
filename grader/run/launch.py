"""Start bubblewrap for a job: as a fresh unprivileged uid when the grader runs as root.

    python -I -m grader.run.launch [--cpu N] [--uid UID --expose PATH...] -- bwrap ARGS...

`--cpu N` pins the job (or the warm worker, and every job it forks) to CPU N first: one job per
CPU, so that TensorFlow's one-thread sessions never hand work across CPUs.

Whatever the user, the grader's own memory ceiling (a soft RLIMIT_AS of the grading process)
is lifted first: the job's limits are the child's to set, once its start-up is over.

Trusted code, run before any student code: in a private mount namespace (so the host sees no
change) it makes the interpreter's folders reachable for UID where they lie under a folder
others cannot enter (pyenv's `/root/.pyenv` under a 0700 `/root`: the folder is covered by an
empty tmpfs and only the interpreter's paths are bound back, read-only), then drops every
privilege (groups, gid, uid; no new privileges) and executes bwrap. bwrap then builds the job's
walls as that uid, exactly as it does for an ordinary user. Standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
EXIT_LAUNCH_FAILED = 96


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount(libc, src, target: str, fstype, flags: int, data) -> None:
    if libc.mount(src, target.encode(), fstype, flags, data) != 0:
        raise OSError(ctypes.get_errno(), f"mount on {target} failed")


def expose(paths: list[str]) -> None:
    """In this (private) mount namespace, make `paths` reachable by any uid: each folder on the
    way that others cannot enter is covered by a tmpfs with the needed paths bound back read-only."""
    blocked: dict[str, list[str]] = {}
    for path in sorted({os.path.realpath(p) for p in paths if os.path.exists(p)}):
        parts = path.strip("/").split("/")
        for i in range(len(parts) - 1):  # the folders above it: others must be able to enter
            ancestor = "/" + "/".join(parts[: i + 1])
            if not os.stat(ancestor).st_mode & 0o001:
                blocked.setdefault(ancestor, []).append(path)
                break
    libc = _libc()
    for ancestor, inside in blocked.items():
        keep = sorted(set(inside))
        fds = [os.open(p, os.O_PATH) for p in keep]  # reachable after the cover, through /proc
        _mount(libc, b"tmpfs", ancestor, b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755")
        for path, fd in zip(keep, fds, strict=True):
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                open(path, "a").close()
            _mount(libc, f"/proc/self/fd/{fd}".encode(), path, None, MS_BIND | MS_REC, None)
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
            _mount(libc, None, path, None, flags, None)
            os.close(fd)


def launch(uid: int, argv: list[str], paths: list[str]) -> None:
    """Drop to `uid` with `paths` reachable, then execute `argv` (never returns)."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    _mount(libc, b"none", "/", None, MS_REC | MS_PRIVATE, None)
    expose(paths)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != uid:
        raise OSError("the privilege drop did not hold")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    os.execv(argv[0], argv)


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="grader.run.launch")
    parser.add_argument("--uid", type=int, default=None)
    parser.add_argument("--expose", action="append", default=[])
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    opts = parser.parse_args(args)
    argv = opts.argv[1:] if opts.argv[:1] == ["--"] else opts.argv
    if not argv or (opts.uid is not None and (os.geteuid() != 0 or opts.uid <= 0)):
        sys.stderr.write("grader.run.launch: a command, and --uid > 0 only as root\n")
        return EXIT_LAUNCH_FAILED
    try:
        if opts.cpu is not None:
            os.sched_setaffinity(0, {opts.cpu})
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        if opts.uid is None:
            os.execv(argv[0], argv)
        launch(opts.uid, argv, opts.expose)
    except OSError as exc:
        sys.stderr.write(f"GRADER-SANDBOX-SETUP-FAILED: {exc}\n")
    return EXIT_LAUNCH_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
