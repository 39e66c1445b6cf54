"""Calibrate the checks' thresholds against the reference solutions.

Runs each reference (reference/<name>.py) under N seeds through the real grading pipeline
(`Context.grade`, in the sandbox, as `grader validate` does) and prints, per check, the figure
the check judges for every seed, its min and max over the seeds, the threshold in the spec and
the margin left. A seed where the reference would fail its own spec is flagged.

Seed i (0-based) runs the sandbox with `seed + i` (the student's numpy/TF seeds: data draws and
weight initialization) and the grader with `grading_seed + 101 * i` (probe, held-out and loss
data); seed 0 is the spec as it stands. `--vary` changes only one of them.

The figures come from the checks' own measures (`grader.checks.measures`), called on the run's
artifacts at full precision (the check messages round to 0.1% or 4 digits). Each figure is
still compared with the check's verdict, and a disagreement is flagged as MISMATCH: since both
use the same measure, a MISMATCH means this script and the check read the spec differently.

Margins are signed, positive = room left:
    decision_boundary  min over seeds of min(grid, held-out agreement) - minimum
    accuracy           min over seeds of held-out accuracy - minimum (for the data set here)
    loss_decrease      max_ratio - max over seeds of final/initial loss
    parameters         atol - max over seeds of |learned - expected|
    loss_function      atol - max over seeds of max(|loss - lecture loss| - rtol |lecture loss|)
    reconstruction     maximum - max over seeds of the held-out reconstruction error
    latent_separation  min over seeds of k-NN accuracy on the latent codes - minimum
Other checks (shapes, wiring, model_structure, ...) have no figure with a threshold: they judge
how the student's graph is built, and their status is shown.

Usage (from the course root):
    .venv/bin/python benchmarks/calibrate.py [--seeds 5] [--assignment NAME ...]
        [--vary both|sandbox|grading] [--jobs 2] [--json out.json | --json -]

By default every assignment whose spec has a `[task]` table is calibrated (those are the ones
with figures: the TensorFlow and Keras assignments, the autoencoder among them).

Exit status 1 when a reference fails its spec (or a figure disagrees with its check) under
some seed, 0 otherwise. A check skipped here (its data set is absent) is noted, not flagged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from grader import registry
from grader.checks import Evidence, Missing, measures
from grader.checks.autoencoder import codes_and_images
from grader.checks.graph import LOSS_RTOL
from grader.checks.measures import student
from grader.checks.training import learned_values
from grader.context import Context, grading
from grader.course.discovery import Course, find_course
from grader.model.keras import ModelRefused
from grader.pipeline import data_for, probe_inputs

GRADING_STRIDE = 101  # grading_seed + 1..3 are used by the checks: keep the runs' draws apart


class Capture:
    """A runner that passes each job on and keeps the outcome (artifacts) for the measures."""

    def __init__(self, inner):
        self.inner = inner
        self.outcome = None

    def run(self, job):
        self.outcome = self.inner.run(job)
        return self.outcome

    def close(self) -> None:  # the inner runner belongs to the context
        pass


def calibrated(course: Course) -> list[str]:
    """The assignments with a `[task]` table: those whose checks judge figures."""
    return [name for name in course.names() if course.assignment(name).task is not None]


# --- the figures, from the checks' own measures ----------------------------------------------


def judged(figure: str, value: float, spec: str, limit: float, sense: str, pct=False) -> dict:
    """The row of the figure a check compares with its threshold (`sense`: min or max)."""
    return dict(figure=figure, value=value, spec=spec, limit=limit, sense=sense, pct=pct)


def shown(figure: str, value: float, pct=False) -> dict:
    """A row shown for context: no threshold of its own."""
    return dict(figure=figure, value=value, pct=pct)


def per_data_set(ev: Evidence, table: dict[str, float]) -> tuple[str, float]:
    key = ev.data.dataset.key
    return key, float(table.get(key, math.nan))


def fig_boundary(ev: Evidence, p: dict) -> list[dict]:
    a = student.network_boundary(
        ev, student.student_network(ev), p["grid"], p["heldout"], p["pred"], p["x"]
    )
    minimum = float(p["minimum"])
    return [
        judged(
            "agreement min(grid, held-out)", a.lowest, f">= {minimum:.1%}", minimum, "min", True
        ),
        shown(f"  on {p['grid']}x{p['grid']} grid", a.on_grid, pct=True),
        shown(f"  on {p['heldout']} held-out points", a.on_held, pct=True),
    ]


def fig_accuracy(ev: Evidence, p: dict) -> list[dict]:
    if ev.data is None:  # the check is skipped: nothing to calibrate here
        return []
    key, limit = per_data_set(ev, p["minimum"])
    if ev.task.model == "keras":
        acc = measures.heldout_accuracy(ev)
    else:
        acc = student.network_accuracy(ev, student.student_network(ev), p["pred"], p["x"])
    return [
        judged(f"held-out accuracy ({key})", acc.accuracy, f">= {limit:.1%}", limit, "min", True),
        shown(f"  most predicted class share ({acc.top_class})", acc.top_count / acc.images, True),
    ]


def fig_loss_decrease(ev: Evidence, p: dict) -> list[dict]:
    loss, _ = student.training_loss(
        ev, student.student_network(ev), p["n"], p["loss"], p["x"], p["y"]
    )
    max_ratio = float(p["max_ratio"])
    return [
        judged("final/initial loss", loss.ratio, f"<= {max_ratio:g}", max_ratio, "max"),
        shown("  loss at the student's initialization", loss.start),
        shown("  loss at the template's initialization", loss.template),
        shown("  final loss", loss.final),
    ]


def fig_parameters(ev: Evidence, p: dict) -> list[dict]:
    atol = float(p["atol"])
    rows = []
    found = learned_values(ev, student.student_network(ev), list(p["expect"]))
    for name, (arr, _) in found.items():
        want = p["expect"][name]
        got = float(arr[0]) if arr.size == 1 else math.nan
        rows.append(judged(f"|{name} - {want:g}|", abs(got - want), f"<= {atol:g}", atol, "max"))
        rows.append(shown(f"  {name} learned", got))
    return rows


def fig_loss_function(ev: Evidence, p: dict) -> list[dict]:
    compared = student.loss_function_values(
        ev, student.student_network(ev), p["fetch"], p["pred"], p["labels"], p["input"]
    )
    atol = float(p["atol"])
    return [
        judged(
            "max(|loss - lecture| - rtol|lecture|)",
            max(c.excess(LOSS_RTOL) for c in compared),
            f"<= {atol:g}",
            atol,
            "max",
        ),
        shown("  lecture loss", compared[0].want),
    ]


def _autoencoder_codes(ev: Evidence, p: dict, x: np.ndarray):
    return codes_and_images(
        student.student_network(ev),
        x,
        encoder=p["encoder"],
        decoder=p.get("decoder", "reconst"),
        code=p.get("code", "latent_input"),
        input=p["input"],
    )


def fig_reconstruction(ev: Evidence, p: dict) -> list[dict]:
    if ev.data is None:
        return []
    key, limit = per_data_set(ev, p["maximum"])
    images, _ = measures.heldout_digits(ev.task, ev.data)
    x = ev.task.features(images)
    _, out = _autoencoder_codes(ev, p, x)
    error = float(np.mean((out - x) ** 2))
    return [judged(f"reconstruction MSE ({key})", error, f"<= {limit:g}", limit, "max")]


def fig_latent_separation(ev: Evidence, p: dict) -> list[dict]:
    if ev.data is None:
        return []
    key, limit = per_data_set(ev, p["minimum"])
    images, labels = measures.heldout_digits(ev.task, ev.data)
    z, _ = _autoencoder_codes(ev, p, ev.task.features(images))
    acc = measures.latent_separation(z, labels, p["neighbours"])
    return [
        judged(
            f"{p['neighbours']}-NN latent accuracy ({key})",
            acc,
            f">= {limit:.1%}",
            limit,
            "min",
            True,
        )
    ]


FIGURES: dict[str, Callable[[Evidence, dict], list[dict]]] = {
    "accuracy": fig_accuracy,
    "decision_boundary": fig_boundary,
    "loss_decrease": fig_loss_decrease,
    "parameters": fig_parameters,
    "loss_function": fig_loss_function,
    "reconstruction": fig_reconstruction,
    "latent_separation": fig_latent_separation,
}
FIGURE_ERRORS = (Missing, ValueError, KeyError, IndexError, ModelRefused)  # GraphError too


def within(row: dict, value: float) -> bool:
    """The check's own comparison: `value >= limit` (min) or `value <= limit` (max)."""
    if row["sense"] == "min":
        return value >= row["limit"]
    return value <= row["limit"]


def margin(row: dict, values: list[float]) -> float:
    if row["sense"] == "min":
        return min(values) - row["limit"]
    return row["limit"] - max(values)


# --- running -----------------------------------------------------------------------------------


def seeds_for(a, i: int, vary: str) -> tuple[int, int]:
    seed = a.seed + i if vary in ("both", "sandbox") else a.seed
    grading = a.grading_seed + GRADING_STRIDE * i if vary in ("both", "grading") else a.grading_seed
    return seed, grading


def run_one(ctx: Context, a, i: int, vary: str) -> dict:
    """Grade the reference of `a` under seed i; the checks' verdicts and, for each check with
    a threshold, the figures its measure gives on the same artifacts."""
    seed, grading_seed = seeds_for(a, i, vary)
    spec = dataclasses.replace(a, seed=seed, grading_seed=grading_seed)
    cap = Capture(ctx.runner)
    t0 = time.perf_counter()
    res = dataclasses.replace(ctx, runner=cap).grade(spec, ctx.course.reference(a.name))
    out = {
        "index": i,
        "seed": seed,
        "grading_seed": grading_seed,
        "run_status": res.run_status,
        "score": res.score,
        "max_score": res.max_score,
        "wall_s": time.perf_counter() - t0,
        "checks": {},
        "problems": list(res.problems),
    }
    outcome = cap.outcome
    ev = None
    if outcome is not None and outcome.arrays:
        splits = data_for(spec)
        ev = Evidence(spec, outcome.arrays, outcome.facts, probe_inputs(spec, splits), splits)
    by_name = {c.name: c for c in spec.checks}
    for c in res.checks:
        entry = {
            "status": c.status,
            "message": c.message,
            "expected": c.expected,
            "got": c.got,
            "figures": [],
        }
        fn = FIGURES.get(c.check)
        check_fn = registry.get(c.check)
        if fn is not None and ev is not None and check_fn is not None:
            try:
                entry["figures"] = fn(ev, registry.parameters(check_fn, by_name[c.name].params))
            except FIGURE_ERRORS as exc:
                entry["figure_error"] = f"{type(exc).__name__}: {exc}"
        out["checks"][c.name] = entry
    return out


def figure_rows(entries: list[dict]) -> list[dict]:
    """One row per figure of a check: its value for each seed, min, max, spec and margin."""
    rows = []
    first = next((e for e in entries if e.get("figures")), None)
    for k, template in enumerate(first["figures"] if first is not None else []):
        values = []
        for e in entries:
            figs = e.get("figures") or []
            values.append(figs[k]["value"] if k < len(figs) else math.nan)
        row = {"figure": template["figure"], "values": values, "pct": template.get("pct", False)}
        finite = [v for v in values if not math.isnan(v)]
        if finite:
            row["min"], row["max"] = min(finite), max(finite)
        if "limit" in template:
            row["spec"] = template["spec"]
            row["limit"] = template["limit"]
            row["sense"] = template["sense"]
            row["margin"] = margin(template, finite) if finite else math.nan
            row["within"] = [None if math.isnan(v) else within(template, v) for v in values]
        rows.append(row)
    return rows


def check_flags(spec, runs: list[dict], entries: list[dict], rows: list[dict]) -> list[str]:
    """Seeds where the check did not pass, its figure could not be computed, or the figure
    and the verdict disagree (MISMATCH)."""
    flags = []
    statuses = [e.get("status", "missing") for e in entries]
    for r, e, status in zip(runs, entries, statuses, strict=True):
        where = f"seed {r['seed']}/{r['grading_seed']}"
        if status not in ("passed", "skipped"):
            flags.append(f"{where}: '{spec.name}' {status.upper()}: {e.get('message', '')}")
        if e.get("figure_error"):
            flags.append(f"{where}: '{spec.name}' figure not computed: {e['figure_error']}")
    limited = [row for row in rows if "within" in row]
    for j, (r, status) in enumerate(zip(runs, statuses, strict=True)):
        oks = [row["within"][j] for row in limited]
        if not limited or None in oks or status == "skipped":
            continue
        if all(oks) != (status == "passed"):
            flags.append(
                f"seed {r['seed']}/{r['grading_seed']}: MISMATCH '{spec.name}': the figures are "
                f"{'within' if all(oks) else 'outside'} the spec, the check {status}"
            )
    if spec.check == "decision_boundary" and rows:
        for r, e in zip(runs, entries, strict=True):
            figs = e.get("figures")
            if figs and e.get("got") and f"{figs[0]['value']:.1%}" != e["got"]:
                flags.append(
                    f"seed {r['seed']}/{r['grading_seed']}: MISMATCH '{spec.name}': "
                    f"the figure is {figs[0]['value']:.1%}, the check says {e['got']}"
                )
    return flags


def summarize(a, runs: list[dict]) -> dict:
    """Per check: the figures over seeds, min/max, spec, margin; the flags, and the notes
    (checks skipped here: nothing to calibrate on this machine)."""
    checks, flags, notes = [], [], []
    for spec in a.checks:
        entries = [r["checks"].get(spec.name, {}) for r in runs]
        statuses = [e.get("status", "missing") for e in entries]
        rows = figure_rows(entries)
        flags += check_flags(spec, runs, entries, rows)
        skipped = {e.get("message", "") for e in entries if e.get("status") == "skipped"}
        notes += [f"'{spec.name}' skipped, not calibrated here: {m}" for m in sorted(skipped)]
        checks.append({"name": spec.name, "check": spec.check, "statuses": statuses, "rows": rows})
    for r in runs:
        if r["run_status"] != "completed":
            flags.append(
                f"seed {r['seed']}/{r['grading_seed']}: run status {r['run_status']}: "
                + "; ".join(r["problems"][:1])
            )
    return {"assignment": a.name, "checks": checks, "flags": flags, "notes": notes, "runs": runs}


# --- output ------------------------------------------------------------------------------------


def fmt(value: float, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if pct:
        return f"{value:.2%}"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.2e}"
    return f"{value:.4f}"


def fmt_margin(row: dict) -> str:
    m = row.get("margin")
    if m is None:
        return ""
    if row.get("pct"):
        return f"{m * 100:+.2f} pt"
    if m != 0 and abs(m) < 1e-3:
        return f"{m:+.2e}"
    return f"{m:+.4f}"


def table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def mark(statuses: list[str]) -> str:
    """yes: passed under every seed; skipped: could not be checked here; NO: failed somewhere."""
    if all(s == "passed" for s in statuses):
        return "yes"
    return "skipped" if all(s in ("passed", "skipped") for s in statuses) else "NO"


def render(summary: dict, vary: str) -> str:
    runs = summary["runs"]
    n = len(runs)
    head = (
        ["check", "figure"]
        + [f"s{r['index']}" for r in runs]
        + ["min", "max", "spec", "margin", "ok"]
    )
    rows = [head]
    for c in summary["checks"]:
        label = f"{c['name']}"
        if not c["rows"]:
            marks = ["ok" if s == "passed" else s.upper() for s in c["statuses"]]
            rows.append([label, "status"] + marks + ["", "", "", "", mark(c["statuses"])])
            continue
        for k, row in enumerate(c["rows"]):
            values = [fmt(v, row["pct"]) for v in row["values"]]
            if "within" in row:
                values = [
                    v + ("" if w in (True, None) else "!")
                    for v, w in zip(values, row["within"], strict=True)
                ]
            ok = mark(c["statuses"]) if k == 0 else ""
            rows.append(
                [label if k == 0 else "", row["figure"]]
                + values
                + [
                    fmt(row.get("min", math.nan), row["pct"]),
                    fmt(row.get("max", math.nan), row["pct"]),
                    row.get("spec", ""),
                    fmt_margin(row),
                    ok,
                ]
            )
    rows.append(
        ["(run)", "score"]
        + [f"{r['score']:g}/{r['max_score']:g}" for r in runs]
        + ["", "", "", "", ""]
    )
    rows.append(["(run)", "wall s"] + [f"{r['wall_s']:.1f}" for r in runs] + ["", "", "", "", ""])
    seeds = ", ".join(f"s{r['index']}={r['seed']}/{r['grading_seed']}" for r in runs)
    out = [
        f"== {summary['assignment']}  ({n} seeds, vary={vary}; sandbox/grading seed: {seeds})",
        table(rows, right=set(range(2, 2 + n + 2)) | {2 + n + 3}),
    ]
    if summary["flags"]:
        out.append("FLAGGED:")
        out.extend(f"  {f}" for f in summary["flags"])
    else:
        out.append("no seed fails the spec")
    out.extend(f"NOTE: {n}" for n in summary["notes"])
    return "\n".join(out)


def overview(summaries: list[dict]) -> str:
    rows = [["assignment", "check", "figure", "min", "max", "spec", "margin", "failing seeds"]]
    for s in summaries:
        for c in s["checks"]:
            if not c["rows"] or "spec" not in c["rows"][0]:
                continue
            fails = sum(st not in ("passed", "skipped") for st in c["statuses"])
            for row in c["rows"]:
                if "spec" not in row:
                    continue
                rows.append(
                    [
                        s["assignment"],
                        c["name"],
                        row["figure"],
                        fmt(row.get("min", math.nan), row["pct"]),
                        fmt(row.get("max", math.nan), row["pct"]),
                        row["spec"],
                        fmt_margin(row),
                        f"{fails}/{len(c['statuses'])}",
                    ]
                )
    return "== summary (margins: positive = room left)\n" + table(rows, right={3, 4, 6, 7})


def jsonable(obj):
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=5, help="seeds per assignment (default 5)")
    ap.add_argument(
        "--assignment",
        action="append",
        metavar="NAME",
        help="restrict to this assignment (repeatable); default: every assignment whose spec "
        "has a [task] table (the TensorFlow and Keras ones, the autoencoder included)",
    )
    ap.add_argument(
        "--vary",
        choices=("both", "sandbox", "grading"),
        default="both",
        help="which seeds change from run to run (default both)",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="references graded at once (default: 2, or 1 on one CPU)",
    )
    ap.add_argument("--course", default=None, help="course root (default: found from the cwd)")
    ap.add_argument(
        "--json", metavar="PATH", help="also write the results as JSON ('-': stdout only)"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    course = find_course(args.course or Path(__file__).resolve().parent.parent)
    known = calibrated(course)
    for name in args.assignment or []:
        if name not in known:
            ap.error(f"--assignment {name!r}: not one with a [task] table; choose from {known}")
    specs = [course.assignment(n) for n in args.assignment or known]
    quiet = args.json == "-"
    log = sys.stderr

    tasks = [(a, i) for a in specs for i in range(args.seeds)]
    started = time.perf_counter()
    print(
        f"calibrate: {len(tasks)} runs ({len(specs)} assignments x {args.seeds} seeds), "
        f"{args.jobs} at a time",
        file=log,
    )
    with grading(course, jobs=max(1, args.jobs)) as ctx:

        def one(task):
            a, i = task
            r = run_one(ctx, a, i, args.vary)
            print(
                f"  {a.name} s{i} (seed {r['seed']}, grading {r['grading_seed']}): "
                f"{r['run_status']}, {r['score']:g}/{r['max_score']:g}, {r['wall_s']:.1f} s",
                file=log,
                flush=True,
            )
            return r

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(one, tasks))
    elapsed = time.perf_counter() - started

    summaries = []
    for a in specs:
        runs = sorted(
            (r for (b, _), r in zip(tasks, results, strict=True) if b.name == a.name),
            key=lambda r: r["index"],
        )
        summaries.append(summarize(a, runs))

    if not quiet:
        for s in summaries:
            print(render(s, args.vary))
            print()
        print(overview(summaries))
        flagged = sum(len(s["flags"]) for s in summaries)
        verdict = (
            "no reference fails its spec under any seed" if not flagged else f"{flagged} FLAG(S)"
        )
        print(f"\n{len(tasks)} runs in {elapsed:.0f} s; {verdict}")
    if args.json:
        data = jsonable(
            {"seeds": args.seeds, "vary": args.vary, "elapsed_s": elapsed, "assignments": summaries}
        )
        text = json.dumps(data, indent=2)
        if quiet:
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 1 if any(s["flags"] for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
