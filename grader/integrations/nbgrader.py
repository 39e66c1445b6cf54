"""Scores into nbgrader's gradebook.

`write_scores(db_url, results)`: each result's checks into the nbgrader gradebook. The
assignment gets one notebook named after it (the notebook nbgrader releases) and one grade
cell per check (max_score = the check's max points); the student's submission gets an
`auto_score` per check, so `Gradebook.find_submission(a, s).score` is the result's score.

nbgrader is imported lazily: the rest of the grader does not need it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def _cell_names(result) -> list[str]:
    """One grade-cell name per check, unique within the notebook."""
    names: list[str] = []
    for c in result.checks:
        base = c.name or c.check
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name[:128])
    return names


def write_scores(db_url: str, results: list, course_id: str = "default_course") -> None:
    """Record each result's check points into the nbgrader gradebook at `db_url`
    (`course_id` as nbgrader's `Gradebook` takes it)."""
    import warnings

    # nbgrader 0.9.6's own add_submission makes SQLAlchemy warn ("not in session"); harmless,
    # and not for the people grading to read.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _write_scores(db_url, results, course_id)


def _write_scores(db_url: str, results: list, course_id: str) -> None:
    from nbgrader.api import Grade, Gradebook, MissingEntry, SubmittedNotebook

    # nbgrader stamps a new database by running the `alembic` command found on PATH; a venv's
    # interpreter run by its full path does not put the venv's bin/ there.
    bindir = str(Path(sys.executable).parent)
    if shutil.which("alembic") is None and shutil.which("alembic", path=bindir):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    with Gradebook(db_url, course_id=course_id) as gb:
        for result in results:
            a, notebook = result.assignment, result.assignment
            try:
                gb.find_assignment(a)
            except MissingEntry:
                gb.add_assignment(a)
            try:
                gb.find_notebook(notebook, a)
            except MissingEntry:
                gb.add_notebook(notebook, a)
            names = _cell_names(result)
            for name, c in zip(names, result.checks, strict=True):
                gb.update_or_create_grade_cell(
                    name, notebook, a, max_score=float(c.max_points), cell_type="code"
                )
            try:
                gb.find_student(result.student)
            except MissingEntry:
                gb.add_student(result.student)
            try:
                submission = gb.find_submission(a, result.student)
            except MissingEntry:
                submission = gb.add_submission(a, result.student)
            # A submission made before these grade cells existed lacks their rows: add them.
            try:
                snb = gb.find_submission_notebook(notebook, a, result.student)
            except MissingEntry:
                snb = SubmittedNotebook(
                    notebook=gb.find_notebook(notebook, a), assignment=submission
                )
                gb.db.add(snb)
            for name, c in zip(names, result.checks, strict=True):
                cell = gb.find_grade_cell(name, notebook, a)
                try:
                    grade = gb.find_grade(name, notebook, a, result.student)
                except MissingEntry:
                    grade = Grade(cell_id=cell.id, notebook=snb)
                    gb.db.add(grade)
                grade.auto_score = float(c.points)
                grade.needs_manual_grade = False
            gb.db.commit()
