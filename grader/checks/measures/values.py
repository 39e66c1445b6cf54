"""Measures of values the student's code computed or the sandbox counted: the loss records'
lengths, numbers, call counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grader.checks.base import Evidence, Missing
from grader.checks.measures.network import max_difference
from grader.wire import CALL, FunctionCall, call_key


@dataclass(frozen=True)
class RecordFound:
    """One record the notes keep: its length and whether every entry is finite."""

    name: str
    length: int = 0
    finite: bool = False
    missing: Missing | None = None  # why it is absent


def record_lengths(ev: Evidence, names: list[str]) -> list[RecordFound]:
    """Length and finiteness of each named record."""
    found = []
    for name in names:
        try:
            rec = np.asarray(ev.array(name), dtype=np.float64).ravel()
        except Missing as exc:
            found.append(RecordFound(name, missing=exc))
            continue
        found.append(RecordFound(name, len(rec), bool(np.all(np.isfinite(rec)))))
    return found


@dataclass(frozen=True)
class ValueFound:
    """A value the spec's case asks for, as the student's code computed it."""

    got: np.ndarray | None = None
    error: str | None = None  # the call raised
    missing: Missing | None = None  # the artifact is absent
    not_number: bool = False
    deviation: float = math.nan  # max |got - expected| when the sizes agree


def computed_value(ev: Evidence, of: str, expected: np.ndarray) -> ValueFound:
    """What the student's code gave for `of` (`call:<id>` or a variable), next to `expected`."""
    err = ev.facts.get("call_errors", {}).get(of.removeprefix(CALL))
    if err:
        return ValueFound(error=err)
    try:
        got = np.asarray(ev.array(of), dtype=np.float64)
    except Missing as exc:
        return ValueFound(missing=exc)
    except (TypeError, ValueError):
        return ValueFound(not_number=True)
    if got.size != expected.size:
        return ValueFound(got)
    return ValueFound(got, deviation=max_difference(got.reshape(expected.shape), expected))


@dataclass(frozen=True)
class CallRun:
    """One call of a function the spec makes with argument n, counted in the sandbox."""

    n: int
    calls: int
    error: str | None = None
    capped: bool = False  # counting stopped at `calls`


def call_counts(ev: Evidence, function: str) -> list[CallRun] | None:
    """The counted calls of `function` for each n; None if it could not be called."""
    runs = ev.facts.get("call_counts", {}).get(function)
    if not runs:
        return None
    return [CallRun(r["n"], r["calls"], r.get("error"), bool(r.get("capped"))) for r in runs]


@dataclass(frozen=True)
class DrawnFound:
    """One call on arguments drawn for this run: the student's value beside the reference's."""

    call: FunctionCall
    expected: np.ndarray
    got: np.ndarray | None = None
    error: str | None = None  # the call raised, or ran out of its CPU budget
    deviation: float = math.nan  # the smallest atol np.allclose accepts, at the given rtol


def drawn_values(ev: Evidence, calls: list[str], rtol: float = 0.0) -> list[DrawnFound]:
    """The student's value of each drawn call next to the reference's (`ev.drawn.expected`).
    The caller has made sure the calls were handed over and the reference's values exist."""
    assert ev.drawn is not None
    found = []
    for call_id in calls:
        call, expected = ev.drawn.calls[call_id], ev.drawn.expected[call_id]
        err = ev.facts.get("call_errors", {}).get(call_id)
        got = ev.arrays.get(call_key(call_id))
        if err or got is None:
            found.append(DrawnFound(call, expected, error=str(err) if err else None))
            continue
        got = np.asarray(got, dtype=np.float64)
        if got.size != expected.size:
            found.append(DrawnFound(call, expected, got))
            continue
        got = got.reshape(expected.shape)
        found.append(
            DrawnFound(call, expected, got, None, max_difference(got, expected, rtol=rtol))
        )
    return found
