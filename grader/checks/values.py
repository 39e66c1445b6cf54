"""Checks of values a student's code computes: numbers, call counts, loss records."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.base import (
    Evidence,
    Verdict,
    _fmt_num,
    show,
)
from grader.checks.measures import call_counts, computed_value, record_lengths
from grader.registry import check

# --- records -----------------------------------------------------------------------------------


@check("records")
def check_records(ev: Evidence, *, names: list[str], min_length: int = 2) -> Verdict:
    """The loss records the notes keep (for the student's own plots) exist, have the same
    number of finite entries, at least `min_length`. Feedback on completeness only: the
    grader never takes a learning result from them."""
    problems, lengths = [], []
    for rec in record_lengths(ev, names):
        if rec.missing is not None:
            problems.append(str(rec.missing))
            continue
        lengths.append(rec.length)
        if rec.length < min_length:
            problems.append(
                f"{show(rec.name)} has {rec.length} entries; expected at least {min_length}"
            )
        elif not rec.finite:
            problems.append(f"{show(rec.name)} contains NaN or infinity")
    if not problems and len(set(lengths)) > 1:
        problems.append(
            ", ".join(f"{show(n)} has {k}" for n, k in zip(names, lengths, strict=True))
            + " entries; record them at the same iterations"
        )
    if problems:
        return Verdict(0.0, "\n".join(problems))
    return Verdict(1.0, f"{' and '.join(show(n) for n in names)}: {lengths[0]} entries each")


# --- values ------------------------------------------------------------------------------------


@check("values")
def check_values(ev: Evidence, *, cases: list[dict[str, Any]]) -> Verdict:
    """Numbers the student's code computes are within tolerance of the expected values.

    Each case: `of` (an artifact: `call:<id>` for a function call the spec makes, or a
    variable name), `expected`, optional `atol` (default 1e-3) and `shown` (how to name it).
    """
    problems = []
    for case in cases:
        of = case["of"]
        label = case.get("shown") or show(of)
        atol = float(case.get("atol", 1e-3))
        expected = np.asarray(case["expected"], dtype=np.float64)
        found = computed_value(ev, of, expected)
        if found.error:
            problems.append(f"{label} failed: {found.error}")
        elif found.missing is not None:
            exc = found.missing
            problems.append(str(exc) if label == show(of) else f"{label}: {exc}")
        elif found.not_number or found.got is None:
            problems.append(f"{label} is not a number")
        elif found.got.size != expected.size:
            problems.append(
                f"{label} gave {found.got.size} value(s) {_fmt_num(found.got)}; expected "
                f"{expected.size}: {_fmt_num(expected)}"
            )
        elif not found.deviation <= atol:
            problems.append(
                f"{label} is {_fmt_num(found.got)}; expected {_fmt_num(expected)} (within {atol:g})"
            )
    if problems:
        return Verdict((len(cases) - len(problems)) / len(cases), "\n".join(problems))
    return Verdict(1.0, f"all {len(cases)} values are right")


# --- call_count --------------------------------------------------------------------------------


@check("call_count")
def check_call_count(ev: Evidence, *, function: str, per_n: float = 3.0) -> Verdict:
    """A memoized function makes a number of calls linear in n (counted in the sandbox)."""
    runs = call_counts(ev, function)
    if runs is None:
        reason = ev.facts.get("missing", {}).get(function, "not defined")
        return Verdict(0.0, f"`{function}` could not be called: {reason}")
    problems = []
    for run in runs:
        limit = per_n * run.n + 2
        if run.error:
            problems.append(f"`{function}({run.n})` raised {run.error}")
        elif run.capped:
            problems.append(
                f"`{function}({run.n})` made more than {run.calls} calls (stopped there); a "
                f"memoized version makes about 2n = {2 * run.n}. Store each result in `memo` and "
                f"return it when it is already there"
            )
        elif run.calls > limit:
            problems.append(
                f"`{function}({run.n})` made {run.calls} calls; expected at most {limit:g} "
                f"(linear in n), as memoization gives"
            )
    counts = ", ".join(f"{function}({r.n}): {r.calls} calls" for r in runs)
    if problems:
        return Verdict(0.0, "\n".join(problems), expected=f"<= {per_n:g}n + 2 calls", got=counts)
    return Verdict(1.0, f"calls grow linearly with n ({counts})")
