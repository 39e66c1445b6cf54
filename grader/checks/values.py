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
from grader.checks.measures import call_counts, computed_value, drawn_values, record_lengths
from grader.registry import check
from grader.wire import FunctionCall

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


# --- drawn_values ------------------------------------------------------------------------------


@check("drawn_values")
def check_drawn_values(
    ev: Evidence,
    *,
    calls: list[str],
    rtol: float = 1e-6,
    atol: float = 1e-6,
    slow_hint: str = "",
) -> Verdict:
    """The student's functions, called on arguments drawn afresh for this run (`[[drawn_calls]]`
    of the spec, handed to the sandbox only after the student's code ran), agree with the
    reference solution called on the same arguments: |got - expected| <= atol + rtol |expected|.

    Nothing the child reports scores unless the runner itself handed it the calls: a process
    that wrote its results without asking gets 0, whatever numbers it wrote.

    Args:
        calls: ids of `[[drawn_calls]]` entries.
        rtol: relative tolerance (large exact integers come back as floats). Defaults to `1e-6`.
        atol: absolute tolerance. Defaults to `1e-6`.
        slow_hint: said when a call gave no result within the per-call CPU budget.
    """
    drawn = ev.drawn
    if drawn is None or any(c not in drawn.calls for c in calls):
        return Verdict(0.0, "the grader drew no arguments for these calls")
    if not drawn.sent:
        return Verdict(
            0.0,
            "your code's process never asked for the grader's calls: it ended, or wrote on the "
            "results pipe, before the grader could call your functions (nothing it reported "
            "about them counts)",
        )
    if drawn.reference_missing:
        return Verdict(
            0.0,
            "the reference solution is not here to compute the expected values (a student's "
            "copy of the course, a Gradescope bundle): not graded here",
            skipped=True,
        )
    if drawn.reference_problem:
        raise RuntimeError(f"the reference solution's run failed: {drawn.reference_problem}")
    missing = [c for c in calls if c not in drawn.expected]
    if missing:
        raise RuntimeError(f"the reference solution gave no value for {sorted(missing)}")
    problems, slow = [], False
    for found in drawn_values(ev, calls, rtol):
        label = _call_label(found.call)
        if found.error:
            slow = slow or "CPU time" in found.error
            problems.append(f"{label} failed: {found.error}")
        elif found.got is None:
            problems.append(f"{label} gave no value")
        elif found.got.size != found.expected.size:
            problems.append(
                f"{label} gave {found.got.size} value(s) {_fmt_num(found.got)}; expected "
                f"{found.expected.size}: {_fmt_num(found.expected)}"
            )
        elif not found.deviation <= atol:
            problems.append(
                f"{label} is {_fmt_drawn(found.got)}; expected {_fmt_drawn(found.expected)}"
                f" (within {atol:g} + {rtol:g} x |expected|)"
            )
    if problems:
        hint = [slow_hint] if slow and slow_hint else []
        return Verdict((len(calls) - len(problems)) / len(calls), "\n".join([*problems, *hint]))
    shown = ", ".join(_call_label(drawn.calls[c]) for c in calls)
    return Verdict(1.0, f"right on the numbers drawn for this run: {shown}")


def _call_label(call: FunctionCall) -> str:
    """`fac(17)`, `forward(<4x3 array>, <3 values>)`: a drawn call in the student's terms."""
    shown = []
    for arg in call.args:
        if isinstance(arg, list):
            shape = np.shape(arg)
            shown.append(
                f"<{'x'.join(map(str, shape))} array>" if len(shape) > 1 else f"<{shape[0]} values>"
            )
        elif isinstance(arg, float):
            shown.append(f"{arg:.4g}")
        else:
            shown.append(repr(arg))
    return f"`{call.function}({', '.join(shown)})`"


def _fmt_drawn(x: np.ndarray) -> str:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.size == 1:
        value = float(arr.ravel()[0])
        whole = value.is_integer() and abs(value) < 1e16  # fac(17), fib(20): exact integers
        return f"{int(value)}" if whole else f"{value:.12g}"
    return _fmt_num(arr)
