"""Auto-grading for neural-network courses in TensorFlow.

The few names users call; everything else is private (`grader._*`). Importing `grader` does
not import TensorFlow: student code only ever runs in a sandboxed child process.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["CheckResult", "SubmissionResult", "__version__", "check_file"]

from ._results import CheckResult, SubmissionResult


def check_file(path, assignment: str, *, course=None) -> SubmissionResult:
    """Grade one file against an assignment's public checks (what `grader check` does).

    Args:
        path: a `.py` or `.ipynb` submission.
        assignment: the assignment name (see `grader list`).
        course: the course folder. Defaults to `None`: $GRADER_COURSE, else the nearest folder
            above the working directory with an `assignments/` folder.
    """
    from pathlib import Path

    from ._course import find_course
    from ._pipeline import Options, grade_file
    from ._sandbox.runner import ColdRunner

    found = find_course(course)
    runner = ColdRunner(slots=1)
    try:
        return grade_file(
            found.assignment(assignment),
            Path(path),
            runner,
            options=Options(visible_only=True, hide=tuple(map(str, found.private_dirs()))),
        )
    finally:
        runner.close()
