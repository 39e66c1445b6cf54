"""Comparing a student's Keras model with the reference's: one message per difference.

Both models are first reduced to semantic steps (a Dense with its activation folded in, a
Flatten that does something, an Activation, a Dropout), so equivalent spellings compare equal.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from grader.model.architecture import ACTIVATION_LAYERS, Architecture, Layer, fmt

__all__ = ["compare_structure"]


def compare_structure(
    student: Architecture, reference: Architecture, *, dropout: bool = False
) -> list[str]:
    """The semantic differences between two models, one message each (empty if equivalent).

    Equivalent spellings compare equal: an activation given as an argument or as a following
    Activation/Softmax/ReLU layer, `Input(...)` or `input_shape=`/`input_dim=`, a Flatten of an
    input that is already flat. Dropout layers are compared (presence, position, rate) only if
    `dropout` is true. Defaults to `False`: they are identities when predicting.
    Messages use the student's layer numbers and names.
    """
    out: list[str] = []
    if student.input_shape[1:] != reference.input_shape[1:]:
        out.append(
            f"input shape is {fmt(student.input_shape)}; "
            f"the reference takes {fmt(reference.input_shape)}"
        )
    mine, theirs = _canonical(student, dropout), _canonical(reference, dropout)
    outputs = (_output_step(mine), _output_step(theirs))
    # Align identical steps first (so an output layer meets the reference's output layer),
    # then, inside each stretch that differs, steps of the same kind.
    for op, i1, i2, j1, j2 in _opcodes(mine, theirs, lambda s: s.describe()):
        if op == "equal":
            out += _compare_steps(mine, theirs, i1, i2, j1, outputs)
            continue
        part_a, part_b = mine[i1:i2], theirs[j1:j2]
        for op2, a1, a2, b1, b2 in _opcodes(part_a, part_b, lambda s: s.kind):
            if op2 == "equal":
                out += _compare_steps(mine, theirs, i1 + a1, i1 + a2, j1 + b1, outputs)
            elif op2 == "replace" and a2 - a1 == b2 - b1:
                for a, b in zip(part_a[a1:a2], part_b[b1:b2], strict=True):
                    out.append(f"{a.where}: {a.describe()}; the reference has {b.describe()} here")
            else:
                out += _extra_and_missing(mine, theirs, i1 + a1, i1 + a2, j1 + b1, j1 + b2)
    if student.params != reference.params:
        out.append(
            f"the model has {student.params:,} parameters; the reference has {reference.params:,}"
        )
    return out


def _opcodes(
    a: list[_Step], b: list[_Step], key: Callable[[_Step], str]
) -> Sequence[tuple[str, int, int, int, int]]:
    matcher = difflib.SequenceMatcher(
        None, [key(s) for s in a], [key(s) for s in b], autojunk=False
    )
    return matcher.get_opcodes()


def _compare_steps(
    mine: list[_Step],
    theirs: list[_Step],
    i1: int,
    i2: int,
    j1: int,
    outputs: tuple[int | None, int | None],
) -> list[str]:
    out: list[str] = []
    for i in range(i1, i2):
        j = j1 + i - i1
        out += _compare_step(mine[i], theirs[j], (i, j) == outputs)
    return out


def _extra_and_missing(
    mine: list[_Step], theirs: list[_Step], i1: int, i2: int, j1: int, j2: int
) -> list[str]:
    out: list[str] = []
    for a in mine[i1:i2]:
        out.append(f"{a.where}: {a.describe()} is extra; the reference has no such layer")
    if j2 > j1:
        missing = ", ".join(b.describe() for b in theirs[j1:j2])
        if i1 > 0:
            place = f"after {mine[i1 - 1].last_where}"
        else:
            place = f"before {mine[0].where}" if mine else "in the model"
        out.append(f"missing {place}: the reference has {missing} there")
    return out


@dataclass(frozen=True)
class _Step:
    """One semantic step: Dense (with its activation folded in), Flatten, Activation, Dropout."""

    kind: str
    layer: Layer
    activation: str | None = None
    act_layer: Layer | None = None  # the layer that set the activation, if not `layer`

    @property
    def where(self) -> str:
        return self.layer.where

    @property
    def last_where(self) -> str:
        return (self.act_layer or self.layer).where

    def describe(self) -> str:
        la = self.layer
        if self.kind == "Dense":
            bias = "" if la.use_bias else ", no bias"
            return f"Dense({la.units}, {self.activation}{bias})"
        return la.describe()


def _canonical(arch: Architecture, dropout: bool) -> list[_Step]:
    steps: list[_Step] = []
    for la in arch.layers:
        if la.kind == "Dropout":
            if dropout:
                steps.append(_Step("Dropout", la))
        elif la.kind == "Flatten":
            if len(la.input_shape) > 2:  # flattening a flat input does nothing
                steps.append(_Step("Flatten", la))
        elif la.kind in ACTIVATION_LAYERS:
            if la.activation == "linear":
                continue
            prev = steps[-1] if steps else None
            if prev is not None and prev.kind == "Dense" and prev.activation == "linear":
                steps[-1] = replace(prev, activation=la.activation, act_layer=la)
            else:
                steps.append(_Step("Activation", la, activation=la.activation))
        else:
            steps.append(_Step("Dense", la, activation=la.activation))
    return steps


def _output_step(steps: list[_Step]) -> int | None:
    """The step that sets the model's output activation: the last Dense or Activation."""
    for i in range(len(steps) - 1, -1, -1):
        if steps[i].kind in ("Dense", "Activation"):
            return i
    return None


def _compare_step(a: _Step, b: _Step, is_output: bool) -> list[str]:
    la, lb = a.layer, b.layer
    out: list[str] = []
    if a.kind == "Dense" and la.units != lb.units:
        out.append(f"{a.where}: Dense with {la.units} units; the reference has {lb.units}")
    if a.kind in ("Dense", "Activation") and a.activation != b.activation:
        act_where = (a.act_layer or la).where
        what = "output activation" if is_output else "activation"
        out.append(f"{act_where}: {what} is {a.activation}; the reference uses {b.activation}")
    if a.kind == "Dense" and la.use_bias != lb.use_bias:
        has = (
            "has no bias; the reference has one"
            if lb.use_bias
            else "has a bias; the reference has none"
        )
        out.append(f"{a.where}: {has}")
    if a.kind == "Dropout" and la.rate != lb.rate:
        out.append(f"{a.where}: Dropout rate {la.rate:g}; the reference uses {lb.rate:g}")
    if a.kind == "Dense" and la.units == lb.units:
        if la.output_shape[1:] != lb.output_shape[1:]:
            out.append(
                f"{a.where}: output shape {fmt(la.output_shape)}; the reference has "
                f"{fmt(lb.output_shape)}"
            )
        elif la.params != lb.params:
            out.append(
                f"{a.where}: {la.params:,} parameters; the reference has {lb.params:,} "
                f"(its input has {la.input_shape[-1]} features; the reference's has "
                f"{lb.input_shape[-1]})"
            )
    if a.kind == "Flatten" and la.output_shape[1:] != lb.output_shape[1:]:
        out.append(
            f"{a.where}: output shape {fmt(la.output_shape)}; the reference has "
            f"{fmt(lb.output_shape)}"
        )
    return out
