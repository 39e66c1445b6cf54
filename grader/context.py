"""The course and a runner, assembled once: what every entry point grades with.

`grading(...)` finds the course, lists the folders student code must never see (the course's
private folders plus whatever the caller adds: the class folder, the output folder), starts a
runner with as many slots as jobs, and closes it at the end, whatever happened. The command
line, `grader.check` in a notebook, `grader validate`, the Gradescope bundle, the benchmarks
and the tests all grade through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.course.discovery import Course, find_course
from grader.course.spec import Assignment
from grader.pipeline import Options, Submission, grade_file, grade_many
from grader.results import SubmissionResult
from grader.run.runner import ColdRunner, Runner

__all__ = ["Context", "grading"]


@dataclass
class Context:
    """A course, a runner and the folders hidden from student code, ready to grade."""

    course: Course
    runner: Runner
    hide: tuple[str, ...]
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
        options = Options(visible_only=visible_only, hide=self.hide)
        return grade_file(spec, Path(path), self.runner, student=student, options=options)

    def grade_many(
        self,
        submissions: list[Submission],
        on_result: Callable[[SubmissionResult], None] | None = None,
    ) -> list[SubmissionResult]:
        """Grade submissions `jobs` at a time; one broken submission never stops the others."""
        return grade_many(
            submissions, self.runner, jobs=self.jobs, hide=self.hide, on_result=on_result
        )


@contextmanager
def grading(
    course: Course | str | Path | None = None,
    *,
    jobs: int = 1,
    also_hide: Sequence[str | Path] = (),
    runner: Runner | None = None,
) -> Iterator[Context]:
    """A `Context` for the duration of a `with` block; the runner is closed at the end.

    Args:
        course: a `Course`, or its folder. Defaults to `None`: found as `find_course` finds it.
        jobs: submissions graded at once (the runner's slots). Defaults to `1`.
        also_hide: more folders student code must not see (the class and output folders).
        runner: a runner to use instead of a new cold runner (it is not closed here).
    """
    found = course if isinstance(course, Course) else find_course(course)
    hide = [*found.private_dirs(), *(Path(p).resolve() for p in also_hide)]
    own = runner is None
    active: Runner = ColdRunner(slots=jobs) if runner is None else runner
    try:
        yield Context(found, active, tuple(dict.fromkeys(map(str, hide))), max(1, jobs))
    finally:
        if own:
            active.close()
