"""Grading on a Dask cluster: a runner whose jobs run on the cluster's workers.

`DaskRunner` is a `Runner` like any other: the pipeline hands it a `Job` and gets a
`RunOutcome` back, and the checks then run here, in the grading process, against held-out data
that never leaves this machine. Each Dask worker process runs the job with its own local runner
(the sandbox, with the same walls as a local run), created once per worker process and kept
for its life; so a result is the same as a local run's by construction, plus one line naming
the worker it ran on.

The public data splits a job serves (MBs of images) travel once per worker, not once per job:
each distinct data set is scattered to the workers once, under a key made from its content,
and every job carries only the key; the worker puts the arrays back into the job.

Needs `distributed` (`pip install 'grader[cluster]'`), imported only when a scheduler is given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
from typing import Any

import numpy as np

from grader.errors import GraderError
from grader.run.runner import ColdRunner, Job, Runner, RunOutcome

try:
    import distributed
except ModuleNotFoundError as _missing:  # pragma: no cover - depends on the install
    raise GraderError(
        "grading on a Dask cluster needs the `distributed` package: pip install 'grader[cluster]'"
    ) from _missing

__all__ = ["DaskRunner"]

WAIT_FOR_WORKERS_S = 60.0  # how long a new runner waits for the first worker to join
DATA_KEY = "grader-data"  # the prefix of a scattered data set's key


def _local_runner(sandbox: str, slots: int = 1) -> Runner:
    """The runner a Dask worker process runs its jobs with (one per worker process and sandbox
    mode, for the worker's life). `slots`: the worker's threads (1 with `--nthreads 1`)."""
    return ColdRunner(slots=slots, sandbox=sandbox)


class _WorkerRunner(distributed.WorkerPlugin):
    """Keeps a worker process's local runner: made at the first job, closed at teardown.

    Registered under one name per sandbox mode, idempotently: a later `DaskRunner` on the same
    cluster finds the runner already there (warm), and never replaces it under running jobs."""

    idempotent = True

    def __init__(self, sandbox: str):
        self.sandbox = sandbox
        self.runner: Runner | None = None
        self.lock = threading.Lock()
        self.slots = 1

    def __getstate__(self) -> dict[str, Any]:  # sent to the workers before any runner exists
        return {"sandbox": self.sandbox}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.sandbox = state["sandbox"]
        self.runner, self.lock, self.slots = None, threading.Lock(), 1

    def setup(self, worker) -> None:
        self.slots = max(1, int(getattr(worker.state, "nthreads", 1)))

    def local(self) -> Runner:
        with self.lock:
            if self.runner is None:
                self.runner = _local_runner(self.sandbox, self.slots)
            return self.runner

    def teardown(self, worker) -> None:
        with self.lock:
            runner, self.runner = self.runner, None
        if runner is not None:
            runner.close()


def _plugin_name(sandbox: str) -> str:
    return f"grader-runner-{sandbox}"


def _run_on_worker(job: Job, datasets: dict[str, dict[str, np.ndarray]], sandbox: str):
    """On a Dask worker: run `job` (its data sets put back) with the worker's local runner."""
    worker = distributed.get_worker()
    plugin = worker.plugins.get(_plugin_name(sandbox))
    if not isinstance(plugin, _WorkerRunner):
        raise RuntimeError(f"worker {worker.address} has no grader runner plugin")
    local = plugin.local()
    outcome = local.run(dataclasses.replace(job, datasets=datasets))
    mode = getattr(local, "mode", sandbox)
    line = f"runner: dask worker {worker.address} ({type(local).__name__}); sandbox: {mode}"
    return dataclasses.replace(outcome, isolation=(line, *outcome.isolation))


def content_key(name: str, arrays: dict[str, np.ndarray]) -> str:
    """The key of a data set's public splits, from their names, dtypes, shapes and bytes."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16)
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"\0{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.data)
    return f"{DATA_KEY}-{name}-{digest.hexdigest()}"


class DaskRunner:
    """Runs each job on a worker of a Dask cluster, in that worker's own sandbox.

    Args:
        where: the scheduler's address (`"tcp://HOST:8786"`), a `distributed.Client`, or a
            cluster object (`LocalCluster`, dask-jobqueue's `SLURMCluster`: anything with a
            `scheduler_address`). A client made here is closed by `close()`; one given is not,
            nor is a cluster.
        sandbox: the workers' sandbox mode, as for `ColdRunner`: "auto" or "none". Defaults to
            `"auto"`.
        wait_s: how long to wait for the first worker to join. Defaults to `60`.

    `slots` is the number of worker threads when the runner starts (what `grade_many` keeps
    in flight). A Dask error (a worker lost, a task failed) becomes a `sandbox_error` outcome.
    """

    def __init__(self, where: Any, *, sandbox: str = "auto", wait_s: float = WAIT_FOR_WORKERS_S):
        if sandbox not in ("auto", "bubblewrap", "none"):
            raise ValueError(f"sandbox = {sandbox!r}")
        self.sandbox = sandbox
        self._own_client = not isinstance(where, distributed.Client)
        if isinstance(where, distributed.Client):
            self.client = where
        elif isinstance(where, str) or hasattr(where, "scheduler_address"):
            try:
                self.client = distributed.Client(where, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise GraderError(
                    f"cannot reach the Dask scheduler at {getattr(where, 'scheduler_address', where)}: "
                    f"{exc}; start one with `dask scheduler` (it prints its address)"
                ) from exc
        else:
            raise TypeError(
                f"a scheduler address, a distributed.Client or a cluster, not {type(where).__name__}"
            )
        self.address = str(getattr(self.client.scheduler, "address", where))
        try:
            self.client.wait_for_workers(1, timeout=wait_s)
        except TimeoutError as exc:
            self.close()
            raise GraderError(
                f"no Dask worker joined the scheduler at {self.address} within {wait_s:g} s; "
                f"start some with `dask worker {self.address} --nthreads 1`"
            ) from exc
        self.client.register_plugin(_WorkerRunner(sandbox), name=_plugin_name(sandbox))
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        self.slots = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
        self.scattered: dict[str, distributed.Future] = {}  # content key -> the data on workers
        self._keys: dict[tuple[str, tuple[int, ...]], tuple[dict, str]] = {}
        self._lock = threading.Lock()

    def run(self, job: Job) -> RunOutcome:
        try:
            data = {name: self._scatter(name, arrays) for name, arrays in job.datasets.items()}
            bare = dataclasses.replace(job, datasets={})
            future = self.client.submit(_run_on_worker, bare, data, self.sandbox, pure=False)
            outcome = future.result()
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - any Dask failure
            return RunOutcome(
                "sandbox_error",
                f"the Dask cluster at {self.address} could not run this job: "
                f"{type(exc).__name__}: {exc}",
                isolation=(f"runner: dask scheduler {self.address}; sandbox: {self.sandbox}",),
            )
        if not isinstance(outcome, RunOutcome):
            return RunOutcome("sandbox_error", f"a Dask worker returned {type(outcome).__name__}")
        return outcome

    def _scatter(self, name: str, arrays: dict[str, np.ndarray]) -> distributed.Future:
        """The future of a data set on the workers: scattered (to every worker) the first time
        its content is seen, then reused for the runner's life."""
        with self._lock:
            ids = (name, tuple(id(a) for a in arrays.values()))
            known = self._keys.get(ids)  # the same arrays again (the splits are loaded once)
            key = known[1] if known is not None else content_key(name, arrays)
            self._keys[ids] = (arrays, key)  # keeps the arrays alive: their ids stay theirs
            if key not in self.scattered:
                self.scattered[key] = self.client.scatter({key: arrays}, broadcast=True)[key]
            return self.scattered[key]

    def close(self) -> None:
        """Release the scattered data; close the client if it was made here."""
        futures, self.scattered = getattr(self, "scattered", {}), {}
        for future in futures.values():
            future.release()
        if self._own_client:
            self.client.close()
