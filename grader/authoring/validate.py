"""`grader validate`: the course checks itself.

Every reference scores full marks (and its rebuilt model reproduces its own TensorFlow
outputs, through the `wiring` check), every template (`.py` and `.ipynb`) scores zero with
exactly one message per unfilled blank, and the templates are what `generate` would write.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.authoring.templates import count_blanks, generate
from grader.context import grading
from grader.pipeline import Submission


def validate(
    course,
    names: list[str],
    jobs: int,
    console: Console,
    *,
    sandbox: str = "auto",
    kind: str = "cold",
) -> bool:
    ok = True
    drift = generate(course, check=True)
    if drift:
        ok = False
        console.print("[red]templates out of date (run 'grader generate'):[/red]")
        for path in drift:
            console.print(f"  {path.relative_to(course.root)}")
    scratch = Path(tempfile.mkdtemp(prefix="grader-validate-"))
    subs = _submissions(course, names, scratch)
    try:
        with grading(course, jobs=jobs, sandbox=sandbox, kind=kind) as ctx:
            results = ctx.grade_many(subs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    table = Table(title="validate", title_justify="left")
    for col in ("assignment", "file", "score", "expected", "verdict"):
        table.add_column(col)
    for sub, result in zip(subs, results, strict=True):
        name = sub.assignment.name
        if sub.student == "reference":
            # Full marks on every check that could run here; a check skipped for want of data
            # is shown as skipped, never counted as passed.
            ran = [c for c in result.checks if c.status != "skipped"]
            skipped = len(result.checks) - len(ran)
            good = all(c.status == "passed" for c in ran) and result.run_status == "completed"
            expected = f"{sum(c.max_points for c in ran):g} (full marks)" + (
                f", {skipped} check(s) skipped: data not here" if skipped else ""
            )
            why = (
                ""
                if good
                else "; ".join(
                    [
                        *result.problems[:1],
                        *(f"{c.name}: {c.message}" for c in result.checks if c.status != "passed"),
                    ]
                )
            )
        else:
            blanks = count_blanks(course, name)
            good = (
                result.score == 0
                and result.run_status == "blanks"
                and len(result.problems) == blanks
            )
            expected = f"0, {blanks} blank message(s)"
            why = (
                "" if good else f"got status {result.run_status}, {len(result.problems)} message(s)"
            )
        ok = ok and good
        verdict = Text("ok", style="green") if good else Text(f"FAIL {why}", style="red")
        time_s = result.timing.get("total_s", 0.0)
        table.add_row(
            name, f"{sub.student} ({time_s:.1f} s)", f"{result.score:g}", expected, verdict
        )
    console.print(table)
    console.print("[green]validate: all good[/green]" if ok else "[red]validate: FAILED[/red]")
    return ok


def _submissions(course, names: list[str], scratch: Path) -> list[Submission]:
    """The references and the templates (.py, and .ipynb; a folder's notebooks copied apart)."""
    subs = []
    for name in names:
        spec = course.assignment(name)
        subs.append(Submission("reference", spec, course.reference(name)))
        if spec.files:  # a folder of templates: grade its .py files, then its notebooks alone
            folder = course.templates_dir / name
            notebooks = scratch / name
            notebooks.mkdir()
            for nb in folder.glob("*.ipynb"):
                shutil.copy(nb, notebooks / nb.name)
            subs.append(Submission("template.py", spec, folder))
            subs.append(Submission("template.ipynb", spec, notebooks))
            continue
        for suffix in (".py", ".ipynb"):
            path = course.templates_dir / f"{name}{suffix}"
            subs.append(Submission(f"template{suffix}", spec, path if path.is_file() else None))
    return subs
