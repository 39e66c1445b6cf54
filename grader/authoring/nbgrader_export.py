"""References as nbgrader *source* notebooks, for courses that release through nbgrader.

* `release_notebook(course, name)`: the reference as an nbgrader source notebook. Solution
  blocks (`### BEGIN SOLUTION` / `### END SOLUTION`) are kept as they are; each line carrying a
  `# BLANK:` directive becomes a solution region (the statement's code, without the directive,
  between the markers at its indentation), which nbgrader replaces with its own stub. The
  region is the whole statement the line belongs to (see `_source_text`).
* `export_course(course, root, names)`: an nbgrader course directory,
  `root/source/<name>/<name>.ipynb` and a minimal `nbgrader_config.py`, ready for
  `nbgrader generate_assignment <name>`. Multi-file assignments are skipped.
"""

from __future__ import annotations

import ast
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
