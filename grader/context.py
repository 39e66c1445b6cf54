"""The course and a runner, assembled once: what every entry point grades with.

`grading(...)` finds the course, starts a runner with as many slots as jobs, behind the walls
this machine can build (or refuses, see `sandbox`), and closes it at the end, whatever
happened. The command line, `grader.check` in a notebook, `grader validate`, the Gradescope
bundle, the benchmarks and the tests all grade through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.course.discovery import Course, find_course
from grader.course.spec import Assignment
from grader.pipeline import Options, Submission, grade_file, grade_many
from grader.results import SubmissionResult
from grader.run import walls
from grader.run.runner import Runner
from grader.run.store import ResultStore
from grader.run.warm import RUNNERS, make_runner

__all__ = ["RUNNERS", "Context", "grading", "make_runner"]


@dataclass
class Context:
    """A course and a runner, ready to grade."""

    course: Course
    runner: Runner
    jobs: int = 1

    def grade(
        self,
        assignment: Assignment | str,
        path: Path,
        *,
        student: str = "",
        visible_only: bool = False,
    ) -> SubmissionResult:
        """Grade one submission (a file, or a folder for a multi-file assignment)."""
        spec = self.course.assignment(assignment) if isinstance(assignment, str) else assignment
        options = Options(visible_only=visible_only)
        return grade_file(spec, Path(path), self.runner, student=student, options=options)

    def grade_many(
        self,
        submissions: list[Submission],
        on_result: Callable[[SubmissionResult], None] | None = None,
        *,
        store: ResultStore | None = None,
        force: bool = False,
    ) -> list[SubmissionResult]:
        """Grade submissions `jobs` at a time; one broken submission never stops the others.
        With a `store`, only what it does not have is graded (all of it with `force`); see
        `grader.pipeline.grade_many`."""
        return grade_many(
            submissions, self.runner, jobs=self.jobs, on_result=on_result, store=store, force=force
        )


@contextmanager
def grading(
    course: Course | str | Path | None = None,
    *,
    jobs: int = 1,
    sandbox: str = "auto",
    runner: Runner | None = None,
    kind: str = "cold",
    scheduler: Any = None,
) -> Iterator[Context]:
    """A `Context` for the duration of a `with` block; the runner is closed at the end.

    Args:
        course: a `Course`, or its folder. Defaults to `None`: found as `find_course` finds it.
        jobs: submissions graded at once (the runner's slots). Defaults to `1`.
        sandbox: "auto" (bubblewrap's walls, or refuse with the reason), "none" (no walls:
            `--unsafe-no-sandbox`), or "best" (the walls where this machine allows them, else
            none, said in every result: a student's self-check on their own laptop).
            Defaults to `"auto"`.
        runner: a runner to use instead of a new one (it is not closed here).
        kind: the runner to start: "warm" (TensorFlow imported once per worker, each job forked
            from it behind its own walls; the cold runner where that cannot run, said in every
            result), "cold" (a fresh interpreter per job), or "auto" (warm for a class, since
            its workers pay off from the second job on). `$GRADER_RUNNER` overrides it.
            Defaults to `"cold"`.
        scheduler: grade on a Dask cluster instead of this machine: the scheduler's address
            (`"tcp://HOST:8786"`), a `distributed.Client`, or a cluster object (`LocalCluster`,
            `SLURMCluster`). Each job runs in a worker's own sandbox; `jobs` is then the
            cluster's worker threads. Defaults to `None` (this machine).
    """
    found = course if isinstance(course, Course) else find_course(course)
    if sandbox == "best":
        sandbox = "auto" if walls.probe() is None else "none"
    own = runner is None
    if runner is not None:
        active: Runner = runner
    elif scheduler is not None:
        from grader.run.cluster import DaskRunner  # needs `distributed`: only for a cluster

        active = cluster = DaskRunner(scheduler, sandbox=sandbox)
        jobs = cluster.slots
    else:
        active = make_runner(jobs, sandbox, kind)
    try:
        yield Context(found, active, max(1, jobs))
    finally:
        if own:
            active.close()
