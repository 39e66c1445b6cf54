"""The evidence a check reads, the verdict it returns, and the helpers that phrase figures.

`Evidence` is the trusted view of one run: validated arrays and facts, the grader's own inputs
and, for an image assignment, the data splits (the held-out split lives only here). `Verdict` is
what a judge returns: a score in [0, 1] of the check's points and a message in the student's
terms (what, where, expected, got).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.course.data import FAMILIES
from grader.wire import CALL, FETCH, FunctionCall


@dataclass(frozen=True)
class Verdict:
    """What a check found: `score` in [0, 1] of its points, and a message for the student."""

    score: float
    message: str
    expected: str | None = None
    got: str | None = None
    skipped: bool = False  # could not be checked here (data absent): never counted as passed

    @property
    def passed(self) -> bool:
        return self.score >= 1.0


@dataclass(frozen=True)
class DrawnRun:
    """The calls drawn for one run (`[[drawn_calls]]`), as the trusted side alone knows them.

    `sent` is the runner's own account that the child asked for them after the student's code
    ran and was handed them; `expected` are the reference solution's values on the same
    arguments (its own sandboxed run), never anything the student's run reported."""

    calls: dict[str, FunctionCall]
    sent: bool = False
    expected: dict[str, np.ndarray] = field(default_factory=dict)
    reference_missing: bool = False  # no reference here (a self-check, a Gradescope bundle)
    reference_problem: str | None = None  # the reference's run failed: the grader's problem


class Missing(Exception):
    """An artifact a check needs was not produced (the student's variable is not defined, ...)."""


@dataclass
class Evidence:
    """The trusted view of one run: validated arrays and facts, plus the grader's own inputs."""

    assignment: Any
    arrays: dict[str, np.ndarray]
    facts: dict[str, Any]
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    data: Any = None  # the data set's Splits for an image assignment (held-out set: here only)
    cache: dict[str, Any] = field(default_factory=dict)  # what one check derived, for the next
    drawn: DrawnRun | None = None  # the calls drawn for this run, with their expected values

    @property
    def task(self):
        return self.assignment.task

    def array(self, name: str) -> np.ndarray:
        """An artifact by name; `a|b` names alternatives (the notes call one layer `hidden` in
        one lecture and `hidden1` in another): the first one present is taken. An array larger
        than the assignment allows (its `shapes` check) is refused here, before any arithmetic:
        a 96 KB weight of shape (3, 4000) must not make the grader evaluate a 4000-wide layer
        on a 200x200 grid."""
        for alt in name.split("|"):
            if alt in self.arrays:
                found = self.arrays[alt]
                limit = self.bounds().get(alt)
                too_big = found.size > MAX_ELEMENTS or (
                    limit is not None
                    and len(limit) == found.ndim
                    and any(
                        b is not None and d > b for d, b in zip(found.shape, limit, strict=True)
                    )
                )
                if too_big:
                    allowed = _fmt_shape(limit) if limit else f"{MAX_ELEMENTS:,} values"
                    raise Missing(
                        f"{show(alt)} has shape {_fmt_shape(found.shape)}, more than this "
                        f"assignment allows ({allowed}); it was not evaluated"
                    )
                return found
        name = name.split("|")[0]
        reason = self.facts.get("missing", {}).get(name) or self.facts.get("missing", {}).get(
            name.split(".")[0].split(":")[-1]
        )
        raise Missing(
            f"{show(name)} was not produced by your code" + (f": {reason}" if reason else "")
        )

    def bounds(self) -> dict[str, tuple[int | None, ...]]:
        """The largest shape the spec's `shapes` check allows each array (a dimension it leaves
        open as [low, high] counts as high; `batch` and unknown names as unbounded)."""
        if "bounds" not in self.cache:
            found: dict[str, tuple[int | None, ...]] = {}
            for spec in getattr(self.assignment, "checks", ()):
                if spec.check != "shapes":
                    continue
                dims = spec.params.get("dims") or {}
                for names, symbols in (spec.params.get("arrays") or {}).items():
                    limit = tuple(_largest(sym, dims) for sym in symbols)
                    for alt in names.split("|"):
                        found[alt] = limit
            self.cache["bounds"] = found
        return self.cache["bounds"]


MAX_ELEMENTS = 50_000_000  # no array the grader evaluates may hold more (400 MB in float64)


def _largest(symbol: Any, dims: dict[str, Any]) -> int | None:
    if isinstance(symbol, int):
        return symbol
    rule = dims.get(symbol)
    if isinstance(rule, int):
        return rule
    if isinstance(rule, list) and len(rule) == 2 and isinstance(rule[1], int):
        return rule[1]
    return None


def show(name: str) -> str:
    """An artifact name in the student's terms: `weights.output` -> `weights['output']`."""
    name = name.split("|")[0]
    for prefix in (FETCH, CALL, "var:"):
        if name.startswith(prefix):
            return f"`{name[len(prefix) :]}`"
    if "." in name:
        head, key = name.split(".", 1)
        return f"`{head}['{key}']`"
    return f"`{name}`"


def _fmt_shape(shape) -> str:
    dims = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _fmt_num(x: Any) -> str:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.4g}"
    return np.array2string(
        arr, separator=", ", threshold=12, formatter={"float_kind": lambda v: f"{v:.4g}"}
    )


def _bound_for(ev: Evidence, table: dict[str, float], what: str) -> float | Verdict:
    """The spec's bound for the data set this run is graded on, or a skipped verdict when the
    data are absent or no bound is calibrated for them (never counted as passed)."""
    if ev.data is None:
        family = FAMILIES[ev.task.data]
        return Verdict(0.0, f"{family.label} not available{family.where_to_put}", skipped=True)
    if ev.data.dataset.key not in table:
        return Verdict(0.0, f"no {what} is set for {ev.data.dataset.name}", skipped=True)
    return float(table[ev.data.dataset.key])


def _against(
    text: str, value: float, bound: float, *, least: bool, fmt: str, got: str = "", hint: str = ""
) -> Verdict:
    """Pass when `value` is at least (or at most) `bound`; the message says the figure and,
    on failure, what was expected."""
    expected = f"{'>=' if least else '<='} {bound:{fmt}}"
    got = got or f"{value:{fmt}}"
    if (value >= bound) if least else (value <= bound):
        return Verdict(1.0, text, expected=expected, got=got)
    word = "at least" if least else "at most"
    return Verdict(0.0, f"{text}; expected {word} {bound:{fmt}}{hint}", expected=expected, got=got)
