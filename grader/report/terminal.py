"""Reports: views of results (terminal tables, a class's progress bar, the gradebook CSV)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.results import SubmissionResult, write_atomic, write_results_json
from grader.run.names import name_problem, printable
from grader.run.store import NOT_KEPT

OUTPUT_LINES = 15
STYLE = {"passed": "green", "failed": "red", "skipped": "yellow", "error": "magenta"}


def submission_table(result: SubmissionResult) -> Table:
    title = f"{result.assignment}: {result.score:g} / {result.max_score:g}"
    table = Table(title=title, show_lines=True, title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("points", justify="right")
    table.add_column("message", overflow="fold")
    for c in result.checks:
        table.add_row(
            c.name,
            Text(c.status, style=STYLE[c.status]),
            f"{c.points:g}/{c.max_points:g}",
            # plain text (a message may hold [brackets] rich would eat), no escape sequences
            Text(printable(c.message)),
        )
    return table


def print_submission(result: SubmissionResult, console: Console) -> None:
    for problem in result.problems:
        console.print(Text(printable(problem), style="bold red"))
    if result.run_status in ("timeout", "memory", "crash") and result.log.strip():
        # What the code printed before it was stopped: often where it was stuck.
        tail = "\n".join(result.log.rstrip().splitlines()[-OUTPUT_LINES:])
        console.print(Text("your code's output before it stopped (last lines):", style="bold"))
        console.print(Text(printable(tail), style="dim"))
    for note in result.notes:
        console.print(Text(printable(f"note: {note}"), style="dim"))
    console.print(submission_table(result))


def gradebook_csv(results: Iterable[SubmissionResult]) -> str:
    """A row per student; a column per check, per assignment total and run status (completed,
    exception, timeout, blanks, missing, ...), and the overall total."""
    results = list(results)
    columns: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    for r in sorted(results, key=lambda r: (r.assignment, r.student)):
        for c in r.checks:
            col = f"{r.assignment}:{c.name}"
            if col not in columns:
                columns.append(col)
        if f"{r.assignment}:total" not in columns:
            columns += [f"{r.assignment}:total", f"{r.assignment}:status"]
    for r in results:
        row = rows.setdefault(r.student, {})
        for c in r.checks:
            row[f"{r.assignment}:{c.name}"] = f"{c.points:g}"
        row[f"{r.assignment}:total"] = f"{r.score:g}"
        row[f"{r.assignment}:status"] = r.run_status
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    totals = [c for c in columns if c.endswith(":total")]
    writer.writerow(["student", *columns, "total"])
    for student in sorted(rows):
        row = rows[student]
        total = sum(float(row.get(c, 0) or 0) for c in totals)
        cells = [student, *[row.get(c, "") for c in columns], f"{total:g}"]
        writer.writerow([_cell(c) for c in cells])
    return buf.getvalue()


def _cell(text: str) -> str:
    """A gradebook cell a spreadsheet shows as text: one that would start a formula gets a
    leading apostrophe (OWASP's advice for CSV injection)."""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def write_class_outputs(
    results: list[SubmissionResult], out: Path, references: dict | None = None
) -> Path:
    """`OUT/<student>/<assignment>/results.json` and `feedback.html` for each result,
    `OUT/gradebook.csv` and the class page `OUT/index.html`."""
    from grader.report.pages import write_pages

    for r in results:
        if name_problem(r.student) is None:  # a refused name gets no folder of its own
            write_results_json(r, out / r.student / r.assignment / "results.json")
    path = out / "gradebook.csv"
    write_atomic(path, gradebook_csv(results))
    write_pages(results, out, references)  # feedback.html per submission, index.html
    return path


def class_summary(results: list[SubmissionResult]) -> Table:
    assignments = sorted({r.assignment for r in results})
    table = Table(title="class summary", title_justify="left")
    table.add_column("student")
    for a in assignments:
        table.add_column(a, justify="right")
    by_student: dict[str, dict[str, SubmissionResult]] = {}
    for r in results:
        by_student.setdefault(r.student, {})[r.assignment] = r
    for student in sorted(by_student):
        cells: list[str | Text] = []
        for a in assignments:
            found = by_student[student].get(a)
            if found is None:
                cells.append("")
                continue
            r = found
            style = "green" if r.score == r.max_score else ("red" if r.score == 0 else "yellow")
            label = f"{r.score:g}/{r.max_score:g}"
            if r.run_status not in ("completed",):
                label += f" ({r.run_status})"
            cells.append(Text(label, style=style))
        table.add_row(Text(printable(student)), *cells)
    return table


class ClassProgress:
    """The progress bar of a class. Its count and ETA are of the submissions graded in this
    run: the results the store already had (and the submissions without a file) arrive first,
    before any grading, and are taken off the total and counted apart, so that the rate the
    ETA divides by is that of real grading only (rich resets its rate when the total changes,
    which here happens before the first real sample)."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("grading"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("({task.fields[reused]} reused)"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
            speed_estimate_period=300,  # jobs of seconds each: a rate over minutes, not 30 s
        )
        self.task = self.progress.add_task("", total=total, reused=0)
        self.reused = 0
        self._lock = threading.Lock()  # on_result comes from the grading threads

    def __enter__(self) -> ClassProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def done(self, r: SubmissionResult) -> None:
        where = f"{r.student}/{r.assignment}"
        with self._lock:
            if r.reused or r.run_status in NOT_KEPT:
                self.reused += int(r.reused)
                total = self.progress.tasks[0].total or 0
                self.progress.update(
                    self.task, total=max(0, total - 1), reused=self.reused, description=where
                )
            else:
                self.progress.update(self.task, advance=1, description=where)

    def say(self, what: str) -> None:
        self.progress.update(self.task, description=what)
