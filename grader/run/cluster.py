"""Grading on a Dask cluster: a runner whose jobs run on the cluster's workers.

`DaskRunner` is a `Runner` like any other: the pipeline hands it a `Job` and gets a
`RunOutcome` back, and the checks then run here, in the grading process, against held-out data
that never leaves this machine. Each Dask worker process runs the job with its own local runner
(the sandbox, with the same walls as a local run), created once per worker process and kept
for its life; so a result is the same as a local run's by construction, plus one line naming
the worker it ran on.

The public data splits a job serves (MBs of images) travel once per worker, not once per job:
each distinct data set is scattered to the workers once, under a key made from its content,
and every job carries only the key; each worker keeps the arrays it was sent and puts them
back into the job. A worker without them (it joined later, or Dask dropped its copy) answers
so, and gets the job again with the data as a dependency, once.

Needs `distributed` (`pip install 'grader[cluster]'`), imported only when a scheduler is given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from grader.errors import GraderError
from grader.run.runner import Job, Runner, RunOutcome
from grader.run.warm import make_runner

try:
    import distributed
except ModuleNotFoundError as _missing:  # pragma: no cover - depends on the install
    raise GraderError(
        "grading on a Dask cluster needs the `distributed` package: pip install 'grader[cluster]'"
    ) from _missing

__all__ = ["DaskRunner"]

WAIT_FOR_WORKERS_S = 60.0  # how long a new runner waits for the first worker to join
DATA_KEY = "grader-data"  # the prefix of a scattered data set's key
KEPT_DATASETS = 4  # data sets a worker keeps (MNIST, Fashion-MNIST, CIFAR-10, ...)


def _local_runner(sandbox: str, slots: int = 1) -> Runner:
    """The runner a Dask worker process runs its jobs with (one per worker process and sandbox
    mode, for the worker's life). `slots`: the worker's threads (1 with `--nthreads 1`)."""
    return make_runner(slots, sandbox, "auto")  # warm workers where they run, else cold


class _WorkerRunner(distributed.WorkerPlugin):
    """A worker process's local runner (made at its first job, closed at teardown) and the data
    sets its jobs served (each loaded once, kept for the worker's life).

    Registered under one name per sandbox mode, idempotently: a later `DaskRunner` on the same
    cluster finds the runner already there (warm), and never replaces it under running jobs."""

    idempotent = True

    def __init__(self, sandbox: str):
        self.__setstate__({"sandbox": sandbox})

    def __getstate__(self) -> dict[str, Any]:  # sent to the workers before any runner exists
        return {"sandbox": self.sandbox}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.sandbox: str = state["sandbox"]
        self.runner: Runner | None = None
        self.lock = threading.Lock()  # the runner's
        self.data_lock = threading.Lock()
        self.slots = 1
        self.data: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self.loaded: list[str] = []  # the data sets' keys, each time one was brought in

    def setup(self, worker) -> None:
        self.slots = max(1, int(getattr(worker.state, "nthreads", 1)))

    def local(self) -> Runner:
        with self.lock:
            if self.runner is None:
                self.runner = _local_runner(self.sandbox, self.slots)
            return self.runner

    def dataset(self, worker, key: str, given: Any = None) -> dict[str, np.ndarray] | None:
        """The data set under `key`: `given` (the task brought it), kept here from an earlier
        job, or still in this worker's memory from the scatter; None when none of these (the
        client then sends the job again with the data as a dependency).

        Why not always a dependency: Dask's memory manager drops the replicas no task waits
        for, and a dependency would then bring the data to this worker again for every job."""
        with self.data_lock:
            if key in self.data:  # (also when given: the job was sent again, and came here)
                self.data.move_to_end(key)
                return self.data[key]
            if given is None:
                given = worker.data.get(key) if key in worker.data else None
                if given is None:
                    return None
            self.data[key] = given
            self.loaded.append(key)
            while len(self.data) > KEPT_DATASETS:
                self.data.popitem(last=False)
            return given

    def teardown(self, worker) -> None:
        with self.lock, self.data_lock:
            runner, self.runner = self.runner, None
            self.data.clear()
        if runner is not None:
            runner.close()


def _plugin_name(sandbox: str) -> str:
    return f"grader-runner-{sandbox}"


def _plugin(worker, sandbox: str) -> _WorkerRunner:
    plugin = worker.plugins.get(_plugin_name(sandbox))
    if not isinstance(plugin, _WorkerRunner):
        raise RuntimeError(f"worker {worker.address} has no grader runner plugin")
    return plugin


@dataclasses.dataclass(frozen=True)
class _NeedsData:
    """A worker's answer when it does not hold a job's data set: send the job with it."""

    keys: tuple[str, ...]
    worker: str


def _run_on_worker(
    job: Job, keys: dict[str, str], given: dict[str, Any], sandbox: str
) -> RunOutcome | _NeedsData:
    """On a Dask worker: run `job`, its data sets (name -> key; `given`: key -> the arrays
    the task brought) put back, with the worker's local runner; its result names the worker."""
    worker = distributed.get_worker()
    plugin = _plugin(worker, sandbox)
    found = {name: plugin.dataset(worker, key, given.get(key)) for name, key in keys.items()}
    served = {name: arrays for name, arrays in found.items() if arrays is not None}
    if len(served) < len(found):
        return _NeedsData(tuple(keys[n] for n in found if n not in served), worker.address)
    local = plugin.local()
    outcome = local.run(dataclasses.replace(job, datasets=served))
    mode = getattr(local, "mode", sandbox)
    line = f"runner: dask worker {worker.address} ({type(local).__name__}); sandbox: {mode}"
    return dataclasses.replace(outcome, isolation=(line, *outcome.isolation))


def _loaded(dask_worker, sandbox: str) -> list[str]:
    """On a Dask worker (`client.run`): the keys of the data sets it loaded, once each time."""
    return list(_plugin(dask_worker, sandbox).loaded)


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
            keys = {name: self._scatter(name, arrays) for name, arrays in job.datasets.items()}
            bare = dataclasses.replace(job, datasets={})  # the data go by key, not by job
            outcome = self._submit(bare, keys, {})
            if isinstance(outcome, _NeedsData):  # that worker has not got them: bring them
                given = {key: self.scattered[key] for key in outcome.keys}
                outcome = self._submit(bare, keys, given, outcome.worker)
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - any Dask failure
            return self._failed(f"{type(exc).__name__}: {exc}")
        if not isinstance(outcome, RunOutcome):
            return self._failed(f"a worker returned {type(outcome).__name__}")
        return outcome

    def _failed(self, why: str) -> RunOutcome:
        """The grader's failure, not the student's: a `sandbox_error` naming the cluster."""
        return RunOutcome(
            "sandbox_error",
            f"the Dask cluster at {self.address} could not run this job: {why}",
            isolation=(f"runner: dask scheduler {self.address}; sandbox: {self.sandbox}",),
        )

    def _submit(
        self, job: Job, keys: dict[str, str], given: dict[str, Any], worker: str | None = None
    ) -> Any:
        """Run `job` on a worker (preferably `worker`: the one that asked for the data)."""
        where = dict(workers=[worker], allow_other_workers=True) if worker else {}
        future = self.client.submit(
            _run_on_worker, job, keys, given, self.sandbox, pure=False, **where
        )
        return future.result()

    def _scatter(self, name: str, arrays: dict[str, np.ndarray]) -> str:
        """The key of a data set on the workers: scattered (to every worker) the first time its
        content is seen; its future is kept for the runner's life, so the data stays there."""
        with self._lock:
            ids = (name, tuple(id(a) for a in arrays.values()))
            known = self._keys.get(ids)  # the same arrays again (the splits are loaded once)
            key = known[1] if known is not None else content_key(name, arrays)
            self._keys[ids] = (arrays, key)  # keeps the arrays alive: their ids stay theirs
            if key not in self.scattered:
                self.scattered[key] = self.client.scatter({key: arrays}, broadcast=True)[key]
            return key

    def close(self) -> None:
        """Release the scattered data; close the client if it was made here."""
        futures, self.scattered = getattr(self, "scattered", {}), {}
        for future in futures.values():
            future.release()
        if self._own_client:
            self.client.close()
