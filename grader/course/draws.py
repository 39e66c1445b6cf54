"""Calls on arguments drawn afresh for every run: a spec's `[[drawn_calls]]`.

Why: a value the student's function returns is a fact the child reports about itself, and the
child can forge any such fact (replace the collector, write the results pipe and exit). Calls on
arguments that are public (in the spec, in `job.json`) can be answered from a table; calls on
arguments drawn here, with a seed from `secrets` that never leaves the trusted process, cannot:
the arguments reach the child only through a pipe, and only when it asks for them after the
student's code has run (`grader.run.runner`). Whoever reads that pipe, the student's code
included, must still compute the right values for numbers it has never seen: forging them is
solving the exercise. The expected values come from the reference solution called on the same
arguments (`grader.pipeline`), never from the child.

An entry of the spec:

    [[drawn_calls]]
    id = "forward_a"
    function = "forward"
    dims = { k = [2, 5], j = [2, 5] }          # sizes drawn per call (inclusive ranges)
    args = [{ uniform = [-1.0, 1.0], shape = ["k", "j"] }, { uniform = [-1.0, 1.0], shape = ["j"] }]
    setup = ""                                 # run first; `{0}` is the first drawn argument

An argument is a literal (a number or a list of numbers), `{ int = [lo, hi] }` (an integer,
both ends included), or `{ uniform = [lo, hi], shape = [...] }` (a float, or an array of that
shape: sizes are numbers or names of `dims`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.errors import SpecError
from grader.wire import FunctionCall

__all__ = ["CallDraw", "draw", "fresh_rng", "parse"]

MAX_ELEMENTS = 10_000  # of one drawn array: the calls travel as JSON through a pipe


@dataclass(frozen=True)
class CallDraw:
    """How to draw the arguments of one call of the student's `function`."""

    id: str
    function: str
    args: tuple[Any, ...]
    dims: dict[str, tuple[int, int]] = field(default_factory=dict)
    setup: str = ""


def fresh_rng() -> np.random.Generator:
    """A generator seeded from the operating system's secret randomness, for one run."""
    return np.random.default_rng(secrets.randbits(128))


def draw(specs: tuple[CallDraw, ...], rng: np.random.Generator) -> tuple[FunctionCall, ...]:
    """The calls of one run: arguments drawn from `rng`, setup filled in with them."""
    calls = []
    for spec in specs:
        dims = {k: int(rng.integers(lo, hi, endpoint=True)) for k, (lo, hi) in spec.dims.items()}
        args = tuple(_draw_arg(a, dims, rng) for a in spec.args)
        setup = spec.setup.format(*args) if spec.setup else ""
        calls.append(FunctionCall(spec.id, spec.function, args, setup))
    return tuple(calls)


def _draw_arg(arg: Any, dims: dict[str, int], rng: np.random.Generator) -> Any:
    if not isinstance(arg, dict):
        return arg
    if "int" in arg:
        lo, hi = arg["int"]
        return int(rng.integers(lo, hi, endpoint=True))
    lo, hi = arg["uniform"]
    shape = tuple(dims[d] if isinstance(d, str) else int(d) for d in arg.get("shape", ()))
    value = rng.uniform(lo, hi, shape)
    return float(value) if not shape else value.tolist()


def parse(entries: Any, where: str) -> tuple[CallDraw, ...]:
    """The spec's `[[drawn_calls]]`, validated (the file and the entry that is wrong)."""
    if not isinstance(entries, list):
        raise SpecError(f"{where}: 'drawn_calls' must be an array of tables ([[drawn_calls]])")
    out, ids = [], set()
    for i, entry in enumerate(entries):
        at = f"{where}: [[drawn_calls]] #{i + 1}"
        if not isinstance(entry, dict):
            raise SpecError(f"{at} must be a table")
        if unknown := set(entry) - {"id", "function", "args", "dims", "setup"}:
            raise SpecError(f"{at}: unknown {sorted(unknown)}")
        for key in ("id", "function"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise SpecError(f"{at}: {key!r} is required (a string)")
        if entry["id"] in ids:
            raise SpecError(f"{at}: duplicate id {entry['id']!r}")
        ids.add(entry["id"])
        dims = entry.get("dims", {})
        if not isinstance(dims, dict) or not all(_is_range(r, int) for r in dims.values()):
            raise SpecError(f"{at}: 'dims' maps names to [lo, hi] (whole numbers, lo <= hi)")
        args = entry.get("args")
        if not isinstance(args, list):
            raise SpecError(f"{at}: 'args' is required (an array)")
        for j, arg in enumerate(args):
            if problem := _arg_problem(arg, dims):
                raise SpecError(f"{at}: args[{j}]: {problem}")
        setup = entry.get("setup", "")
        if not isinstance(setup, str):
            raise SpecError(f"{at}: 'setup' must be a string")
        out.append(
            CallDraw(
                entry["id"],
                entry["function"],
                tuple(args),
                {k: (int(v[0]), int(v[1])) for k, v in dims.items()},
                setup,
            )
        )
    return tuple(out)


def _is_range(value: Any, kind: type) -> bool:
    kinds = (int,) if kind is int else (int, float)
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, kinds) and not isinstance(v, bool) for v in value)
        and value[0] <= value[1]
    )


def _arg_problem(arg: Any, dims: dict[str, Any]) -> str | None:
    if not isinstance(arg, dict):
        return None  # a literal, passed as it is
    if set(arg) == {"int"}:
        return None if _is_range(arg["int"], int) else "int = [lo, hi] (whole numbers, lo <= hi)"
    if "uniform" not in arg or set(arg) - {"uniform", "shape"}:
        return "a literal, { int = [lo, hi] }, or { uniform = [lo, hi], shape = [...] }"
    if not _is_range(arg["uniform"], float):
        return "uniform = [lo, hi] (numbers, lo <= hi)"
    shape = arg.get("shape", [])
    size = 1
    for d in shape if isinstance(shape, list) else [None]:
        if isinstance(d, str) and d in dims:
            size *= int(dims[d][1])
        elif isinstance(d, int) and not isinstance(d, bool) and d > 0:
            size *= d
        else:
            return f"shape entries are positive sizes or names of dims ({sorted(dims)})"
    return None if size <= MAX_ELEMENTS else f"arrays of at most {MAX_ELEMENTS} values"
