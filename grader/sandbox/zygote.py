"""The warm worker: TensorFlow imported once, a fresh walled-off process forked for every job.

Started by the trusted side (`grader.run.warm`) behind bubblewrap's walls, with the same
allow-list as a cold job (the interpreter and its libraries read-only, no course, no data file
the held-out split is cut from, no network), as

    python -I -m grader.sandbox.zygote CONTROL_FD

It imports what graded code needs (NumPy, TensorFlow, Keras, the grader's sandbox side), and
never runs student code itself: it only forks. For each job that arrives on the control socket
(a header and the job's files as sealed memfds, SCM_RIGHTS):

1. **A** (forked): new user, mount, pid, network, ipc, uts and cgroup namespaces; the job's uid
   inside is `INNER_UID`. Fresh size-capped tmpfs over every writable place (`/tmp`,
   `/dev/shm`, `/job/in`, `/job/work`), the inputs copied into `/job/in`, made read-only; any
   other writable mount refuses the job (fail closed). Nothing one job writes is seen by the next.
2. **B** (pid 1 of the job's pid namespace): a private `/proc`, then a second user namespace
   with its own mount namespace, so that every mount is locked (cannot be undone inside); no
   capabilities, no new privileges, not dumpable (the job cannot read or write its memory). It
   reaps orphans and ends with the job's first process: then the kernel ends every other one,
   as bubblewrap's init does.
3. **C** (the job): a new session, the job's pipes on fds 0-4 and nothing else open, a seccomp
   filter (from the trusted side) that refuses every mount and namespace call, then
   `grader.sandbox.child.main`, which sets the CPU, memory and process limits on itself just
   before the student's code runs.

The zygote reports each job's exit status and CPU time (`wait4`) on the control socket; the
trusted side watches memory and CPU itself through `/proc`, and kills the job's processes.
Standard library at module level: the imports of graded code happen in `_prewarm`.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import socket
import struct
import sys
import time

INNER_UID = 1000  # the uid a job sees, as in a cold job (grader.run.walls.INNER_UID)
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_CAPBSET_DROP = 1, 4, 22, 24
PR_SET_NO_NEW_PRIVS, SECCOMP_MODE_FILTER = 38, 2
CAP_VERSION_3 = 0x20080522
EXIT_SETUP_FAILED = 97  # grader.wire.Exit.SETUP_FAILED
MAX_MESSAGE = 1 << 16
MAX_FDS = 250
# The places a job may write: each gets a fresh tmpfs per job (sizes from the header).
WRITABLE = ("/tmp", "/dev/shm", "/job/in", "/job/work")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# What graded code imports; imported here once, so that a job starts with them in memory.
PREWARM = (
    "numpy",
    "tensorflow",
    "tensorflow.compat.v1",
    "keras",
    "sklearn.preprocessing",
    "matplotlib.pyplot",
    "grader.sandbox.child",
    "grader.sandbox.tfcompat",
    "grader.sandbox.collect",
    "grader.sandbox.graph_export",
    "grader.sandbox.keras_export",
    "grader.sandbox.legacy",
    "grader.sandbox.datasets",
)

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(errno, f"{what}: {os.strerror(errno)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
):
    _check(
        _libc.mount(
            source and source.encode(),
            target.encode(),
            fstype and fstype.encode(),
            ctypes.c_ulong(flags),
            data and data.encode(),
        ),
        f"mount on {target}",
    )


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _enter_user_namespace(flags: int, inner_uid: int, inner_gid: int) -> None:
    """unshare(CLONE_NEWUSER | flags), this process's uid and gid mapped to the inner ones."""
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(ctypes.c_int(CLONE_NEWUSER | flags)), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{inner_uid} {uid} 1\n")
    _write("/proc/self/gid_map", f"{inner_gid} {gid} 1\n")


# --- A: the job's namespaces and its fresh, private writable places ----------------------------


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, file system type, options) of every mount this process sees."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fields = left.split()
            point = fields[4].replace("\\040", " ")
            out.append((point, right.split()[0], set(fields[5].split(","))))
    return out


def _fresh_places(sizes: dict[str, int]) -> None:
    """A new tmpfs over each writable place; then refuse the job if anything else is writable
    (a device node excepted): nothing of an earlier job can be reached from here."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    for place in WRITABLE:
        size = int(sizes[place])
        _mount("tmpfs", place, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0755")
    for point, fstype, options in _mounts():
        if "ro" in options or point in DEVICES or fstype == "proc":
            continue  # proc: replaced by the job's own below, the old one hidden and locked
        if point in WRITABLE and fstype == "tmpfs":
            continue
        raise SetupError(0, f"{point} ({fstype}) would be writable by the job")


def _copy_inputs(names: list[str], fds: list[int]) -> None:
    """The job's files into /job/in (read-only from then on)."""
    for name, fd in zip(names, fds, strict=True):
        if "/" in name or name in ("", ".", ".."):
            raise SetupError(0, f"input name {name!r}")
        out = os.open(f"/job/in/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            size = os.fstat(fd).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(out, fd, offset, size - offset)
                if sent <= 0:
                    raise SetupError(0, f"copying {name}")
                offset += sent
        finally:
            os.close(out)
        os.close(fd)
    _mount(None, "/job/in", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _job(header: dict, fds: list[int], job_filter: bytes) -> None:
    """Process A: the job's namespaces and places, then B; exits with the job's status."""
    n = 4 if header["calls"] else 3
    pipes, inputs = fds[:n], fds[n:]
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")  # to write its own maps
    _enter_user_namespace(
        CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP,
        INNER_UID,
        INNER_UID,
    )
    _fresh_places(header["sizes"])
    _copy_inputs(header["files"], inputs)
    init = os.fork()  # pid 1 of the job's pid namespace
    if init == 0:
        _run_init(pipes, job_filter)
    for fd in pipes:
        os.close(fd)
    _, status = os.waitpid(init, 0)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


# --- B: pid 1, every mount locked, no privilege left ---------------------------------------------


def _drop_capabilities() -> None:
    """No capability in any set, none to regain (bounding set emptied), no new privileges."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    header = struct.pack("II", CAP_VERSION_3, 0)
    data = bytes(24)  # two __user_cap_data_struct, all zero
    hbuf, dbuf = ctypes.create_string_buffer(header), ctypes.create_string_buffer(data)
    _check(_libc.capset(hbuf, dbuf), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(("CapEff:", "CapPrm:", "CapBnd:")) and int(line.split()[1], 16):
                raise SetupError(0, f"capabilities left: {line.strip()}")


def _run_init(pipes: list[int], job_filter: bytes) -> None:
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        # A second user namespace with its own copy of the mounts: every mount is now locked
        # (it cannot be unmounted or made writable again from inside), as bubblewrap does.
        _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")  # to write its own maps
        _enter_user_namespace(CLONE_NEWNS, INNER_UID, INNER_UID)
        _drop_capabilities()
        _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")
    except BaseException as exc:  # noqa: BLE001 - said on the job's stderr, then exit
        _setup_failed(pipes[-1], exc)
    first = os.fork()
    if first == 0:
        _run_job(pipes, job_filter)
    for fd in pipes:
        os.close(fd)
    while True:  # reap every orphan until the job's first process ends
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(EXIT_SETUP_FAILED)
        if pid == first:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            os._exit(code)


def _setup_failed(stderr_fd: int, exc: BaseException) -> None:
    try:
        os.write(stderr_fd, f"GRADER-SANDBOX-SETUP-FAILED: {exc}\n".encode())
    finally:
        os._exit(EXIT_SETUP_FAILED)


# --- C: the job itself -----------------------------------------------------------------------


def _seccomp(program: bytes) -> None:
    """Install `program` (classic BPF, from the trusted side) as a filter on this process."""
    if not program:
        return
    buf = ctypes.create_string_buffer(program)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def _run_job(pipes: list[int], job_filter: bytes) -> None:
    """Process C: the job's pipes on fds 0-4 (stdin from /dev/null; results on 3; the drawn
    calls on 4), nothing else open, then the child's own main."""
    try:
        _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")  # its own /proc/self
        os.setsid()
        results, *rest = pipes
        calls = rest[0] if len(rest) == 3 else None
        out, err = rest[-2], rest[-1]
        # Above every number used below, so that no dup2 overwrites a pipe not yet moved.
        high = [
            fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            for fd in (results, calls, out, err)
            if fd is not None
        ]
        for fd in pipes:
            os.close(fd)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        targets = (3, 4, 1, 2) if calls is not None else (3, 1, 2)
        for fd, target in zip(high, targets, strict=True):
            os.dup2(fd, target)
        os.closerange(5 if calls is not None else 4, 1 << 16)
        _seccomp(job_filter)
        os.chdir("/job/work")
    except BaseException as exc:  # noqa: BLE001
        _setup_failed(2, exc)
    if _PROBE:  # `--probe`: the walls went up; no job to run
        os._exit(0)
    # A fresh start for Python's own streams on the job's pipes.
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.argv = ["-m", "/job/in/job.json"]
    from grader.sandbox import child

    try:
        code = child.main("/job/in/job.json")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


# --- the zygote --------------------------------------------------------------------------------


def _prewarm() -> dict:
    t0 = time.perf_counter()
    import importlib
    import warnings

    warnings.filterwarnings("ignore")
    failed = []
    for name in PREWARM:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the job imports it again, and sees why
            failed.append(f"{name}: {type(exc).__name__}")
    return {"import_s": time.perf_counter() - t0, "failed": failed, "threads": _threads()}


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _receive(sock: socket.socket) -> tuple[dict | None, list[int]]:
    msg, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if not msg:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(msg), fds


def _settle() -> int:
    """The thread count, after waiting a little for start-up threads to end (a fork is safe
    only from a process with one thread)."""
    for _ in range(100):
        if (n := _threads()) == 1:
            return 1
        time.sleep(0.01)
    return n


def serve(sock: socket.socket) -> int:
    said = _prewarm()
    said["threads"] = _settle()
    sys.stdout.flush()
    sys.stderr.flush()
    sock.send(json.dumps({"ready": said}).encode())
    config, _ = _receive(sock)
    if config is None:
        return 0
    job_filter = bytes.fromhex(config.get("job_filter", ""))
    while True:
        header, fds = _receive(sock)
        if header is None:
            return 0
        threads = _settle()
        if threads != 1:  # never fork a process with other threads: refuse, say why
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"refused": f"the warm worker has {threads} threads"}).encode())
            continue
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                _job(header, fds, job_filter)
            except BaseException as exc:  # noqa: BLE001
                n = 4 if header.get("calls") else 3
                _setup_failed(fds[n - 1] if len(fds) >= n else 2, exc)
            os._exit(EXIT_SETUP_FAILED)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"started": pid}).encode())
        _, status, usage = os.wait4(pid, 0)
        sock.send(
            json.dumps(
                {
                    "exit": os.waitstatus_to_exitcode(status),
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                    "fork_s": time.perf_counter() - started,
                }
            ).encode()
        )


_PROBE = False


def probe(job_filter: bytes) -> int:
    """Build one job's walls here (no TensorFlow, no job), and say whether they held: 0."""
    global _PROBE
    _PROBE = True
    pipes = [os.pipe() for _ in range(3)]
    sizes = {place: 1 << 20 for place in WRITABLE}
    pid = os.fork()
    if pid == 0:
        try:
            _job({"calls": False, "files": [], "sizes": sizes}, [w for _, w in pipes], job_filter)
        except BaseException as exc:  # noqa: BLE001
            _setup_failed(pipes[-1][1], exc)
    for _r, w in pipes:
        os.close(w)
    _, status = os.waitpid(pid, 0)
    said = os.read(pipes[-1][0], 4096).decode(errors="replace").strip()
    if said:
        sys.stderr.write(said + "\n")
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # the grader gone: this worker goes too
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")
    if argv[0] == "--probe":
        return probe(bytes.fromhex(argv[1]) if len(argv) > 1 else b"")
    sock = socket.socket(fileno=int(argv[0]))
    return serve(sock)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
