"""Grading on a Dask cluster (`DaskRunner`): a `LocalCluster` with two worker processes grades
like this machine does, serves each data set to each worker once, turns a Dask failure into a
`sandbox_error`, and is reachable from the command line (`grader grade --scheduler`)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from grader.pipeline import Submission, grade_many
from grader.run.runner import RunOutcome
from grader.run.warm import WarmRunner
from tests.conftest import CORPUS, GRADER, ROOT

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # every test here starts a cluster; most start the sandbox

EXAMPLES = ROOT / "examples" / "class"


def _local_cluster(**kwargs):
    options = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    return distributed.LocalCluster(**{**options, **kwargs})


@pytest.fixture(scope="module")
def cluster():
    cluster = _local_cluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def client(cluster):
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()


def _views(results):
    """What a student gets, check by check: (score, run status, [(name, status, points,
    message)])."""
    return [
        (r.score, r.run_status, [(c.name, c.status, c.points, c.message) for c in r.checks])
        for r in results
    ]


def test_a_local_cluster_grades_as_this_machine_does(course, cluster):
    from grader.run.cluster import DaskRunner

    files = [
        ("alice", "perceptron", EXAMPLES / "alice" / "perceptron.py"),
        ("carol", "perceptron", EXAMPLES / "carol" / "perceptron.py"),  # blanks: never runs
        ("eve", "perceptron", CORPUS / "broken" / "perceptron_wrong_placeholder_shape.py"),
        ("alice", "intro_numpy", EXAMPLES / "alice" / "intro_numpy.ipynb"),
        ("dee", "intro_numpy", CORPUS / "broken" / "intro_wrong_update.py"),
        ("bob", "recursion", EXAMPLES / "bob" / "recursion.py"),
    ]
    subs = [Submission(who, course.assignment(name), path) for who, name, path in files]
    dask = DaskRunner(cluster)
    try:
        assert dask.slots == 2
        remote = grade_many(subs, dask, jobs=dask.slots)
    finally:
        dask.close()
    local_runner = WarmRunner(2)  # as each worker runs its jobs: warm where TensorFlow is used
    try:
        local = grade_many(subs, local_runner, jobs=2)
    finally:
        local_runner.close()
    drawn = [i for i, sub in enumerate(subs) if sub.assignment.drawn_calls]
    assert len(drawn) == 3  # intro_numpy and recursion: the verdicts, not the drawn numbers
    views, expected = _views(remote), _views(local)
    for i in drawn:  # fresh secret arguments per run: the messages differ, never the verdicts
        assert views[i][:2] == expected[i][:2]
        assert [c[:3] for c in views[i][2]] == [c[:3] for c in expected[i][2]]
    assert [v for i, v in enumerate(views) if i not in drawn] == [
        v for i, v in enumerate(expected) if i not in drawn
    ]
    assert remote[0].score == 10 and remote[2].score < 10  # a full mark and a broken one
    assert remote[1].run_status == "blanks" and not remote[1].isolation  # found from the text
    workers = set(cluster.scheduler_info["workers"])
    for result in remote[:1] + remote[2:]:
        line = result.isolation[0]
        assert line.startswith("runner: dask worker ") and line.split()[3] in workers, line
        same = next(r.isolation for r in local if r.file == result.file)
        pinned = re.compile(r"CPU \d+")  # each machine's worker has a CPU of its own
        assert [pinned.sub("CPU n", x) for x in result.isolation[1:]] == [
            pinned.sub("CPU n", x) for x in same
        ]  # the worker runner's own account, unchanged


def test_a_data_set_travels_once_per_worker_not_once_per_job(course, client, monkeypatch):
    from grader.run.cluster import DATA_KEY, DaskRunner, _loaded

    scatters = []
    scatter = client.scatter

    def counted(data, **kwargs):
        scatters.append(list(data))
        return scatter(data, **kwargs)

    monkeypatch.setattr(client, "scatter", counted)
    spec = course.assignment("keras_mnist")
    paths = [
        ROOT / "reference" / "keras_mnist.py",
        CORPUS / "lecture" / "keras_mnist_seed003.py",
        CORPUS / "broken" / "keras_never_fit.py",
    ]
    subs = [Submission(f"s{i}", spec, path) for i, path in enumerate(paths)]
    dask = DaskRunner(client)
    try:
        results = grade_many(subs, dask, jobs=dask.slots)
        loaded = client.run(_loaded, sandbox="auto")  # worker -> the data sets it brought in
    finally:
        dask.close()
    assert [r.run_status for r in results] == ["completed"] * 3, [r.problems for r in results]
    assert [r.score for r in results] == [10, 10, 4]
    assert len(scatters) == 1 and len(dask.scattered) == 0, scatters  # one data set, sent once
    (key,) = scatters[0]
    assert key.startswith(f"{DATA_KEY}-mnist-")
    ran_on = {r.isolation[0].split()[3] for r in results}  # the workers the 3 jobs ran on
    assert {w for w, keys in loaded.items() if keys} == ran_on
    assert all(keys in ([], [key]) for keys in loaded.values()), loaded  # once, whatever the jobs


class _Broken:
    """A worker's local runner that fails as the grader's own code can fail."""

    def run(self, job):
        raise RuntimeError("the worker's runner broke")

    def close(self) -> None:
        pass


def test_a_failing_worker_is_a_sandbox_error_not_a_crash(course, monkeypatch):
    from grader.run import cluster as dask_cluster

    # Threads, not processes: the workers share this module, so the broken runner reaches them.
    monkeypatch.setattr(dask_cluster, "_local_runner", lambda sandbox, slots=1: _Broken())
    local = _local_cluster(n_workers=1, processes=False)
    try:
        dask = dask_cluster.DaskRunner(local)
        try:
            subs = [
                Submission(
                    "ada", course.assignment("recursion"), ROOT / "reference" / "recursion.py"
                )
            ]
            (result,) = grade_many(subs, dask, jobs=1)
        finally:
            dask.close()
    finally:
        local.close()
    assert result.run_status == "sandbox_error"
    assert "RuntimeError: the worker's runner broke" in result.problems[0]
    assert all(c.status == "error" for c in result.checks)


def _die(job) -> RunOutcome:
    os._exit(1)  # the worker process dies in the middle of the job


def _dying_runner(dask_worker) -> None:
    """Run on each worker: its next job kills the worker process."""
    from grader.run import cluster as dask_cluster

    class Dying(_Broken):
        def run(self, job):
            return _die(job)

    dask_cluster._local_runner = lambda sandbox, slots=1: Dying()


def test_a_worker_that_dies_is_a_sandbox_error(course):
    import dask

    from grader.run.cluster import DaskRunner

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # no retry: fail now
        local = _local_cluster(n_workers=1)
        try:
            client = distributed.Client(local, set_as_default=False)
            try:
                client.run(_dying_runner)
                dask_runner = DaskRunner(client)
                outcome = dask_runner.run(_a_job(course))
                dask_runner.close()
            finally:
                client.close()
        finally:
            local.close()
    assert outcome.status == "sandbox_error"
    assert "KilledWorker" in outcome.message, outcome.message


def _a_job(course):
    from grader.pipeline import _job
    from grader.run import submission
    from grader.wire import Collect

    path = ROOT / "reference" / "intro_numpy.py"
    spec = course.assignment("intro_numpy")
    return _job(spec, path, [(path.name, submission.load(path))], None, Collect())


def test_grade_on_a_cluster_from_the_command_line(tmp_path, cluster):
    cls = tmp_path / "class"
    for student, src in (
        ("ada", ROOT / "reference" / "intro_numpy.py"),
        ("cy", CORPUS / "broken" / "intro_os_exit.py"),
    ):
        (cls / student).mkdir(parents=True)
        shutil.copy(src, cls / student / "intro_numpy.py")
    out_dir = tmp_path / "out"
    address = cluster.scheduler_address
    command = [*GRADER, "grade", str(cls), "-a", "intro_numpy", "--out", str(out_dir), "--json"]
    out = subprocess.run(
        [*command, "--scheduler", address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert {s["student"] for s in summary["submissions"]} == {"ada", "cy"}
    rows = {r["student"]: r for r in csv.DictReader((out_dir / "gradebook.csv").open())}
    assert float(rows["ada"]["intro_numpy:total"]) == 10
    assert rows["cy"]["intro_numpy:status"] == "crash"
    data = json.loads(Path(out_dir / "ada" / "intro_numpy" / "results.json").read_text())
    assert data["extra_data"]["isolation"][0].startswith("runner: dask worker tcp://")


def test_an_unreachable_scheduler_is_an_operator_error_naming_the_fix(tmp_path):
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}  # not 30 s
    out = subprocess.run(
        [*GRADER, "grade", str(EXAMPLES), "-a", "recursion", "--out", str(tmp_path)]
        + ["--scheduler", "tcp://127.0.0.1:9"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in out.stderr
    assert "dask scheduler" in out.stderr


def test_a_worker_without_the_data_gets_it_once_with_the_job(course, monkeypatch):
    """A worker that joined after the scatter (or whose copy Dask dropped) answers so, gets the
    job again with the data set as a dependency, and keeps it for the next jobs."""
    import numpy as np

    from grader.run.cluster import DaskRunner, _loaded

    local = _local_cluster(processes=False)
    try:
        client = distributed.Client(local, set_as_default=False)
        try:
            first, second = sorted(client.scheduler_info(n_workers=-1)["workers"])
            dask = DaskRunner(client, sandbox="none")
            scatter = client.scatter
            monkeypatch.setattr(
                client, "scatter", lambda data, **kw: scatter(data, workers=[first])
            )
            job = dataclasses.replace(
                _a_job(course), datasets={"mnist": {"train_x": np.arange(12.0).reshape(3, 4)}}
            )
            submit = client.submit
            monkeypatch.setattr(  # every job on `second`, which was not sent the data
                client, "submit", lambda *a, **kw: submit(*a, **{**kw, "workers": [second]})
            )
            outcomes = [dask.run(job) for _ in range(3)]
            loaded = client.run(_loaded, sandbox="none")
            dask.close()
        finally:
            client.close()
    finally:
        local.close()
    assert [o.status for o in outcomes] == ["completed"] * 3, [o.message for o in outcomes]
    assert all(o.isolation[0].split()[3] == second for o in outcomes)
    assert loaded[first] == [] and len(loaded[second]) == 1  # brought once, for three jobs


def test_grading_takes_a_cluster_object_and_closes_only_what_it_made(course, cluster, client):
    from grader.context import grading
    from grader.run.cluster import DaskRunner

    with grading(course, scheduler=cluster, jobs=7) as ctx:
        assert isinstance(ctx.runner, DaskRunner)
        assert ctx.jobs == ctx.runner.slots == 2  # the cluster's worker threads, not --jobs
        made = ctx.runner.client
    assert made.status == "closed"  # the client it made
    with grading(course, scheduler=client) as ctx:
        assert ctx.runner.client is client
    assert client.status == "running" and cluster.status.name == "running"  # not those given
    with pytest.raises(TypeError, match="a scheduler address, a distributed.Client or a cluster"):
        DaskRunner(8786)
