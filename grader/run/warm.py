"""The warm runner: TensorFlow imported once per worker, a fresh walled-off process per job.

Each worker is a `grader.sandbox.zygote` process behind the same bubblewrap walls as a cold job
(the same allow-list, the same hidden data files, the same seccomp filter, no network), started
through the same launcher (as root: a fresh unprivileged uid, one per worker) and pinned to its
own CPU. It imports NumPy, TensorFlow, Keras and the grader's sandbox side once and never runs
student code: for each job it forks a process that builds the job's own user, pid, mount,
network, ipc and uts namespaces, fresh private tmpfs for every place it may write, locks every
mount, drops every capability and installs a second filter that refuses mount and namespace
calls (see the zygote's docstring). So nothing of one job is visible to the next: not its
files, not its processes, not its memory.

What the grader trusts is its own: it watches the job's processes through `/proc` (memory, CPU
time), kills them, and reads their results through the same capped pipe and validator as the
cold runner. The worker reports only the exit status and the CPU time of the job (`wait4`),
which select a message and never a point.

Jobs that do not use TensorFlow (NumPy assignments) gain nothing from a worker that imported
it, and would be charged its pages: they go to the cold runner. Where the workers cannot start
(no fork, no nested user namespaces) every job goes to the cold runner, and its results say so.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future

from grader.errors import GraderError
from grader.run import procs, seccomp, walls
from grader.run.runner import (  # the cold runner's job I/O, shared (one module, one format)
    ColdRunner,
    Job,
    Runner,
    RunOutcome,
    _Answer,
    _child_env,
    _input_files,
    _Results,
    _Tail,
    claim_cpus,
    finished,
)
from grader.run.watch import Ended, watch
from grader.wire import JOB_WORK

__all__ = ["RUNNERS", "WarmRunner", "make_runner", "warm_available"]

START_TIMEOUT_S = 240  # a worker's start-up: importing TensorFlow on a loaded machine
ANSWER_TIMEOUT_S = 30  # the worker's answer to a job (started / refused), and its end after a kill
MB = 1024 * 1024
TMP_MB, SHM_MB, WORK_MB = 256, 64, 1024  # as a cold job's (grader.run.walls.Walls)


@functools.cache
def warm_available() -> str | None:
    """None when warm workers can run here, else why not (one line): a worker's walls are
    built once, with one job's walls inside them (no TensorFlow, so it takes a second)."""
    if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        return "this platform has no fork"
    program = seccomp.job_program()
    if program is None:
        return "no seccomp filter for this architecture"
    if (why := walls.probe()) is not None:
        return why
    fence = walls.Walls(readonly=walls.readable_paths(), env=_child_env(JOB_WORK), worker=True)
    zygote = [sys.executable, "-I", "-m", "grader.sandbox.zygote", "--probe", program.hex()]
    launch = [sys.executable, "-I", "-m", "grader.run.launch"]
    if os.geteuid() == 0:
        launch += ["--uid", "65534", *(a for p in fence.readonly for a in ("--expose", p))]
    try:
        done = subprocess.run(
            [*launch, "--", *fence.argv(zygote)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"a warm worker could not start: {exc}"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        return f"a warm worker cannot build a job's walls here: {lines[-1]}"
    return None


class WorkerFailed(Exception):
    pass


class _Spawner:
    """Starts the workers' processes from one thread that lives as long as the runner: bwrap's
    `--die-with-parent` (PR_SET_PDEATHSIG) fires when the *thread* that started it ends, and the
    threads that grade come and go."""

    def __init__(self) -> None:
        self.requests: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, daemon=True, name="grader-spawner").start()

    def _serve(self) -> None:
        while True:
            request = self.requests.get()
            if request is None:
                return
            args, kwargs, done = request
            try:
                done.set_result(subprocess.Popen(args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.set_exception(exc)

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        done: Future = Future()
        self.requests.put((args, kwargs, done))
        return done.result()

    def close(self) -> None:
        self.requests.put(None)


class _Worker:
    """One zygote process, its control socket, and the data sets it already has."""

    def __init__(self, runner: WarmRunner, cpu: int | None):
        self.cpu = cpu
        self.uid = runner.cold.uids.take() if runner.cold.privileged else None
        self.datasets: dict = {}  # key -> (sealed memfd, arrays): sent to every job, kept
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        rules = seccomp.filter_fd()
        fence = walls.Walls(
            readonly=runner.cold.readonly,
            hidden=runner.cold.hidden,
            env=_child_env(JOB_WORK),
            seccomp=rules,
            worker=True,
        )
        zygote = [sys.executable, "-I", "-m", "grader.sandbox.zygote", str(theirs.fileno())]
        command = [*runner.cold._launch(self.uid, cpu), *fence.argv(zygote)]
        try:
            self.proc = runner.spawner.popen(
                command,
                env={"PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=tuple(fd for fd in (theirs.fileno(), rules) if fd is not None),
            )
        finally:
            theirs.close()
            if rules is not None:
                os.close(rules)
        self.sock = ours
        self.logs = (_Tail(self.proc.stdout), _Tail(self.proc.stderr))
        said = self._answer(START_TIMEOUT_S)
        ready = said.get("ready") if said else None
        if not ready or ready.get("threads") != 1:
            self.close()
            why = self.logs[1].text().strip().splitlines()[-1:] or ["no answer"]
            raise WorkerFailed(f"the warm worker did not start: {said or why[0]}")
        self.import_s = float(ready.get("import_s", 0.0))
        self.sock.send(json.dumps({"job_filter": (seccomp.job_program() or b"").hex()}).encode())
        self.zygote = self._leaf(self.proc.pid)

    @staticmethod
    def _leaf(root: int) -> int:
        """The zygote's pid on the host: the end of bwrap's chain (bwrap, its init, the zygote)."""
        tree = procs.children()
        pid = root
        while len(tree.get(pid, ())) == 1:
            pid = tree[pid][0]
        return pid

    def _answer(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        try:
            data = self.sock.recv(1 << 16)
        except OSError:  # the worker is gone
            return None
        return json.loads(data) if data else None

    def log(self) -> str:
        """The last lines the worker itself wrote (never a student's: jobs write to their own
        pipes), for the grader's own error messages."""
        lines = [ln for ln in self.logs[1].text().splitlines() if ln.strip()]
        return " | ".join(ln for ln in lines if "Fontconfig" not in ln)[-2000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.sock.close()
        procs.kill_tree(self.proc.pid, self.uid)
        self.proc.wait()
        for fd, _arrays in self.datasets.values():
            os.close(fd)
        self.datasets.clear()

    def job_tree(self) -> tuple[list[int], list[int]]:
        """(every process of the running job, those whose memory is the job's): the worker's
        own forks (the job's parent and its init) share the worker's pages and are left out."""
        tree = procs.children()
        parents = tree.get(self.zygote, [])
        inits = [p for a in parents for p in tree.get(a, [])]
        every = [p for a in parents for p in procs.descendants(a, tree)]
        return every, [p for p in every if p not in parents and p not in inits]

    def run(self, job: Job) -> RunOutcome:
        read_end, write_end = os.pipe()
        calls_in, calls_out = os.pipe() if job.drawn else (None, None)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        # The job sees its results pipe as fd 3 and the drawn calls' as fd 4 (the zygote).
        inputs = _input_files(job, 3, 4 if calls_in is not None else -1, self.datasets)
        shared = {fd for fd, _ in self.datasets.values()}
        ends = [write_end, *([calls_in] if calls_in is not None else []), out_w, err_w]
        header = {
            "calls": calls_in is not None,
            "files": [os.path.basename(dest) for _, dest in inputs],
            "sizes": {
                "/tmp": TMP_MB * MB,
                "/dev/shm": SHM_MB * MB,
                "/job/work": WORK_MB * MB,
                "/job/in": sum(os.fstat(fd).st_size for fd, _ in inputs) + MB,
            },
        }
        started = time.perf_counter()
        try:
            socket.send_fds(
                self.sock, [json.dumps(header).encode()], [*ends, *(fd for fd, _ in inputs)]
            )
        except OSError as exc:
            for fd in (read_end, *([calls_out] if calls_out is not None else []), out_r, err_r):
                os.close(fd)
            raise WorkerFailed(f"the warm worker is gone ({exc})") from exc
        finally:
            for fd in [*ends, *(fd for fd, _ in inputs if fd not in shared)]:
                os.close(fd)
        answer = None if calls_out is None else _Answer(calls_out, job.drawn)
        results = _Results(read_end, answer)
        out, err = _Tail(os.fdopen(out_r, "rb")), _Tail(os.fdopen(err_r, "rb"))
        ack = self._answer(ANSWER_TIMEOUT_S)
        if not ack or "started" not in ack:
            if answer is not None:
                answer.close()
            raise WorkerFailed(f"the warm worker did not take the job: {ack or self.log()}")
        ended = Ended()
        try:
            watch(
                job.limits,
                started,
                ended,
                done=lambda: self._ended(ended, 0),
                pids=lambda: self.job_tree()[0],
                memory_pids=lambda _found: self.job_tree()[1],
            )
        finally:
            procs.kill_found(lambda: self.job_tree()[0])
            if ended.returncode is None and not self._ended(ended, ANSWER_TIMEOUT_S):
                self.close()  # no word from the worker: it is not used again
        return finished(ended, started, results, answer, out, err, ())

    def _ended(self, ended: Ended, timeout: float) -> bool:
        """The worker's word that the job ended (its exit status, its CPU time), if it came."""
        said = self._answer(timeout)
        if said is None:
            if not self.alive():
                ended.returncode = -9
                return True
            return False
        if "exit" not in said:
            return False
        ended.returncode = int(said["exit"])
        ended.cpu_s = max(ended.cpu_s, float(said.get("cpu_s", 0.0)))
        return True


class WarmRunner:
    """Jobs forked from warm workers (one per slot, each pinned to its own CPU), with the cold
    runner for jobs without TensorFlow and wherever the workers cannot start.

    Args:
        slots: jobs run at once (and workers started). Defaults to `2`.
        sandbox: "auto" or "bubblewrap" (warm workers need the walls; "none" is cold only).
            Defaults to `"auto"`.
    """

    def __init__(self, slots: int = 2, *, sandbox: str = "auto"):
        # The CPUs no other grader here holds (a Dask worker process beside this one), shared
        # with the cold runner that takes the NumPy jobs.
        self.cpus, locks = claim_cpus(max(1, slots))
        self.cold = ColdRunner(slots, sandbox=sandbox, cpus=self.cpus)
        self.cold.cpus.locks = locks
        self.mode = self.cold.mode
        self.spawner = _Spawner()
        self.why_cold: str | None = "no sandbox" if self.cold.mode == "none" else None
        self.idle: queue.Queue[_Worker | None] = queue.Queue()
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()
        self.closed = False
        # NumPy jobs too, on warm workers: how the attack tests run the same attacks against
        # the warm walls (their honest submissions and most attacks use no TensorFlow).
        self.every_job = os.environ.get("GRADER_WARM_EVERY_JOB") == "1"
        self.started = False

    def _start_workers(self) -> None:
        """All the workers at once, in the background, at the first job that needs one: a run
        whose results all come from the store never pays for importing TensorFlow."""
        with self.lock:
            if self.started:
                return
            self.started = True
        if self.why_cold is None:
            self.why_cold = warm_available()
        if self.why_cold is not None:
            self.idle.put(None)
            return
        for cpu in self.cpus:
            threading.Thread(target=self._start, args=(cpu,), daemon=True).start()

    def _start(self, cpu: int | None) -> None:
        try:
            worker: _Worker | None = _Worker(self, cpu)
        except (WorkerFailed, OSError) as exc:
            self.why_cold = str(exc)
            worker = None
        with self.lock:
            if worker is not None and self.closed:
                worker.close()
                return
            if worker is not None:
                self.workers.append(worker)
        self.idle.put(worker)

    def isolation(self, job: Job | None, worker: _Worker) -> tuple[str, ...]:
        limits = self.cold.isolation(job)[3:]
        who = (
            "a fresh unprivileged uid per worker (its jobs one after another, each in its own "
            "user namespace)"
            if self.cold.privileged
            else "your own uid, in a user namespace of its own per job"
        )
        return (
            "sandbox: bubblewrap around the worker, and per job its own user, pid, mount, "
            "network, ipc and uts namespaces; two seccomp filters",
            f"runs as {who}; sees only the interpreter, its libraries and its own inputs",
            "network: none; one kill ends every process of the job",
            *limits,
            f"runner: warm (forked from a worker that imported TensorFlow once and never runs "
            f"student code), pinned to CPU {worker.cpu}",
        )

    def run(self, job: Job) -> RunOutcome:
        numpy_only = not job.tensorflow and not self.every_job
        if numpy_only:
            return self._cold(job, "")
        self._start_workers()
        if self.why_cold is not None and not self.workers and self.idle.empty():
            return self._cold(job, self.why_cold)
        worker = self.idle.get()
        if worker is None:  # this slot's worker could not start
            self.idle.put(None)
            return self._cold(job, self.why_cold)
        try:
            outcome = worker.run(job)
        except WorkerFailed as exc:
            worker.close()
            self._replace(worker)
            return self._cold(job, str(exc))
        if not worker.alive():
            self._replace(worker)
        else:
            self.idle.put(worker)
        return dataclasses.replace(outcome, isolation=self.isolation(job, worker))

    def _replace(self, worker: _Worker) -> None:
        with self.lock:
            if worker in self.workers:
                self.workers.remove(worker)
            closed = self.closed
        if not closed:
            threading.Thread(target=self._start, args=(worker.cpu,), daemon=True).start()

    def _cold(self, job: Job, why: str | None) -> RunOutcome:
        outcome = self.cold.run(job)
        if not why:
            return outcome
        said = tuple(
            f"{line} (warm workers unavailable: {why})" if line.startswith("runner: cold") else line
            for line in outcome.isolation
        )
        return dataclasses.replace(outcome, isolation=said)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            workers, self.workers = self.workers, []
        for worker in workers:
            worker.close()
        self.spawner.close()
        self.cold.close()


RUNNERS = ("auto", "warm", "cold")


def make_runner(slots: int, sandbox: str, kind: str = "cold") -> Runner:
    """A new runner of `kind` (see `grading`), `$GRADER_RUNNER` first."""
    kind = os.environ.get("GRADER_RUNNER") or kind
    if kind not in RUNNERS:
        raise GraderError(f"runner {kind!r}: expected one of {', '.join(RUNNERS)}")
    if kind == "cold" or sandbox == "none":
        return ColdRunner(slots=slots, sandbox=sandbox)
    return WarmRunner(slots, sandbox=sandbox)
