"""Where the grading time of one submission goes, for each reference solution.

Grades the eight references (reference/<name>.py) through the real pipeline (`grade_file`,
one fresh sandboxed child per submission, as `grader validate` does), one at a time so that the
runs do not compete for the CPU, and prints per assignment the total per-submission time and
its split:

    start-up   run_s - student_s - collect_s, shown split into the TensorFlow import
               (`import_s`), the legacy layer (`legacy_import_s`) and the rest (process and
               Python start, numpy import, sandbox set-up, writing the artifacts, exit)
    student    student_s: the student's own code (here the reference's training)
    collect    collect_s: reading variables, evaluating fetches and calls after the student ran
    checks     checks_s: the grader's trusted checks
    other      total_s - run_s - checks_s: the trusted side outside the child (reading the file,
               blank and syntax scan, probe inputs, writing the job, reading the artifacts)

With --repeat K every assignment is graded K times (round-robin, so that slow phases of the
machine spread over all assignments) and the mean is shown, with the min-max of the total.
A report only: nothing is asserted about the times.

Usage (from the course root):
    /work/venv/bin/python benchmarks/timing.py [--repeat 1] [--assignment NAME ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from grader.context import grading
from grader.course.discovery import find_course

ASSIGNMENTS = (
    "intro_numpy",
    "recursion",
    "linear_regression",
    "perceptron",
    "linear_classifier",
    "softmax_classifier",
    "mlp_boundary",
    "mlp_boundary_hard",
    "mnist_softmax",
    "mnist_mlp",
    "keras_mnist",
    "keras_mlp",
    "autoencoder",
    "cifar10_mlp",
)
PHASES = (
    "startup",
    "import",
    "legacy",
    "process",
    "student",
    "collect",
    "checks",
    "other",
    "total",
)


def split(timing: dict[str, float]) -> dict[str, float]:
    """A result's timing as the phases above (seconds)."""
    run = timing.get("run_s", 0.0)
    student = timing.get("student_s", 0.0)
    collect = timing.get("collect_s", 0.0)
    checks = timing.get("checks_s", 0.0)
    total = timing.get("total_s", 0.0)
    return {
        "startup": run - student - collect,
        "import": timing.get("import_s", 0.0),
        "legacy": timing.get("legacy_import_s", 0.0),
        "process": run
        - student
        - collect
        - timing.get("import_s", 0.0)
        - timing.get("legacy_import_s", 0.0),
        "student": student,
        "collect": collect,
        "checks": checks,
        "other": total - run - checks,
        "total": total,
        "peak_rss_mb": timing.get("peak_rss_mb", 0.0),
    }


def table(rows: list[list[str]], left: int = 1) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "-"


def render(
    names: list[str], runs: dict[str, list[dict]], statuses: dict[str, list[str]], repeat: int
) -> str:
    head = [
        "assignment",
        "total s",
        "start-up s",
        "(TF import)",
        "(legacy)",
        "(rest)",
        "student s",
        "collect s",
        "checks s",
        "other s",
        "start-up",
        "student",
        "collect",
        "checks",
        "other",
        "peak MB",
        "status",
    ]
    if repeat > 1:
        head.insert(2, "total min-max")
    rows = [head]
    sums = {k: 0.0 for k in PHASES}
    for name in names:
        samples = runs[name]
        mean = {k: statistics.fmean(s[k] for s in samples) for k in (*PHASES, "peak_rss_mb")}
        for k in PHASES:
            sums[k] += mean[k]
        status = ",".join(sorted(set(statuses[name])))
        row = [
            name,
            f"{mean['total']:.3f}",
            f"{mean['startup']:.3f}",
            f"{mean['import']:.3f}" if mean["import"] else "-",
            f"{mean['legacy']:.3f}",
            f"{mean['process']:.3f}",
            f"{mean['student']:.3f}",
            f"{mean['collect']:.3f}",
            f"{mean['checks']:.3f}",
            f"{mean['other']:.3f}",
            pct(mean["startup"], mean["total"]),
            pct(mean["student"], mean["total"]),
            pct(mean["collect"], mean["total"]),
            pct(mean["checks"], mean["total"]),
            pct(mean["other"], mean["total"]),
            f"{mean['peak_rss_mb']:.0f}",
            status,
        ]
        if repeat > 1:
            totals = [s["total"] for s in samples]
            row.insert(2, f"{min(totals):.2f}-{max(totals):.2f}")
        rows.append(row)
    total_row = [
        "ALL (sum)",
        f"{sums['total']:.3f}",
        f"{sums['startup']:.3f}",
        f"{sums['import']:.3f}",
        f"{sums['legacy']:.3f}",
        f"{sums['process']:.3f}",
        f"{sums['student']:.3f}",
        f"{sums['collect']:.3f}",
        f"{sums['checks']:.3f}",
        f"{sums['other']:.3f}",
        pct(sums["startup"], sums["total"]),
        pct(sums["student"], sums["total"]),
        pct(sums["collect"], sums["total"]),
        pct(sums["checks"], sums["total"]),
        pct(sums["other"], sums["total"]),
        "",
        "",
    ]
    if repeat > 1:
        total_row.insert(2, "")
    rows.append(total_row)
    shares = (
        f"TensorFlow import: {pct(sums['import'], sums['total'])} of all grading time, "
        f"{pct(sums['import'], sums['startup'])} of the start-up"
    )
    return table(rows) + "\n" + shares


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=1, help="gradings per assignment (default 1)")
    ap.add_argument(
        "--assignment",
        action="append",
        choices=ASSIGNMENTS,
        help="restrict to this assignment (repeatable); default: all eight",
    )
    ap.add_argument("--course", default=None, help="course root (default: this checkout)")
    ap.add_argument("--json", metavar="PATH", help="also write every run's timing as JSON")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    course = find_course(args.course or Path(__file__).resolve().parent.parent)
    names = args.assignment or list(ASSIGNMENTS)
    specs = {n: course.assignment(n) for n in names}
    runs: dict[str, list[dict]] = {n: [] for n in names}
    statuses: dict[str, list[str]] = {n: [] for n in names}
    raw: list[dict] = []

    started = time.perf_counter()
    with grading(course) as ctx:
        for k in range(args.repeat):
            for name in names:
                res = ctx.grade(specs[name], course.reference(name))
                phases = split(res.timing)
                status = (
                    res.run_status
                    if res.score == res.max_score
                    else f"{res.run_status} {res.score:g}/{res.max_score:g}"
                )
                runs[name].append(phases)
                statuses[name].append(status)
                raw.append(
                    {
                        "assignment": name,
                        "repeat": k,
                        "run_status": res.run_status,
                        "score": res.score,
                        "max_score": res.max_score,
                        "timing": dict(res.timing),
                    }
                )
                print(
                    f"  {name} #{k + 1}: {phases['total']:.2f} s ({status})",
                    file=sys.stderr,
                    flush=True,
                )
    elapsed = time.perf_counter() - started

    print(
        f"== grading time per submission (reference solutions, {args.repeat} run(s) each, "
        f"one at a time, cold child per run; mean seconds and share of the total)"
    )
    print(render(names, runs, statuses, args.repeat))
    print(f"\n{len(raw)} gradings in {elapsed:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"repeat": args.repeat, "runs": raw}, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
