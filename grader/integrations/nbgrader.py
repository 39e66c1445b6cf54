"""nbgrader interop: references as nbgrader source notebooks, scores into its gradebook.

* `release_notebook(course, name)`: the reference as an nbgrader *source* notebook. Solution
  blocks (`### BEGIN SOLUTION` / `### END SOLUTION`) are kept as they are; each line carrying a
  `# BLANK:` directive becomes a solution region (the statement's code, without the directive,
  between the markers at its indentation), which nbgrader replaces with its own stub. The
  region is the whole statement the line belongs to (see `_source_text`).
* `export_course(course, root, names)`: an nbgrader course directory,
  `root/source/<name>/<name>.ipynb` and a minimal `nbgrader_config.py`, ready for
  `nbgrader generate_assignment <name>`. Multi-file assignments are skipped.
* `write_scores(db_url, results)`: each result's checks into the nbgrader gradebook. The
  assignment gets one notebook named after it (the notebook nbgrader releases) and one grade
  cell per check (max_score = the check's max points); the student's submission gets an
  `auto_score` per check, so `Gradebook.find_submission(a, s).score` is the result's score.

nbgrader is imported lazily: the rest of the grader does not need it.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from grader.authoring.templates import BEGIN, BLANK_RE, END, make_template, mark_cells
from grader.errors import MarkerError

CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.db_url = {db_url!r}
"""


def _statement_spans(text: str) -> list[tuple[int, int]]:
    """(first, last) 1-based lines of every statement, innermost last wins by size."""
    try:
        tree = ast.parse(text)
    except SyntaxError:  # e.g. a shell escape: each BLANK line is then its own region
        return []
    return [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt)
    ]


def _source_text(reference: Path) -> str:
    """The reference with each `# BLANK:` line turned into a solution region.

    A region holds the whole statement the line belongs to (the innermost one): the line itself
    for a simple one-line statement, every line of a statement spread over several lines, and
    the whole compound statement (its body, `elif`/`else` clauses included) for a line that
    opens one (`if memo[n-1] != 0:`). nbgrader replaces a region with its stub, so anything
    less would leave the released notebook unparsable.
    """
    text = reference.read_text(encoding="utf-8")
    lines = text.splitlines()
    spans = _statement_spans(text)
    regions: list[tuple[int, int]] = []  # 0-based, inclusive
    in_block = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == BEGIN:
            in_block = True
        elif stripped == END:
            in_block = False
        elif not in_block and BLANK_RE.search(line):
            containing = [s for s in spans if s[0] <= i + 1 <= s[1]]
            first, last = min(containing, key=lambda s: s[1] - s[0], default=(i + 1, i + 1))
            regions.append((first - 1, last - 1))
    merged: list[tuple[int, int]] = []
    for first, last in sorted(regions):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    out: list[str] = []
    pos = 0
    for first, last in merged:
        body = lines[first : last + 1]
        if any(line.strip() in (BEGIN, END) for line in body):
            raise MarkerError(
                f"{reference}:{first + 1}: a BLANK statement holds a solution block; "
                "use one marker kind per statement"
            )
        out += lines[pos:first]
        indent = body[0][: len(body[0]) - len(body[0].lstrip())]
        out.append(f"{indent}{BEGIN}")
        for line in body:
            match = BLANK_RE.search(line)
            out.append(line[: match.start()].rstrip() if match else line)
        out.append(f"{indent}{END}")
        pos = last + 1
    out += lines[pos:]
    return "\n".join(out) + "\n"


def release_notebook(course, name: str):
    """The reference of a single-file assignment as an nbgrader source notebook."""
    import jupytext

    reference = course.reference(name)
    if reference.is_dir():
        raise ValueError(f"{name}: a multi-file assignment has no single source notebook")
    make_template(name, reference)  # malformed or unbalanced markers: MarkerError, file and line
    nb = jupytext.reads(_source_text(reference), fmt="py:percent")
    mark_cells(nb, name, lambda source: any(line.strip() == BEGIN for line in source.splitlines()))
    return nb


def export_course(course, root: Path, names: Iterable[str]) -> list[Path]:
    """Write an nbgrader course directory under `root`; returns the notebooks written.
    Multi-file assignments (specs with `files`) are skipped."""
    import nbformat

    root = Path(root)
    written = []
    for name in names:
        if course.assignment(name).files:
            continue
        path = root / "source" / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(release_notebook(course, name), path)
        written.append(path)
    config = root / "nbgrader_config.py"
    if not config.exists():
        db_url = f"sqlite:///{(root / 'gradebook.db').resolve()}"
        config.write_text(CONFIG.format(db_url=db_url), encoding="utf-8")
    return written


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
