"""Class throughput: the same class of notebooks graded by every engine, interleaved.

Grades one class (default 24 perceptron + 8 keras_mnist + 8 mnist_mlp notebooks, made from the
reference solutions with jupytext, so every submission is correct) with:

    nbgrader     nbgrader's `autograde` (no sandbox, one notebook after another), on the
                 keras_mnist notebooks only: the TF1 assignments (perceptron, mnist_mlp) use
                 `tf.placeholder`, gone in TensorFlow 2, and do not run in a plain kernel
    cold-1       `grader grade --runner cold --jobs 1`
    warm-1       `grader grade --runner warm --jobs 1`
    warm-N       `grader grade --runner warm --jobs N` (N: --jobs, default the CPUs available)
    dask-N       `grader grade --scheduler ADDRESS` on a fresh `distributed.LocalCluster` of N
                 single-threaded worker processes (only when this checkout has
                 `grader.run.cluster`; the cluster's start is not timed)

in R rounds (--rounds): every configuration once per round, the order rotated each round so that
none always runs first. Every run writes a fresh output folder (`--force` too when the CLI has a
result store). The CLI grades one assignment per call (`-a NAME`; `--all` would also write a
"missing" page for every assignment nobody submitted), so a class run is one call per
assignment, one after another, each paying its own start-up; the class's wall time is their sum
and the keras_mnist call is the keras_mnist class that nbgrader is compared with.

For each configuration and round: wall seconds for the class, seconds per submission, the
grader's overhead per submission beyond the students' own compute,

    overhead  = (wall x jobs - sum of student_s) / submissions

(student_s: the student's own code, timed inside each job, from results.json), and the
throughput against the physical limit, (sum of student_s / jobs) / wall. Then the issue's
targets with PASS/MISS (medians over the rounds), the median memory per job (warm: private_mb,
what a forked job adds to its worker; cold: peak_rss_mb of the job's interpreter), a Markdown
table for the README and, with --json PATH, every number.

nbgrader's kernel is a `python3` kernelspec written into the work folder (this interpreter,
ipykernel); it gets MNIST as the grader serves it (same splits, offline), through an IPython
startup file that replaces `tf.keras.datasets.mnist.load_data` (Keras would otherwise try to
download it: no network here). It imports TensorFlow at kernel start instead of in the first
cell, the same work.

Timings mean something only on a quiet machine: nothing else running, and on an idle CPU.

Usage (from the checkout's root):
    .venv/bin/python benchmarks/throughput.py [--rounds 3] [--jobs N] [--json PATH]
    .venv/bin/python benchmarks/throughput.py --quick       # 2 per assignment, 1 round: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("perceptron", "keras_mnist", "mnist_mlp")
KERAS = "keras_mnist"
CONFIGS = ("nbgrader", "cold-1", "warm-1", "warm-N", "dask-N")


@dataclass
class Run:
    """One configuration graded once on one class (the whole class, or keras_mnist only)."""

    config: str
    klass: str  # "class" or "keras_mnist"
    round: int
    jobs: int
    wall_s: float
    submissions: int
    completed: int = 0
    student_s: float | None = None  # sum over the completed submissions
    runners: dict[str, int] = field(default_factory=dict)
    private_mb: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    job_overhead_s: list[float] = field(default_factory=list)  # total_s - student_s, per job
    problems: list[str] = field(default_factory=list)

    @property
    def per_job_overhead(self) -> float | None:
        """The grader's median time per submission beyond the student's own code, from the jobs'
        own timings (total_s - student_s): a job's start, its collection, reading it back, the
        checks and the figures; not the per-call start of the grader or its workers."""
        return statistics.median(self.job_overhead_s) if self.job_overhead_s else None

    @property
    def per_submission(self) -> float:
        return self.wall_s / self.submissions

    @property
    def overhead(self) -> float | None:
        if self.student_s is None:
            return None
        return (self.wall_s * self.jobs - self.student_s) / self.submissions

    @property
    def of_limit(self) -> float | None:
        if self.student_s is None:
            return None
        return (self.student_s / self.jobs) / self.wall_s


# --- the class ---------------------------------------------------------------------------------


def notebook_for(name: str, work: Path):
    """A correct notebook for `name`: the reference through jupytext; keras_mnist from the
    nbgrader export (its cells carry nbgrader's ids), with the solution markers removed, so
    that nbgrader and the grader get byte-identical submissions."""
    import jupytext
    import nbformat

    if name != KERAS:
        return jupytext.read(ROOT / "reference" / f"{name}.py")
    export = work / "nbgrader-export"
    if not (export / "source" / name / f"{name}.ipynb").is_file():
        grader_cli(["nbgrader-export", str(export), "-a", name], check=True)
    nb = nbformat.read(export / "source" / name / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            keep = [x for x in lines if x.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            cell.source = "\n".join(keep)
    return nb


def build_class(work: Path, counts: dict[str, int]) -> dict[str, Path]:
    """work/class/<assignment>/<student>/<assignment>.ipynb. Each submission differs from the
    others by a comment naming its student (a result store keyed by content must not serve one
    student's result to another)."""
    import copy

    import nbformat

    folders = {}
    for name, n in counts.items():
        if n <= 0:
            continue
        base = notebook_for(name, work)
        folders[name] = work / "class" / name
        for i in range(1, n + 1):
            student = f"s{i:02d}"
            nb = copy.deepcopy(base)
            code = next(c for c in nb.cells if c.cell_type == "code")
            code.source = f"# submission of {student}\n" + code.source
            path = folders[name] / student / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
    return folders


# --- the grader --------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GRADER_RUNNER", None)  # it would override --runner
    return env


def grader_cli(args: list[str], check: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "grader", "--course", str(ROOT), *args]
    done = subprocess.run(cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True)
    if check and done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return done


def grade_help() -> str:
    return grader_cli(["grade", "--help"], check=True).stdout


def has_option(help_text: str, option: str) -> bool:
    """Whether `grader grade --help` lists `option` (at the start of an option's line)."""
    return re.search(rf"^\s+(-\w, )?{re.escape(option)}(\s|=|$)", help_text, re.M) is not None


def read_results(out: Path, name: str, run: Run, want: str | None) -> None:
    """Fold OUT/<student>/<name>/results.json into `run`: completed, student_s, memory, runner."""
    total = 0.0
    for path in sorted(out.glob(f"*/{name}/results.json")):
        extra = json.loads(path.read_text(encoding="utf-8")).get("extra_data", {})
        timing = extra.get("timing") or {}
        runner = next(
            (s.split()[1] for s in extra.get("isolation", []) if s.startswith("runner:")), "?"
        )
        run.runners[runner] = run.runners.get(runner, 0) + 1
        if want and runner != want:
            run.problems.append(f"{path.parent}: ran on the {runner} runner, not {want}")
        if extra.get("run_status") != "completed" or timing.get("student_s") is None:
            run.problems.append(f"{path.parent}: {extra.get('run_status')}")
            continue
        run.completed += 1
        total += timing["student_s"]
        if timing.get("total_s") is not None:
            run.job_overhead_s.append(timing["total_s"] - timing["student_s"])
        if timing.get("private_mb") is not None:
            run.private_mb.append(timing["private_mb"])
        if timing.get("peak_rss_mb") is not None:
            run.peak_rss_mb.append(timing["peak_rss_mb"])
    run.student_s = (run.student_s or 0.0) + total


def grade_one(folder: Path, name: str, out: Path, flags: list[str]) -> tuple[float, str]:
    """One timed `grader grade` call; returns (wall seconds, a problem or '')."""
    args = ["grade", str(folder), "-a", name, "--out", str(out), "--json", *flags]
    t0 = time.perf_counter()
    done = grader_cli(args)
    wall = time.perf_counter() - t0
    problem = ""
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1]
        problem = f"grader grade -a {name} exited {done.returncode}: {tail}"
    return wall, problem


def grade_class(cfg: str, rnd: int, jobs: int, flags: list[str], setup: Setup) -> list[Run]:
    """The class, one `grader grade` call per assignment: a Run for the class, one for keras."""
    want = {"cold-1": "cold", "warm-1": "warm", "warm-N": "warm"}.get(cfg)  # Dask: as it says
    whole = Run(cfg, "class", rnd, jobs, 0.0, 0)
    runs = [whole]
    for name, folder in setup.folders.items():
        out = setup.work / "runs" / f"r{rnd}-{cfg}" / name
        wall, problem = grade_one(folder, name, out, flags + setup.force)
        n = setup.counts[name]
        part = Run(cfg, name, rnd, jobs, wall, n)
        read_results(out, name, part, want)
        part.problems += [problem] if problem else []
        if part.completed < n:
            part.problems.append(f"{name}: {part.completed} of {n} submissions completed")
        whole.wall_s += wall
        whole.submissions += n
        whole.completed += part.completed
        whole.student_s = (whole.student_s or 0.0) + (part.student_s or 0.0)
        whole.runners = {k: whole.runners.get(k, 0) + v for k, v in part.runners.items()}
        whole.private_mb += part.private_mb
        whole.peak_rss_mb += part.peak_rss_mb
        whole.job_overhead_s += part.job_overhead_s
        whole.problems += part.problems
        if name == KERAS:
            runs.append(part)
        if cfg == "warm-N" and setup.force:  # the result store: the same call, nothing changed
            wall, problem = grade_one(folder, name, out, flags)
            again = Run("warm-N re-grade", name, rnd, jobs, wall, n)
            again.problems += [problem] if problem else []
            setup.regrades.append((part, again))
    return runs


@dataclass
class Setup:
    work: Path
    counts: dict[str, int]
    folders: dict[str, Path]
    jobs: int
    force: list[str]  # ["--force"] when the CLI has a result store
    dask: bool
    regrades: list[tuple[Run, Run]] = field(default_factory=list)


# --- nbgrader ----------------------------------------------------------------------------------

NBGRADER_CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "bench"
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db!r}
c.Execute.kernel_name = "bench-python3"
c.Execute.timeout = 1800
c.Execute.startup_timeout = 600
"""

# IPython startup file of nbgrader's kernel: MNIST as the grader serves it, offline.
MNIST_STARTUP = """\
import numpy as _np
import tensorflow as _tf

def _bench_load_data(path="mnist.npz"):
    with _np.load({npz!r}, allow_pickle=False) as d:
        return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])

_tf.keras.datasets.mnist.load_data = _bench_load_data
"""


def jupyter_home(work: Path) -> dict[str, str]:
    """A private Jupyter/IPython home: a python3 kernelspec on this interpreter, and MNIST."""
    import numpy as np

    from grader.course.data import splits_for

    home = work / "jupyter"
    spec = home / "data" / "kernels" / "bench-python3"
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (bench)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1), encoding="utf-8")
    s = splits_for("mnist")
    npz = home / "mnist.npz"
    np.savez(npz, x_train=s.train_x, y_train=s.train_y, x_test=s.valid_x, y_test=s.valid_y)
    startup = home / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-mnist.py").write_text(MNIST_STARTUP.format(npz=str(npz)), encoding="utf-8")
    (home / "config").mkdir(exist_ok=True)
    # nbgrader runs `alembic` by name: this interpreter's, whatever the venv's scripts say
    shim = home / "bin" / "alembic"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m alembic "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    return {
        "PATH": f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_PATH": str(home / "data"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "0",
    }


def nbgrader(args: list[str], course: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`nbgrader ARGS` in `course`; its output kept in course/nbgrader-<command>.log."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    done = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    log = course / f"nbgrader-{args[0]}.log"
    log.write_text(f"$ {' '.join(cmd)}\n{done.stdout}\n{done.stderr}", encoding="utf-8")
    return done


def last_lines(text: str, n: int = 3) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-n:])


def nbgrader_course(setup: Setup, rnd: int, env: dict[str, str]) -> tuple[Path, str]:
    """A fresh nbgrader course for this round: source, generated release, submissions."""
    course = setup.work / "runs" / f"r{rnd}-nbgrader"
    source = course / "source" / KERAS
    source.mkdir(parents=True)
    shutil.copy(setup.work / "nbgrader-export" / "source" / KERAS / f"{KERAS}.ipynb", source)
    db = f"sqlite:///{course / 'gradebook.db'}"
    config = NBGRADER_CONFIG.format(root=str(course), db=db)
    (course / "nbgrader_config.py").write_text(config, encoding="utf-8")
    done = nbgrader(["generate_assignment", KERAS, "--force"], course, env)
    if done.returncode != 0:
        return course, f"nbgrader generate_assignment failed: {last_lines(done.stderr)}"
    for nb in sorted(setup.folders[KERAS].glob(f"*/{KERAS}.ipynb")):
        target = course / "submitted" / nb.parent.name / KERAS / f"{KERAS}.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copy(nb, target)
    return course, ""


def nbgrader_autograded(course: Path) -> tuple[int, list[str]]:
    """How many autograded notebooks ran every cell without an error."""
    import nbformat

    ok, problems = 0, []
    for nb_path in sorted(course.glob(f"autograded/*/{KERAS}/{KERAS}.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        errors = [
            o.get("ename", "?")
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        if errors:
            problems.append(f"{nb_path}: {', '.join(errors)}")
        else:
            ok += 1
    return ok, problems


def run_nbgrader(setup: Setup, rnd: int, env: dict[str, str]) -> list[Run]:
    n = setup.counts.get(KERAS, 0)
    run = Run("nbgrader", KERAS, rnd, 1, 0.0, n)
    course, problem = nbgrader_course(setup, rnd, env)
    if problem:
        run.problems.append(problem)
        return [run]
    t0 = time.perf_counter()
    done = nbgrader(["autograde", KERAS, "--create", "--force"], course, env)
    run.wall_s = time.perf_counter() - t0
    run.completed, run.problems = nbgrader_autograded(course)
    if done.returncode != 0:
        run.problems.append(
            f"nbgrader autograde exited {done.returncode}: {last_lines(done.stderr)}"
        )
    if run.completed < n:
        run.problems.append(f"nbgrader: {run.completed} of {n} notebooks ran without an error")
    run.runners = {"nbgrader (no sandbox)": run.completed}
    return [run]


# --- Dask --------------------------------------------------------------------------------------


def dask_available(help_text: str) -> str:
    """'' when this checkout can grade on Dask, else why not."""
    import importlib.util

    if importlib.util.find_spec("grader.run.cluster") is None:
        return "no grader.run.cluster in this checkout"
    if not has_option(help_text, "--scheduler"):
        return "`grader grade` has no --scheduler option in this checkout"
    if importlib.util.find_spec("distributed") is None:
        return "dask.distributed is not installed"
    return ""


def run_dask(setup: Setup, rnd: int) -> list[Run]:
    """A fresh LocalCluster (its start not timed), then the class on it."""
    from distributed import LocalCluster

    n = setup.jobs
    with LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        flags = ["--scheduler", address, "--jobs", str(n)]
        return grade_class("dask-N", rnd, n, flags, setup)


# --- the rounds --------------------------------------------------------------------------------


def flags_for(cfg: str, jobs: int) -> list[str]:
    runner, n = cfg.split("-")
    return ["--runner", runner, "--jobs", str(jobs if n == "N" else int(n))]


def one(cfg: str, rnd: int, setup: Setup, env: dict[str, str]) -> list[Run]:
    if cfg == "nbgrader":
        return run_nbgrader(setup, rnd, env)
    if cfg == "dask-N":
        return run_dask(setup, rnd)
    jobs = setup.jobs if cfg.endswith("-N") else 1
    return grade_class(cfg, rnd, jobs, flags_for(cfg, setup.jobs), setup)


def rounds(configs: list[str], n_rounds: int, setup: Setup, env: dict[str, str]) -> list[Run]:
    runs: list[Run] = []
    for rnd in range(n_rounds):
        k = rnd % len(configs)
        order = configs[k:] + configs[:k]  # rotated: no configuration always runs first
        print(f"round {rnd + 1}/{n_rounds}: {', '.join(order)}", flush=True)
        for cfg in order:
            new = one(cfg, rnd, setup, env)
            for run in new:
                print("  " + progress_line(run), flush=True)
            runs += new
    return runs


def progress_line(run: Run) -> str:
    over = "-" if run.overhead is None else f"{run.overhead:.2f}"
    per_job = "-" if run.per_job_overhead is None else f"{run.per_job_overhead:.2f}"
    limit = "-" if run.of_limit is None else f"{run.of_limit:.0%}"
    line = (
        f"{run.config:>9} {run.klass:<12} {run.wall_s:7.1f} s  {run.per_submission:6.2f} s/sub  "
        f"overhead {over} s/sub (per job {per_job} s)  {limit} of the limit  "
        f"({run.completed}/{run.submissions} ok)"
    )
    return line + (f"  !! {len(run.problems)} problem(s)" if run.problems else "")


# --- the report --------------------------------------------------------------------------------


def clean(runs: list[Run], cfg: str, klass: str) -> list[Run]:
    return [r for r in runs if r.config == cfg and r.klass == klass and not r.problems]


def median(runs: list[Run], attr: str) -> float | None:
    values = [getattr(r, attr) for r in runs if getattr(r, attr) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def spread(runs: list[Run], attr: str, spec: str = ".1f") -> str:
    values = [getattr(r, attr) for r in runs if getattr(r, attr) is not None]
    if not values:
        return "-"
    mid = f"{statistics.median(values):{spec}}"
    return mid if len(values) == 1 else f"{mid} [{min(values):{spec}}, {max(values):{spec}}]"


def table(runs: list[Run], configs: list[str]) -> str:
    head = (
        "| configuration | class | submissions | jobs | wall s, median [min, max] | s / submission"
        " | overhead s / submission | per-job overhead s | of the physical limit | rounds |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cfg in configs:
        for klass in ("class", KERAS):
            every = [r for r in runs if r.config == cfg and r.klass == klass]
            if not every:
                continue
            ok = [r for r in every if not r.problems]
            bad = (
                f" ({len(every) - len(ok)} with problems, left out)" if len(ok) < len(every) else ""
            )
            first = every[0]
            lines.append(
                f"| {describe(cfg, first.jobs)} | {klass_name(klass)} "
                f"| {first.submissions} | {first.jobs} | {spread(ok, 'wall_s')} "
                f"| {spread(ok, 'per_submission', '.2f')} | {spread(ok, 'overhead', '.2f')} "
                f"| {spread(ok, 'per_job_overhead', '.2f')} "
                f"| {fmt(median(ok, 'of_limit'), '.0%')} | {len(ok)}{bad} |"
            )
    return "\n".join(lines)


def describe(cfg: str, jobs: int) -> str:
    return {
        "nbgrader": f"nbgrader {version('nbgrader')} autograde (no sandbox)",
        "cold-1": "grader, cold runner",
        "warm-1": "grader, warm runner",
        "warm-N": "grader, warm runner",
        "dask-N": f"grader on a Dask LocalCluster ({jobs} workers)",
    }.get(cfg, cfg)


def version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as of

    try:
        return of(package)
    except PackageNotFoundError:
        return "(not installed)"


def klass_name(klass: str) -> str:
    return "whole class" if klass == "class" else f"{klass} only"


def verdict(value: float | None, ok) -> str:
    return "not measured" if value is None else ("PASS" if ok(value) else "MISS")


def ratio(runs: list[Run], a: tuple[str, str], b: tuple[str, str]) -> float | None:
    """median wall of a / median wall of b."""
    wa, wb = median(clean(runs, *a), "wall_s"), median(clean(runs, *b), "wall_s")
    return None if wa is None or wb is None or wb == 0 else wa / wb


def regrade_ratio(setup: Setup) -> float | None:
    """Per round: the re-grade calls' wall over the first calls' wall; the median."""
    per_round: dict[int, list[float]] = {}
    for first, again in setup.regrades:
        if first.problems or again.problems:
            continue
        walls = per_round.setdefault(first.round, [0.0, 0.0])
        walls[0] += first.wall_s
        walls[1] += again.wall_s
    values = [again / first for first, again in per_round.values() if first > 0]
    return statistics.median(values) if values else None


def targets(runs: list[Run], setup: Setup, why_no_dask: str) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, verdict) for each figure the issue names."""
    n = setup.jobs
    rows = []
    for cfg in ("warm-1", "warm-N"):
        v = median(clean(runs, cfg, "class"), "overhead")
        jobs = 1 if cfg == "warm-1" else n
        rows.append(
            (
                f"overhead per submission, warm runner, {jobs} job(s)",
                fmt(v, ".2f", " s"),
                "<= 0.3 s",
                verdict(v, lambda x: x <= 0.3),
            )
        )
        v = median(clean(runs, cfg, "class"), "per_job_overhead")
        rows.append(
            (
                f"overhead per job (its own timings), warm runner, {jobs} job(s)",
                fmt(v, ".2f", " s"),
                "<= 0.3 s",
                verdict(v, lambda x: x <= 0.3),
            )
        )
    v = median(clean(runs, "warm-N", "class"), "of_limit")
    rows.append(
        (
            f"class throughput vs the physical limit, warm, {n} jobs",
            fmt(v, ".0%"),
            ">= 90%",
            verdict(v, lambda x: x >= 0.9),
        )
    )
    v = ratio(runs, ("nbgrader", KERAS), ("warm-N", KERAS))
    note = "" if n == 2 else " (the issue's target is for 2 jobs)"
    rows.append(
        (
            f"vs nbgrader, {KERAS} class, warm, {n} jobs{note}",
            fmt(v, ".2f", "x"),
            ">= 5x",
            verdict(v, lambda x: x >= 5),
        )
    )
    v = ratio(runs, ("warm-1", "class"), ("warm-N", "class"))
    want = 0.9 * n
    rows.append(
        (
            f"{n} jobs vs 1 job, warm, whole class",
            fmt(v, ".2f", "x"),
            f">= {want:.1f}x",
            verdict(v, lambda x: x >= want),
        )
    )
    rows.append(regrade_row(runs, setup))
    v = ratio(runs, ("dask-N", "class"), ("warm-N", "class"))
    if why_no_dask:
        rows.append(
            (
                "Dask LocalCluster vs local warm grading",
                "-",
                "<= 1.20x",
                f"dask: not available in this checkout ({why_no_dask})",
            )
        )
    else:
        rows.append(
            (
                f"Dask LocalCluster ({n} workers) vs local warm, {n} jobs",
                fmt(v, ".2f", "x"),
                "<= 1.20x (within 20%)",
                verdict(v, lambda x: x <= 1.2),
            )
        )
    return rows


def regrade_row(runs: list[Run], setup: Setup) -> tuple[str, str, str, str]:
    figure = "re-grading an unchanged class (warm, N jobs) vs its first run"
    if not setup.force:
        return (figure, "-", "< 5%", "not measurable: no result store in this checkout")
    v = regrade_ratio(setup)
    return (figure, fmt(v, ".1%"), "< 5%", verdict(v, lambda x: x < 0.05))


def no_target(runs: list[Run]) -> list[tuple[str, str]]:
    """Ratios shown for context, without a target."""
    pairs = [
        ("cold, 1 job / warm, 1 job (whole class)", ("cold-1", "class"), ("warm-1", "class")),
        (f"nbgrader / warm, 1 job ({KERAS})", ("nbgrader", KERAS), ("warm-1", KERAS)),
        (f"nbgrader / cold, 1 job ({KERAS})", ("nbgrader", KERAS), ("cold-1", KERAS)),
    ]
    return [(label, fmt(ratio(runs, a, b), ".2f", "x")) for label, a, b in pairs]


def memory(runs: list[Run]) -> list[str]:
    whole = [r for r in runs if r.klass == "class"]  # the keras_mnist runs are part of these
    warm = [m for r in whole if r.config.startswith("warm") for m in r.private_mb]
    cold = [m for r in whole if r.config.startswith("cold") for m in r.peak_rss_mb]
    cold_private = [m for r in whole if r.config.startswith("cold") for m in r.private_mb]
    mid = lambda xs: fmt(statistics.median(xs), ".0f", " MB") if xs else "-"  # noqa: E731
    return [
        f"warm jobs: median private_mb {mid(warm)} (what a forked job adds to its worker; "
        f"{len(warm)} jobs)",
        f"cold jobs: median peak_rss_mb {mid(cold)} (the job's whole interpreter; {len(cold)} "
        f"jobs; private_mb {mid(cold_private)})",
    ]


def report(runs: list[Run], setup: Setup, configs: list[str], why_no_dask: str) -> dict:
    print("\n## Throughput: the same class on every engine\n")
    counts = ", ".join(f"{n} {name}" for name, n in setup.counts.items() if n)
    command = " ".join(["benchmarks/throughput.py", *sys.argv[1:]])
    print(f"`{command}`: {counts} notebooks (correct submissions), N = {setup.jobs} jobs, on")
    print(f"{cpus()} CPUs. nbgrader runs the {KERAS} notebooks only (the TF1 assignments need")
    print("`tf.placeholder`, gone in TF 2: they do not run in a plain kernel). The grader: one")
    print("`grader grade -a NAME` call per assignment, the class's wall time their sum. nbgrader")
    print("autogrades one notebook after another (jobs 1), TensorFlow free to use every CPU.")
    print("overhead = (wall x jobs - sum of student_s) / submissions; of the physical limit =")
    print(
        "(sum of student_s / jobs) / wall; student_s: the student's own code, timed in the job.\n"
    )
    print(table(runs, configs))
    rows = targets(runs, setup, why_no_dask)
    print("\n| figure | measured | target | verdict |\n|---|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for label, value in no_target(runs):
        print(f"{label}: {value} (no target)")
    mem = memory(runs)
    print("\nMemory per job: " + "; ".join(mem))
    problems = [(r, p) for r in runs for p in r.problems]
    for again in (a for _, a in setup.regrades):
        problems += [(again, p) for p in again.problems]
    if problems:
        print(f"\n{len(problems)} problem(s) (those runs are left out of the medians):")
        for run, p in problems[:40]:
            print(f"  {run.config} round {run.round + 1}: {p}")
    if why_no_dask:
        print(f"\ndask: not available in this checkout ({why_no_dask})")
    return {"targets": rows, "memory": mem, "context": no_target(runs)}


def as_json(runs: list[Run], setup: Setup, summary: dict, args) -> dict:
    def one(r: Run) -> dict:
        d = dict(r.__dict__)
        d.update(per_submission=r.per_submission, overhead=r.overhead, of_limit=r.of_limit)
        d.update(per_job_overhead=r.per_job_overhead)
        return d

    return {
        "class": setup.counts,
        "jobs": setup.jobs,
        "rounds": args.rounds,
        "cpus": sorted(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(),
        "runs": [one(r) for r in runs],
        "regrades": [{"first": one(a), "again": one(b)} for a, b in setup.regrades],
        "targets": [
            dict(zip(("figure", "measured", "target", "verdict"), t, strict=True))
            for t in summary["targets"]
        ],
        "memory": summary["memory"],
        "context": dict(summary["context"]),
    }


# --- main --------------------------------------------------------------------------------------


def quiet(load0: float) -> None:
    """Say when the machine was not quiet: the figures then say little."""
    load1 = os.getloadavg()[0]
    print(f"\nload average (1 min): {load0:.2f} before the rounds, {load1:.2f} after them")
    if load0 > 0.5:
        print("WARNING: the machine was busy before the rounds began: these timings say little")


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--perceptron", type=int, default=24, help="perceptron notebooks (24)")
    ap.add_argument("--keras", type=int, default=8, help=f"{KERAS} notebooks (8)")
    ap.add_argument("--mlp", type=int, default=8, help="mnist_mlp notebooks (8)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (3; 1 with --quick)")
    ap.add_argument("--jobs", type=int, default=cpus(), help="N, jobs for warm-N and dask-N")
    ap.add_argument("--quick", action="store_true", help="2 notebooks per assignment, 1 round")
    ap.add_argument(
        "--skip", action="append", default=[], choices=CONFIGS, help="leave a configuration out"
    )
    ap.add_argument("--mnist", type=Path, help="MNIST for every engine (sets $GRADER_MNIST)")
    ap.add_argument("--work", type=Path, help="work folder (default: a fresh temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (outputs, logs)")
    ap.add_argument("--json", type=Path, help="write every number here")
    return ap


def make_setup(args) -> tuple[Setup, str]:
    help_text = grade_help()
    work = args.work or Path(tempfile.mkdtemp(prefix="grader-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    counts = dict(zip(ASSIGNMENTS, (args.perceptron, args.keras, args.mlp), strict=True))
    if args.quick:
        counts = {name: min(n, 2) for name, n in counts.items()}
    if not any(counts.values()):
        sys.exit("an empty class: give --perceptron, --keras or --mlp a count above 0")
    print(f"work folder: {work}; making the class ({counts}) ...", flush=True)
    folders = build_class(work, counts)
    force = ["--force"] if has_option(help_text, "--force") else []
    why_no_dask = "" if "dask-N" not in args.skip else "skipped (--skip dask-N)"
    why_no_dask = why_no_dask or dask_available(help_text)
    setup = Setup(work, counts, folders, args.jobs, force, not why_no_dask)
    return setup, why_no_dask


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.mnist:
        os.environ["GRADER_MNIST"] = str(args.mnist.resolve())
    load0 = os.getloadavg()[0]
    print(f"load average now: {load0:.2f} (timings mean something on a quiet machine)")
    setup, why_no_dask = make_setup(args)
    configs = [c for c in CONFIGS if c not in args.skip and (c != "dask-N" or setup.dask)]
    if not setup.counts.get(KERAS) and "nbgrader" in configs:
        configs.remove("nbgrader")
    env = {**child_env(), **jupyter_home(setup.work)} if "nbgrader" in configs else {}
    try:
        runs = rounds(configs, args.rounds, setup, env)
        summary = report(runs, setup, configs, why_no_dask)
        quiet(load0)
        if args.json:
            data = as_json(runs, setup, summary, args)
            args.json.write_text(json.dumps(data, indent=1), encoding="utf-8")
            print(f"\nevery number: {args.json}")
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(setup.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
