"""The runner interface and the cold runner (a fresh process per job).

The interface is small on purpose: a `Job` in, a `RunOutcome` out, through a `Runner`. The
cold runner starts a fresh `python -I` per job; a warm runner with pre-imported workers can
replace it without any other module changing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any, Protocol

import numpy as np

from grader.errors import ArtifactError
from grader.run.artifacts import read as read_artifacts
from grader.wire import (
    INPUTS_FILE,
    JOB_FILE,
    OUT_DIR,
    Collect,
    Exit,
    Isolation,
    JobSpec,
    Limits,
    Stage,
    Status,
)

__all__ = ["Job", "RunOutcome", "Runner", "ColdRunner"]

POLL_S = 0.05
LOG_TAIL = 16 * 1024
UID_BASE = 200_000


@dataclass(frozen=True)
class Job:
    """One run of one submission: the code, what to collect, the grader's inputs and limits."""

    display_name: str
    code: str
    where: tuple[str, ...]
    collect: Collect
    inputs: dict[str, np.ndarray]
    seed: int
    tensorflow: bool  # prepare TensorFlow (the TF1 layer for api "tf1", TF2 as is for "keras")
    limits: Limits = Limits()
    hide: tuple[str, ...] = ()
    datasets: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # public splits only
    api: str = "tf1"
    # Several files (a multi-file submission): name -> (code, where); `code`/`where` are then
    # unused. `stages`: which files run, in order, and the prefix of what each one hands back.
    modules: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    stages: tuple[Stage, ...] = ()
    run_as_main: bool = True  # False: load the file as a module (its __main__ part does not run)


@dataclass(frozen=True)
class RunOutcome:
    """What came back. `status`: completed, exception, exit (sys.exit), memory, timeout,
    crash (the process died), or sandbox_error (the grader could not run it: its fault)."""

    status: str
    message: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    timing: dict[str, float] = field(default_factory=dict)
    isolation: tuple[str, ...] = ()


class Runner(Protocol):
    def run(self, job: Job) -> RunOutcome: ...

    def close(self) -> None: ...


class _Tail:
    """Drain a pipe in a thread, keeping only the last `limit` bytes."""

    def __init__(self, stream, limit: int = LOG_TAIL):
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.limit = limit
        self.dropped = False
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            self.chunks.append(chunk)
            self.size += len(chunk)
            while self.size > self.limit and len(self.chunks) > 1:
                self.size -= len(self.chunks.popleft())
                self.dropped = True
        stream.close()

    def text(self) -> str:
        self.thread.join(timeout=2)
        data = b"".join(self.chunks)[-self.limit :]
        text = data.decode("utf-8", errors="replace")
        return ("[... earlier output cut ...]\n" + text) if self.dropped else text


def _procs(uid: int | None, pgid: int | None) -> list[int]:
    """Processes of a run: every process of its private uid (root), else of its process group."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if uid is not None:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            elif os.getpgid(int(entry)) == pgid:
                pids.append(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return pids


def _rss_mb(pids: list[int]) -> float:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total / (1024 * 1024)


def kill_all(uid: int | None, pgid: int | None) -> None:
    """Kill a run's process group and, when it has a private uid, every process of that uid
    (those that left the group with setsid too)."""
    try:
        if pgid is not None:
            os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if uid is not None:
        for _ in range(3):  # processes that left the group (setsid) still have the uid
            pids = _procs(uid, pgid)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)


class ColdRunner:
    """A fresh `python -I -m grader.sandbox.child` process per job (pays the imports each time).

    `slots` bounds how many jobs run at once; each slot has its own unprivileged uid when the
    grader runs as root, so concurrent students cannot see each other's processes or files.
    """

    def __init__(self, slots: int = 2, scratch_root: Path | None = None):
        self.root = Path(scratch_root or tempfile.mkdtemp(prefix="grader-sandbox-"))
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)  # traversable, not listable: job folders have random names
        self.privileged = os.geteuid() == 0
        self.slots: Queue[int] = Queue()
        base = UID_BASE + (os.getpid() % 5000) * 16
        for i in range(slots):
            self.slots.put(base + i)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def run(self, job: Job) -> RunOutcome:
        slot_uid = self.slots.get()
        try:
            return self._run(job, slot_uid)
        finally:
            self.slots.put(slot_uid)

    def _run(self, job: Job, slot_uid: int) -> RunOutcome:
        jobdir = self.root / secrets.token_hex(16)
        jobdir.mkdir(mode=0o700)
        (jobdir / "tmp").mkdir()
        try:
            return self._execute(job, jobdir, slot_uid)
        finally:
            shutil.rmtree(jobdir, ignore_errors=True)

    def _execute(self, job: Job, jobdir: Path, slot_uid: int) -> RunOutcome:
        _write_job(job, jobdir, slot_uid)
        uid = None
        if self.privileged:
            uid = slot_uid
            for path in [jobdir, *jobdir.rglob("*")]:
                os.chown(path, slot_uid, slot_uid)
        cmd = [sys.executable, "-I", "-m", "grader.sandbox.child", str(jobdir)]
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=jobdir,
            env=_child_env(jobdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        out, err = _Tail(proc.stdout), _Tail(proc.stderr)
        try:
            status, message, peak = _watch(proc, job.limits, uid, started)
        finally:
            kill_all(uid, proc.pid)
            proc.wait()
        timing = {"run_s": time.perf_counter() - started, "peak_rss_mb": peak}
        stdout, stderr = out.text(), err.text()
        if status:
            return RunOutcome(status, message, stdout=stdout, stderr=stderr, timing=timing)
        return _outcome(proc.returncode, jobdir, stdout, stderr, timing)


def _write_job(job: Job, jobdir: Path, slot_uid: int) -> None:
    """The student's files, the grader's inputs, the public data splits and `job.json`."""
    files = dict(job.modules) or {"submission.py": (job.code, job.where)}
    for name, (code, _where) in files.items():
        (jobdir / name).write_text(code, encoding="utf-8")
    if job.inputs:
        np.savez(jobdir / INPUTS_FILE, **job.inputs)  # type: ignore[arg-type]  # numpy's stub
    for name, arrays in job.datasets.items():
        np.savez(jobdir / f"data_{name}.npz", **arrays)  # type: ignore[arg-type]
    spec = JobSpec(
        display_name=job.display_name,
        files={name: where for name, (_code, where) in files.items()},
        seed=job.seed,
        api=job.api,
        tensorflow=job.tensorflow,
        collect=job.collect,
        isolation=Isolation(
            hide=tuple(job.hide),
            uid=slot_uid,
            address_space_mb=job.limits.address_space_mb,
            nproc=job.limits.nproc,
            file_size_mb=job.limits.file_size_mb,
        ),
        stages=job.stages,
        run_as_main=job.run_as_main,
        call_timeout_s=job.limits.call_timeout_s,
        datasets={name: f"data_{name}.npz" for name in job.datasets},
    )
    (jobdir / JOB_FILE).write_text(spec.to_json(), encoding="utf-8")


def _child_env(jobdir: Path) -> dict[str, str]:
    """The child's whole environment: nothing of the grader's own is passed on."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(jobdir),
        "TMPDIR": str(jobdir / "tmp"),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(jobdir / "tmp"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # correctness on some CPUs
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _watch(
    proc: subprocess.Popen, limits: Limits, uid: int | None, started: float
) -> tuple[str, str, float]:
    """Wait for the child within the limits: ("", "", peak RSS) when it ended by itself, else
    the status and message of the limit it broke."""
    peak = 0.0
    while True:
        try:
            proc.wait(timeout=POLL_S)
            return "", "", peak
        except subprocess.TimeoutExpired:
            pass
        if time.perf_counter() - started > limits.timeout_s:
            return (
                "timeout",
                f"your code was still running after {limits.timeout_s:g} s (the limit) and "
                f"was stopped; look for a loop that never ends, or too many iterations",
                peak,
            )
        rss = _rss_mb(_procs(uid, proc.pid))
        peak = max(peak, rss)
        if rss > limits.memory_mb:
            return (
                "memory",
                f"your code used more than {limits.memory_mb} MB of memory (the limit) and "
                f"was stopped (out of memory)",
                peak,
            )


def _outcome(
    returncode: int, jobdir: Path, stdout: str, stderr: str, timing: dict[str, float]
) -> RunOutcome:
    """What a child that ended by itself left: validated artifacts, or why there are none."""
    if returncode == Exit.SETUP_FAILED:
        lines = stderr.strip().splitlines() or ["(no detail)"]
        return RunOutcome(
            "sandbox_error",
            "the sandbox could not be set up: " + lines[-1],
            stdout=stdout,
            stderr=stderr,
            timing=timing,
        )
    try:
        facts, arrays = read_artifacts(jobdir / OUT_DIR)
    except ArtifactError as exc:
        if returncode and returncode < 0:
            msg = f"your code's process was killed by {signal.Signals(-returncode).name}"
        elif returncode:
            msg = (
                f"your code ended the process (exit status {returncode}) "
                f"before results were collected"
            )
        else:
            msg = f"the run's results could not be read ({exc})"
        return RunOutcome("crash", msg, stdout=stdout, stderr=stderr, timing=timing)
    timing.update(
        {k: float(v) for k, v in facts.get("timing", {}).items() if isinstance(v, (int, float))}
    )
    status = str(facts.get("status", Status.COMPLETED))
    if status not in Status.ALL:
        status = "crash"
    message = str(facts.get("exception", ""))
    if status == Status.MEMORY:
        message = "out of memory (MemoryError)\n" + message
    notes = tuple(str(n) for n in facts.get("notes", []))
    return RunOutcome(status, message, facts, arrays, stdout, stderr, timing, notes)
