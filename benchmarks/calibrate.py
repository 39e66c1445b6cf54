"""Calibrate the TensorFlow checks' thresholds against the reference solutions.

Runs each reference (reference/<name>.py) under N seeds through the real grading pipeline
(`grade_file` in the sandbox, as `grader validate` does) and prints, per check, the figure the
check measures for every seed, its min and max over the seeds, the threshold in the spec and
the margin left. A seed where the reference would fail its own spec is flagged.

Seed i (0-based) runs the sandbox with `seed + i` (the student's numpy/TF seeds: data draws and
weight initialization) and the grader with `grading_seed + 101 * i` (probe, held-out and loss
data); seed 0 is the spec as it stands. `--vary` changes only one of them.

The figures are recomputed at full precision from the run's artifacts with the same arithmetic
as grader/_checks.py (the check messages round to 0.1% or 4 digits); each recomputed figure is
cross-checked against the check's own verdict, and a disagreement is flagged as MISMATCH.

Margins are signed, positive = room left:
    decision_boundary  min over seeds of min(grid, held-out agreement) - minimum
    loss_decrease      max_ratio - max over seeds of final/initial loss
    parameters         atol - max over seeds of |learned - expected|
    wiring             atol - max over seeds of max |pred - rebuilt model|   (rtol ignored)
    loss_function      atol - max over seeds of |loss - lecture loss|        (rtol ignored)

Usage (from the course root):
    /work/venv/bin/python benchmarks/calibrate.py [--seeds 5] [--assignment NAME ...]
        [--vary both|sandbox|grading] [--jobs 2] [--json out.json | --json -]

Exit status 1 when a reference fails its spec (or a figure disagrees with its check) under
some seed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from grader.checks.graph import REGISTRY, Evidence, Missing
from grader.checks.keras import student_model
from grader.course.discovery import find_course
from grader.pipeline import Options, data_for, grade_file, probe_inputs
from grader.run.runner import ColdRunner

TF_ASSIGNMENTS = (
    "perceptron",
    "linear_classifier",
    "softmax_classifier",
    "mlp_boundary",
    "mlp_boundary_hard",
    "linear_regression",
    "mnist_mlp",
    "keras_mnist",
    "keras_mlp",
)
GRADING_STRIDE = 101  # grading_seed + 1..3 are used by the checks: keep the runs' draws apart


class Capture:
    """A runner that passes each job on and keeps the outcome (artifacts) for recomputation."""

    def __init__(self, inner):
        self.inner = inner
        self.outcome = None

    def run(self, job):
        self.outcome = self.inner.run(job)
        return self.outcome


def params_of(spec) -> dict:
    """A check's parameters as it runs with them: the spec's, over the function's defaults."""
    sig = inspect.signature(REGISTRY[spec.check])
    out = {
        name: p.default
        for name, p in sig.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }
    out.update(spec.params)
    return out


# --- the figures, recomputed as grader/_checks.py computes them ------------------------------


def fig_boundary(ev: Evidence, p: dict) -> list[dict]:
    params = ev.params()
    gen = ev.task.generator
    points = gen.grid(p["grid"])
    held, _, _ = ev.task.dataset(p["heldout"], ev.assignment.grading_seed + 3)
    on_grid = float(
        np.mean(ev.task.predict_class(params, ev.task.features(points)) == gen.classes(points))
    )
    on_held = float(
        np.mean(ev.task.predict_class(params, ev.task.features(held)) == gen.classes(held))
    )
    minimum = float(p["minimum"])
    return [
        dict(
            figure="agreement min(grid, held-out)",
            value=min(on_grid, on_held),
            spec=f">= {minimum:.1%}",
            limit=minimum,
            sense="min",
            pct=True,
        ),
        dict(figure=f"  on {p['grid']}x{p['grid']} grid", value=on_grid, pct=True),
        dict(figure=f"  on {p['heldout']} held-out points", value=on_held, pct=True),
    ]


def fig_accuracy(ev: Evidence, p: dict) -> list[dict]:
    key = ev.data.dataset.key
    x = ev.task.features(ev.data.heldout_x)
    if ev.task.model == "keras":
        pred = np.argmax(student_model(ev).forward(x), axis=-1)
    else:
        pred = ev.task.predict_class(ev.params(), x)
    acc = float(np.mean(pred == ev.data.heldout_y))
    limit = float(p["minimum"].get(key, math.nan))
    return [
        dict(
            figure=f"held-out accuracy ({key})",
            value=acc,
            spec=f">= {limit:.1%}",
            limit=limit,
            sense="min",
            pct=True,
        )
    ]


def fig_loss_decrease(ev: Evidence, p: dict) -> list[dict]:
    params = ev.params()
    if ev.data is not None:
        x = ev.task.features(ev.data.heldout_x[: p["n"]])
        y = ev.task.onehot(ev.data.heldout_y[: p["n"]])
    else:
        _, x, y = ev.task.dataset(p["n"], ev.assignment.grading_seed + 1)
    rng = np.random.default_rng(ev.assignment.grading_seed + 2)
    init = {
        k: rng.normal(0.0, ev.task.init_stddev, size=v.shape).astype(np.float64)
        for k, v in params.items()
    }
    final = ev.task.loss_value(ev.task.forward(params, x), y)
    start = ev.task.loss_value(ev.task.forward(init, x), y)
    ratio = final / start if start > 0 else 0.0
    max_ratio = float(p["max_ratio"])
    return [
        dict(
            figure="final/initial loss",
            value=ratio,
            spec=f"<= {max_ratio:g}",
            limit=max_ratio,
            sense="max",
        ),
        dict(figure="  initial loss", value=start),
        dict(figure="  final loss", value=final),
    ]


def fig_parameters(ev: Evidence, p: dict) -> list[dict]:
    atol = float(p["atol"])
    rows = []
    for name, want in p["expect"].items():
        got = float(np.asarray(ev.array(name), dtype=np.float64).ravel()[0])
        rows.append(
            dict(
                figure=f"{name} (expect {want:g})",
                value=got,
                spec=f"{want:g} +- {atol:g}",
                limit=(want - atol, want + atol),
                sense="band",
            )
        )
    return rows


def fig_wiring(ev: Evidence, p: dict) -> list[dict]:
    got = np.asarray(ev.array(f"fetch:{p['fetch']}"), dtype=np.float64)
    want = ev.task.forward(ev.params(), ev.inputs[p["input"]])
    diff = float(np.max(np.abs(got - want)))
    atol = float(p["atol"])
    return [
        dict(
            figure="max |pred - rebuilt model|",
            value=diff,
            spec=f"<= {atol:g} (+rtol)",
            limit=atol,
            sense="max",
        )
    ]


def fig_loss_function(ev: Evidence, p: dict) -> list[dict]:
    got = np.asarray(ev.array(f"fetch:{p['fetch']}"), dtype=np.float64).ravel()
    outputs = np.asarray(ev.array(f"fetch:{p['pred']}"), dtype=np.float64)
    y = ev.inputs[p["labels"]]
    chunks = max(len(got), 1)
    want = np.array(
        [
            ev.task.loss_value(o, t)
            for o, t in zip(np.array_split(outputs, chunks), np.array_split(y, chunks), strict=True)
        ]
    )
    diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else math.inf
    atol = float(p["atol"])
    return [
        dict(
            figure="|loss - lecture loss|",
            value=diff,
            spec=f"<= {atol:g} (+rtol)",
            limit=atol,
            sense="max",
        )
    ]


FIGURES = {
    "accuracy": fig_accuracy,
    "decision_boundary": fig_boundary,
    "loss_decrease": fig_loss_decrease,
    "parameters": fig_parameters,
    "wiring": fig_wiring,
    "loss_function": fig_loss_function,
}


def within(row: dict, value: float) -> bool:
    if row["sense"] == "min":
        return value >= row["limit"]
    if row["sense"] == "max":
        return value <= row["limit"]
    lo, hi = row["limit"]
    return lo <= value <= hi


def margin(row: dict, values: list[float]) -> float:
    if row["sense"] == "min":
        return min(values) - row["limit"]
    if row["sense"] == "max":
        return row["limit"] - max(values)
    lo, hi = row["limit"]
    centre, atol = (lo + hi) / 2, (hi - lo) / 2
    return atol - max(abs(v - centre) for v in values)


# --- running -----------------------------------------------------------------------------------


def seeds_for(a, i: int, vary: str) -> tuple[int, int]:
    seed = a.seed + i if vary in ("both", "sandbox") else a.seed
    grading = a.grading_seed + GRADING_STRIDE * i if vary in ("both", "grading") else a.grading_seed
    return seed, grading


def run_one(course, runner, a, i: int, vary: str, hide: tuple[str, ...]) -> dict:
    seed, grading = seeds_for(a, i, vary)
    spec = dataclasses.replace(a, seed=seed, grading_seed=grading)
    cap = Capture(runner)
    t0 = time.perf_counter()
    res = grade_file(spec, course.reference(a.name), cap, options=Options(hide=hide))
    out = {
        "index": i,
        "seed": seed,
        "grading_seed": grading,
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
        ev = Evidence(spec, outcome.arrays, outcome.facts, probe_inputs(spec), data_for(spec))
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
        if fn is not None and ev is not None:
            try:
                entry["figures"] = fn(ev, params_of(by_name[c.name]))
            except (Missing, ValueError, KeyError, IndexError) as exc:
                entry["figure_error"] = f"{type(exc).__name__}: {exc}"
        out["checks"][c.name] = entry
    return out


def summarize(a, runs: list[dict]) -> dict:
    """Per check: the figures over seeds, min/max, spec, margin; and the flags."""
    checks = []
    flags = []
    for spec in a.checks:
        entries = [r["checks"].get(spec.name, {}) for r in runs]
        statuses = [e.get("status", "missing") for e in entries]
        rows = []
        first = next((e for e in entries if e.get("figures")), None)
        if first is not None:
            for k, template in enumerate(first["figures"]):
                values = []
                for e in entries:
                    figs = e.get("figures") or []
                    values.append(figs[k]["value"] if k < len(figs) else math.nan)
                row = {
                    "figure": template["figure"],
                    "values": values,
                    "pct": template.get("pct", False),
                }
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
        for r, e, status in zip(runs, entries, statuses, strict=True):
            if status != "passed":
                flags.append(
                    f"seed {r['seed']}/{r['grading_seed']}: '{spec.name}' {status.upper()}: "
                    f"{e.get('message', '')}"
                )
            if e.get("figure_error"):
                flags.append(
                    f"seed {r['seed']}/{r['grading_seed']}: '{spec.name}' figure not "
                    f"recomputed: {e['figure_error']}"
                )
        # The recomputed figures must agree with the check's own verdict (wiring and
        # loss_function also accept rtol: a recomputed 'outside atol' may still pass there).
        limited = [row for row in rows if "within" in row]
        if limited and spec.check not in ("wiring", "loss_function"):
            for j, (r, status) in enumerate(zip(runs, statuses, strict=True)):
                oks = [row["within"][j] for row in limited]
                if None in oks:
                    continue
                if all(oks) != (status == "passed"):
                    flags.append(
                        f"seed {r['seed']}/{r['grading_seed']}: MISMATCH '{spec.name}': "
                        f"recomputed figures are {'within' if all(oks) else 'outside'} "
                        f"the spec, the check {status}"
                    )
        if spec.check == "decision_boundary" and rows:
            for r, e in zip(runs, entries, strict=True):
                figs = e.get("figures")
                if figs and e.get("got") and f"{figs[0]['value']:.1%}" != e["got"]:
                    flags.append(
                        f"seed {r['seed']}/{r['grading_seed']}: MISMATCH '{spec.name}': "
                        f"recomputed {figs[0]['value']:.1%}, check says {e['got']}"
                    )
        checks.append({"name": spec.name, "check": spec.check, "statuses": statuses, "rows": rows})
    for r in runs:
        if r["run_status"] != "completed":
            flags.append(
                f"seed {r['seed']}/{r['grading_seed']}: run status {r['run_status']}: "
                + "; ".join(r["problems"][:1])
            )
    return {"assignment": a.name, "checks": checks, "flags": flags, "runs": runs}


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
            ok = "yes" if all(s == "passed" for s in c["statuses"]) else "NO"
            rows.append([label, "status"] + marks + ["", "", "", "", ok])
            continue
        for k, row in enumerate(c["rows"]):
            values = [fmt(v, row["pct"]) for v in row["values"]]
            if "within" in row:
                values = [
                    v + ("" if w in (True, None) else "!")
                    for v, w in zip(values, row["within"], strict=True)
                ]
            ok = ""
            if k == 0:
                ok = "yes" if all(s == "passed" for s in c["statuses"]) else "NO"
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
    return "\n".join(out)


def overview(summaries: list[dict]) -> str:
    rows = [["assignment", "check", "figure", "min", "max", "spec", "margin", "failing seeds"]]
    for s in summaries:
        for c in s["checks"]:
            if not c["rows"] or "spec" not in c["rows"][0]:
                continue
            fails = sum(st != "passed" for st in c["statuses"])
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=5, help="seeds per assignment (default 5)")
    ap.add_argument(
        "--assignment",
        action="append",
        choices=TF_ASSIGNMENTS,
        help="restrict to this assignment (repeatable); default: all six TF ones",
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
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")

    course = find_course(args.course or Path(__file__).resolve().parent.parent)
    names = args.assignment or list(TF_ASSIGNMENTS)
    specs = [course.assignment(n) for n in names]
    hide = tuple(str(p) for p in course.private_dirs())
    quiet = args.json == "-"
    log = sys.stderr

    runner = ColdRunner(slots=max(1, args.jobs))
    tasks = [(a, i) for a in specs for i in range(args.seeds)]
    started = time.perf_counter()
    print(
        f"calibrate: {len(tasks)} runs ({len(specs)} assignments x {args.seeds} seeds), "
        f"{args.jobs} at a time",
        file=log,
    )

    def one(task):
        a, i = task
        r = run_one(course, runner, a, i, args.vary, hide)
        print(
            f"  {a.name} s{i} (seed {r['seed']}, grading {r['grading_seed']}): {r['run_status']}, "
            f"{r['score']:g}/{r['max_score']:g}, {r['wall_s']:.1f} s",
            file=log,
            flush=True,
        )
        return r

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(one, tasks))
    finally:
        runner.close()
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
        print(
            f"\n{len(tasks)} runs in {elapsed:.0f} s; "
            + (
                "no reference fails its spec under any seed"
                if not flagged
                else f"{flagged} FLAG(S)"
            )
        )
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
