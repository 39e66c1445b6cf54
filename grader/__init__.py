"""Auto-grading for neural-network courses in TensorFlow.

The few names users call; the rest is reached through the stage folders. Importing `grader` does
not import TensorFlow: student code only ever runs in a sandboxed child process.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["CheckResult", "SubmissionResult", "__version__", "check", "check_file"]

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results module loads on first use: the sandboxed child imports nothing
    from grader.results import CheckResult, SubmissionResult


def __getattr__(name: str):
    if name in ("CheckResult", "SubmissionResult"):
        from grader import results

        return getattr(results, name)
    raise AttributeError(f"module 'grader' has no attribute {name!r}")


def check_file(path, assignment: str, *, course=None) -> SubmissionResult:
    """Grade one file against an assignment's public checks (what `grader check` does).

    Args:
        path: a `.py` or `.ipynb` submission.
        assignment: the assignment name (see `grader list`).
        course: the course folder. Defaults to `None`: $GRADER_COURSE, else the nearest folder
            above the working directory with an `assignments/` folder.
    """
    from grader.context import grading

    with grading(course, sandbox="best") as ctx:  # the student's own code, on their machine
        return ctx.grade(assignment, path, visible_only=True)


def _current_notebook(assignment: str):
    """The notebook a kernel runs: Jupyter's $JPY_SESSION_NAME, VS Code's `__vsc_ipynb_file__`,
    else `<assignment>.ipynb` (or the only notebook) in the working directory."""
    import os
    from pathlib import Path

    from grader.errors import GraderError

    named = os.environ.get("JPY_SESSION_NAME", "")
    if named.endswith(".ipynb") and Path(named).is_file():
        return Path(named)
    try:
        ns = get_ipython().user_ns  # type: ignore[name-defined]  # noqa: F821
        if ns.get("__vsc_ipynb_file__"):
            return Path(ns["__vsc_ipynb_file__"])
    except NameError:
        pass
    here = Path.cwd()
    if (here / f"{assignment}.ipynb").is_file():
        return here / f"{assignment}.ipynb"
    notebooks = sorted(here.glob("*.ipynb"))
    if len(notebooks) == 1:
        return notebooks[0]
    raise GraderError(
        f"cannot tell which notebook to grade in {here}; pass it: "
        f"grader.check({assignment!r}, notebook='my_notebook.ipynb')"
    )


def check(assignment: str, *, notebook=None, course=None) -> SubmissionResult:
    """Grade the notebook this is called from (as saved: save it first), public checks only,
    in the sandbox, and show the feedback: as HTML in Jupyter, as text elsewhere.

    Args:
        assignment: the assignment name, e.g. `"mlp_boundary"`.
        notebook: the notebook file. Defaults to `None`: the notebook the kernel runs.
        course: the course folder. Defaults to `None` (see `check_file`).
    """
    path = notebook or _current_notebook(assignment)
    result = check_file(path, assignment, course=course)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        in_jupyter = get_ipython() is not None and hasattr(get_ipython(), "kernel")
    except ImportError:  # pragma: no cover - IPython comes with nbgrader
        in_jupyter = False
    if in_jupyter:
        from grader.report.pages import submission_page

        display(HTML(submission_page(result)))
    else:
        from rich.console import Console

        from grader.report.terminal import print_submission

        print_submission(result, Console(highlight=False))
    return result
