"""The reference solutions' own runs, for comparison in the feedback (their loss curves and
decision regions, drawn beside the student's).

The grader runs each reference once, in the same sandbox as the students, and keeps what the
pages need in the per-user cache (`grader.run.store.user_cache()/reference/`: `$GRADER_CACHE`,
else `$XDG_CACHE_HOME/grader`, else `~/.cache/grader`), keyed by a hash of the reference, the
spec and the grader (its version and its source), so neither a class graded again nor a class
graded into a new output folder pays for it twice.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from grader.context import Context
from grader.pipeline import Submission
from grader.results import write_atomic
from grader.run.store import data_digest, grader_fingerprint, user_cache

FORMAT = "figures-2"  # what a cached file holds: {"loss_curve": ..., "boundary": ...}
KEPT = ("loss_curve", "boundary")


def _key(course, name: str) -> str:
    ref = course.reference(name)
    files = sorted(ref.glob("*.py")) if ref.is_dir() else [ref]
    # The grader's source counts too, not only its version (the figures are its computation),
    # and so does the data set: a loss curve on full MNIST is not one on the embedded digits.
    h = hashlib.sha256(grader_fingerprint().encode() + FORMAT.encode())
    h.update(data_digest(course.assignment(name)).encode())
    for path in [*files, course.assignments_dir / name / "assignment.toml"]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def reference_figures(ctx: Context, names: list[str], *, cache: Path | None = None) -> dict:
    """{assignment: {"loss_curve": {record: [values]}, "boundary": {...}}} from each
    reference's run (cached in `cache`; defaults to `None`: the per-user cache's
    `reference/` folder)."""
    course = ctx.course
    cache = cache if cache is not None else user_cache() / "reference"
    curves, todo = {}, []
    for name in names:
        if not course.reference(name).exists():
            continue
        found = _read(cache / f"{name}-{_key(course, name)}.json")
        if found is not None:
            curves[name] = found
        else:
            todo.append(Submission("reference", course.assignment(name), course.reference(name)))
    for result in ctx.grade_many(todo):
        kept = {k: result.figures[k] for k in KEPT if result.figures.get(k)}
        curves[result.assignment] = kept
        try:
            name = result.assignment
            write_atomic(cache / f"{name}-{_key(course, name)}.json", json.dumps(kept))
        except OSError:  # a cache that cannot be written costs a re-run next time, nothing else
            pass
    return curves


def _read(path: Path) -> dict | None:
    """A cached entry, or None (absent, unreadable, or not what this version writes)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
