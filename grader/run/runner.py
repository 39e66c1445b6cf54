"""The runner interface and the cold runner (a fresh process per job).

The interface is small on purpose: a `Job` in, a `RunOutcome` out, through a `Runner`. The
cold runner starts a fresh `python -I` per job; a warm runner with pre-imported workers can
replace it without any other module changing.
"""

from __future__ import annotations

import dataclasses
import fcntl
import io
import json
import math
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from grader.course.data import private_files
from grader.errors import ArtifactError, GraderError
from grader.run import procs, seccomp, walls
from grader.run.artifacts import read as read_artifacts
from grader.run.cpus import CpuPool, claim_cpus
from grader.run.watch import Ended, watch
from grader.wire import (
    ASK_CALLS,
    CHILD_TIMINGS,
    INPUTS_FILE,
    JOB_FILE,
    JOB_IN,
    JOB_WORK,
    READY,
    Collect,
    FunctionCall,
    Isolation,
    JobSpec,
    Limits,
    Stage,
    Status,
)

__all__ = [
    "ColdRunner",
    "CpuPool",
    "claim_cpus",
    "Job",
    "RunOutcome",
    "Runner",
    "SandboxUnavailable",
]

LOG_TAIL = 16 * 1024
UID_BASE = 1 << 20  # fresh job uids are drawn above this
MAX_RESULTS = 1024 << 20  # what a job may hand back (CIFAR-10's weights are 61 MB)


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
    datasets: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # public splits only
    api: str = "tf1"
    # Several files (a multi-file submission): name -> (code, where); `code`/`where` are then
    # unused. `stages`: which files run, in order, and the prefix of what each one hands back.
    modules: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    stages: tuple[Stage, ...] = ()
    run_as_main: bool = True  # False: load the file as a module (its __main__ part does not run)
    # Calls on arguments the grader drew for this run: never in job.json nor in any input file;
    # handed to the child through a pipe only when it asks, after the student's code has run.
    drawn: tuple[FunctionCall, ...] = ()


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
    # The runner's own account (not the child's): the drawn calls were handed over, at the
    # child's ASK_CALLS right after READY. A check of drawn calls scores nothing without it.
    drawn_sent: bool = False


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


RUNNER_COLD = "runner: cold (a fresh interpreter per job), pinned to one CPU"


class SandboxUnavailable(GraderError):
    """The walls cannot be built here; the message says why and what to do."""


class _Uids:
    """A fresh uid for every job when the grader runs as root, never reused by this process
    (and, from a random start in a large range, not by another grader beside it)."""

    def __init__(self) -> None:
        self.next = secrets.randbelow(1 << 28) + UID_BASE
        self.lock = threading.Lock()

    def take(self) -> int:
        with self.lock:
            while True:
                uid, self.next = self.next, self.next + 1
                if not procs.of_uid(uid):
                    return uid


class ColdRunner:
    """A fresh `python -I -m grader.sandbox.child` process per job, behind bubblewrap's walls
    (`grader.run.walls`), with a fresh uid per job when the grader runs as root.

    Args:
        slots: jobs run at once. Defaults to `2`.
        sandbox: "auto" (the walls if this machine can build them, else refuse), "bubblewrap"
            (the same), or "none" (no walls: `--unsafe-no-sandbox`, or a student's own laptop
            through `grader check`). Defaults to `"auto"`.
    """

    def __init__(self, slots: int = 2, *, sandbox: str = "auto", cpus=None):
        if sandbox not in ("auto", "bubblewrap", "none"):
            raise ValueError(f"sandbox = {sandbox!r}")
        why = None if sandbox == "none" else walls.probe()
        if why is not None:
            raise SandboxUnavailable(
                f"student code cannot be isolated here: {why}. The grader refuses to run a "
                f"class without its sandbox; `grader doctor` says what this machine allows, and "
                f"`--unsafe-no-sandbox` runs student code with your own rights"
            )
        self.mode = "none" if sandbox == "none" else "bubblewrap"
        self.privileged = os.geteuid() == 0
        self.uids = _Uids()
        self.slots = threading.BoundedSemaphore(max(1, slots))
        self.cpus = CpuPool(max(1, slots), cpus)
        self.readonly = walls.readable_paths()
        self.hidden = tuple(private_files())

    def close(self) -> None:
        self.cpus.close()  # a job leaves nothing behind: its files live in its own tmpfs

    def isolation(self, job: Job | None = None) -> tuple[str, ...]:
        """What a job runs under, in words, for every result (the runner's own account)."""
        limits: tuple[str, ...] = ()
        if job is not None:
            cap = job.limits
            limits = (
                f"limits: {cap.timeout_s:g} s of CPU for the student's code, {cap.memory_mb} MB "
                f"of memory, {cap.nproc} processes",
            )
        if self.mode == "none":
            return (
                "sandbox: none (--unsafe-no-sandbox, or a self-check where no walls can be built): "
                "the code ran with the rights of whoever ran the grader",
                *limits,
            )
        who = (
            "a fresh unprivileged uid per job"
            if self.privileged
            else "your own uid, in a user namespace"
        )
        return (
            "sandbox: bubblewrap (user, pid, mount, network, ipc namespaces; seccomp filter)",
            f"runs as {who}; sees only the interpreter, its libraries and its own inputs",
            "network: none; one kill ends every process of the job",
            *limits,
        )

    def run(self, job: Job) -> RunOutcome:
        with self.slots, self.cpus.one() as cpu:
            outcome = self._execute(job, cpu)
        return dataclasses.replace(outcome, isolation=(*outcome.isolation, RUNNER_COLD))

    def _execute(self, job: Job, cpu: int | None = None) -> RunOutcome:
        uid = self.uids.take() if self.privileged else None
        read_end, write_end = os.pipe()
        calls_in, calls_out = os.pipe() if job.drawn else (None, None)
        inputs = _input_files(job, write_end, -1 if calls_in is None else calls_in)
        rules = seccomp.filter_fd() if self.mode != "none" else None
        extra = [fd for fd in (write_end, rules, calls_in) if fd is not None]
        started = time.perf_counter()
        try:
            command, cwd, scratch = self._command(job, inputs, uid, rules, cpu)
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=_child_env(cwd or JOB_WORK)
                if self.mode == "none"
                else {"PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=(*extra, *(fd for fd, _ in inputs)),
            )
        except OSError as exc:
            os.close(read_end)
            if calls_out is not None:
                os.close(calls_out)
            return RunOutcome("sandbox_error", f"the sandbox could not start: {exc}")
        finally:
            for fd in [*extra, *(fd for fd, _ in inputs)]:
                os.close(fd)
        answer = None if calls_out is None else _Answer(calls_out, job.drawn)
        results = _Results(read_end, answer)
        out, err = _Tail(proc.stdout), _Tail(proc.stderr)
        ended = Ended()
        try:
            watch(
                job.limits,
                started,
                ended,
                done=lambda: ended.reap(proc, os.WNOHANG),
                pids=lambda: procs.descendants(proc.pid),
            )
        finally:
            procs.kill_tree(proc.pid, uid)
            if proc.returncode is None:
                ended.reap(proc, 0)
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        return finished(ended, started, results, answer, out, err, self.isolation(job))

    def _command(self, job: Job, inputs, uid: int | None, rules: int | None = None, cpu=None):
        """(argv, cwd, scratch folder to remove) of the child, walled or not."""
        child = [sys.executable, "-I", "-m", "grader.sandbox.child"]
        if self.mode == "none":
            scratch = Path(tempfile.mkdtemp(prefix="grader-job-"))
            (scratch / "in").mkdir()
            (scratch / "work").mkdir()
            for fd, dest in inputs:
                with open(scratch / "in" / Path(dest).name, "wb") as fh:
                    fh.write(os.pread(fd, os.fstat(fd).st_size, 0))
            if uid is not None:
                for path in [scratch, *scratch.rglob("*")]:
                    os.chown(path, uid, uid)
            command = [*self._launch(uid, cpu), *child, str(scratch / "in" / JOB_FILE)]
            return command, str(scratch / "work"), scratch
        fence = walls.Walls(
            readonly=self.readonly,
            hidden=self.hidden,
            files=tuple(inputs),
            env=_child_env(JOB_WORK),
            seccomp=rules,
        )
        argv = fence.argv([*child, f"{JOB_IN}/{JOB_FILE}"])
        return [*self._launch(uid, cpu), *argv], None, None

    def _launch(self, uid: int | None, cpu: int | None = None) -> list[str]:
        """The launcher: pins the job to its CPU, lifts the grader's own memory ceiling and, as
        root, drops to the job's fresh uid with the interpreter reachable (then bwrap, or the
        bare child, runs as it)."""
        launch = [sys.executable, "-I", "-m", "grader.run.launch"]
        if cpu is not None:
            launch += ["--cpu", str(cpu)]
        if uid is not None:
            launch += ["--uid", str(uid), *(a for p in self.readonly for a in ("--expose", p))]
        return [*launch, "--"]


def _input_files(
    job: Job, result_fd: int, calls_fd: int = -1, datasets: dict | None = None
) -> list[tuple[int, str]]:
    """(memfd, path inside) of every input: job.json, the student's files, the probe inputs and
    the public data splits. Copies: the job can change none of them for anyone else.

    `datasets`: a cache of the data sets' sealed memfds, kept by the caller (a warm worker
    sends the same one to every job; the caller must not close those)."""
    files = dict(job.modules) or {"submission.py": (job.code, job.where)}
    spec = JobSpec(
        display_name=job.display_name,
        files={name: where for name, (_code, where) in files.items()},
        seed=job.seed,
        api=job.api,
        tensorflow=job.tensorflow,
        collect=job.collect,
        isolation=Isolation(
            cpu_s=job.limits.timeout_s,
            address_space_mb=job.limits.address_space_mb,
            nproc=job.limits.nproc,
            file_size_mb=job.limits.file_size_mb,
            result_fd=result_fd,
            calls_fd=calls_fd,
        ),
        stages=job.stages,
        run_as_main=job.run_as_main,
        call_timeout_s=job.limits.call_timeout_s,
        datasets={name: f"data_{name}.npz" for name in job.datasets},
    )
    out = [(_memfd(spec.to_json().encode("utf-8")), f"{JOB_IN}/{JOB_FILE}")]
    for name, (code, _where) in files.items():
        out.append((_memfd(code.encode("utf-8")), f"{JOB_IN}/{name}"))
    if job.inputs:
        out.append((_memfd(_npz(job.inputs)), f"{JOB_IN}/{INPUTS_FILE}"))
    for name, arrays in job.datasets.items():
        dest = f"{JOB_IN}/data_{name}.npz"
        if datasets is None:
            out.append((_memfd(_npz(arrays)), dest))
            continue
        # The splits are loaded once per process: the same arrays, the same key (they are
        # kept in the cache with their memfd, so an id is never reused while the key lives).
        key = (name, *(id(a) for a in arrays.values()))
        if key not in datasets:
            datasets[key] = (_memfd(_npz(arrays), seal=True), arrays)
        out.append((datasets[key][0], dest))
    return out


def _memfd(data: bytes, *, seal: bool = False) -> int:
    flags = os.MFD_ALLOW_SEALING if seal else 0
    fd = os.memfd_create("grader-input", flags)  # inherited by bwrap, which copies it in
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    if seal:  # shared by every job of a worker: nobody may change it from now on
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub
    return buf.getvalue()


class _Answer:
    """The drawn calls of a job, written once to the pipe the child reads them from, in a thread
    of its own (a child that never reads cannot block the grader), and only when asked."""

    def __init__(self, fd: int, calls: tuple[FunctionCall, ...]):
        self.fd: int | None = fd
        self.data = json.dumps([asdict(c) for c in calls]).encode("utf-8")
        self.sent = False
        self.lock = threading.Lock()

    def give(self) -> None:
        """Hand the calls over (at most once), then close the pipe."""
        with self.lock:
            fd, self.fd = self.fd, None
        if fd is None:
            return
        self.sent = True
        threading.Thread(target=self._write, args=(fd,), daemon=True).start()

    def _write(self, fd: int) -> None:
        try:
            with os.fdopen(fd, "wb") as pipe:
                pipe.write(self.data)
        except OSError:  # the child is gone, or closed its end
            pass

    def close(self) -> None:
        """Never hand them over: the child reads end-of-file (or is gone)."""
        with self.lock:
            fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


class _Results:
    """Drain the results pipe in a thread into a private temporary file (the job cannot reach
    it), at most MAX_RESULTS bytes: a job's results never sit in the grader's memory whole.

    With `answer` (a job with drawn calls), the stream must start with READY then ASK_CALLS:
    then the calls are handed over and ASK_CALLS is dropped from what is kept; anything else
    after READY (the student's code writing on the pipe, results without asking) closes the
    calls' pipe unanswered."""

    def __init__(self, fd: int, answer: _Answer | None = None):
        self.file = tempfile.TemporaryFile(prefix="grader-results-")
        self.size = 0
        self.overflow = False
        self.answer = answer
        self.head = b"" if answer is not None else None  # the start, until the ask is decided
        self.thread = threading.Thread(target=self._drain, args=(fd,), daemon=True)
        self.thread.start()

    def _ask(self, chunk: bytes) -> bytes:
        """`chunk` minus the ask, once the start of the stream decides it; b"" until then."""
        assert self.head is not None and self.answer is not None
        self.head += chunk
        ask = READY + ASK_CALLS
        if self.head == ask[: len(self.head)] and len(self.head) < len(ask):
            return b""  # not decided yet
        head, self.head = self.head, None
        if head.startswith(ask):
            self.answer.give()
            return READY + head[len(ask) :]
        self.answer.close()
        return head

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as stream:
            while chunk := stream.read(1 << 20):
                if self.head is not None:
                    chunk = self._ask(chunk)
                if self.size + len(chunk) > MAX_RESULTS:
                    self.overflow = True
                    continue  # keep draining, so the writer never blocks; keep nothing more
                self.file.write(chunk)
                self.size += len(chunk)
        if self.head:  # ended before the ask was decided: keep what came
            self.file.write(self.head)
            self.size += len(self.head)
        if self.answer is not None:
            self.answer.close()

    def stream(self):
        """The results, from their start; None when they were over the cap."""
        self.thread.join(timeout=10)
        if self.overflow:
            self.file.close()
            return None
        self.file.seek(0)
        return self.file


def _child_env(work: str) -> dict[str, str]:
    """The child's whole environment: nothing of the grader's own is passed on."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": work,
        "TMPDIR": "/tmp",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TF_NUM_INTRAOP_THREADS": "1",  # one CPU per job: one thread per op pool
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # correctness on some CPUs
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def finished(
    ended: Ended,
    started: float,
    results: _Results,
    answer: _Answer | None,
    out: _Tail,
    err: _Tail,
    isolation: tuple[str, ...],
) -> RunOutcome:
    """The outcome of a job that has ended (cold or warm): the runner's own timings and
    memory, the validated results, and whether the drawn calls were handed over."""
    timing = {
        "run_s": time.perf_counter() - started,
        "peak_rss_mb": ended.peak,
        "private_mb": ended.private_peak,
        "job_cpu_s": ended.cpu_s,
    }
    stream = results.stream()
    if answer is not None:
        answer.close()
    outcome = _outcome(
        ended.status,
        ended.message,
        ended.returncode or 0,
        stream,
        out.text(),
        err.text(),
        timing,
        isolation,
    )
    sent = answer is not None and answer.sent
    return dataclasses.replace(outcome, drawn_sent=sent) if sent else outcome


def _outcome(
    status: str,
    message: str,
    returncode: int,
    results: BinaryIO | None,
    stdout: str,
    stderr: str,
    timing: dict[str, float],
    isolation: tuple[str, ...],
) -> RunOutcome:
    """What a job left: validated artifacts, or why there are none. Whether the student's code
    ever ran is told by the READY mark the child writes just before it (so no text a student
    prints, and no exit status, can make their failure look like the grader's)."""
    said = dict(stdout=stdout, stderr=stderr, timing=timing, isolation=isolation)
    ready = results is not None and results.read(len(READY)) == READY
    if status:
        return RunOutcome(status, message, **said)  # type: ignore[arg-type]
    if not ready and results is not None:
        lines = [ln for ln in stderr.strip().splitlines() if "SETUP-FAILED" in ln or "bwrap" in ln]
        why = lines[-1] if lines else f"exit status {returncode} before the student's code ran"
        return RunOutcome("sandbox_error", f"the sandbox could not be set up: {why}", **said)  # type: ignore[arg-type]
    try:
        if results is None:
            raise ArtifactError(f"your code's results are larger than {MAX_RESULTS >> 20} MB")
        with results:
            facts, arrays = read_artifacts(results)
    except ArtifactError as exc:
        if returncode > 128:
            msg = f"your code's process was killed by {signal.Signals(returncode - 128).name}"
        elif returncode:
            msg = (
                f"your code ended the process (exit status {returncode}) "
                f"before results were collected"
            )
        else:
            msg = f"the run's results could not be read ({exc})"
        return RunOutcome("crash", msg, **said)  # type: ignore[arg-type]
    reported = facts.get("timing", {})
    for key in CHILD_TIMINGS:  # never the runner's own measurements (run_s, job_cpu_s, ...)
        value = reported.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            timing[f"{key}"] = float(value)
    status = facts.get("status", Status.COMPLETED)
    if status not in Status.ALL:
        status = "crash"
    message = str(facts.get("exception", ""))
    if status == Status.MEMORY:
        message = "out of memory (MemoryError)\n" + message
    return RunOutcome(status, message, facts, arrays, stdout, stderr, timing, isolation)
