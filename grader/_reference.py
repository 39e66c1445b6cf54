"""The reference solutions' own runs, for comparison in the feedback (their loss curves).

The grader runs each reference once, in the same sandbox as the students, and keeps what the
pages need under `<out>/.reference/`, keyed by a hash of the reference, the spec and the
grader's version, so a class graded again does not pay for it twice.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import __version__
from ._pipeline import Submission, grade_many
from ._results import write_atomic


def _key(course, name: str) -> str:
    ref = course.reference(name)
    files = sorted(ref.glob("*.py")) if ref.is_dir() else [ref]
    h = hashlib.sha256(__version__.encode())
    for path in [*files, course.assignments_dir / name / "assignment.toml"]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def reference_curves(
    course, names: list[str], runner, *, jobs: int, hide: tuple[str, ...], cache: Path
) -> dict:
    """{assignment: {record name: [values]}} from each reference's run (cached)."""
    curves, todo = {}, []
    for name in names:
        if not course.reference(name).exists():
            continue
        cached = cache / f"{name}-{_key(course, name)}.json"
        if cached.is_file():
            curves[name] = json.loads(cached.read_text(encoding="utf-8"))
        else:
            todo.append(Submission("reference", course.assignment(name), course.reference(name)))
    for result in grade_many(todo, runner, jobs=jobs, hide=hide):
        curve = result.figures.get("loss_curve", {})
        curves[result.assignment] = curve
        write_atomic(
            cache / f"{result.assignment}-{_key(course, result.assignment)}.json", json.dumps(curve)
        )
    return curves
