"""Measures of values the student's code computed or the sandbox counted: the loss records'
lengths, numbers, call counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grader.checks.base import Evidence, Missing
from grader.checks.measures.network import max_difference
from grader.wire import CALL


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
