"""Checks of the TensorFlow graph assignments: shapes, wiring, loss, training, boundary,
accuracy, checkpoints, one-hot labels. Each reads the validated artifacts and the assignment's
trusted task; none imports student code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.base import (
    Evidence,
    Missing,
    Verdict,
    _against,
    _bound_for,
    _finite_params,
    _fmt_num,
    _fmt_shape,
    _nonfinite,
    show,
)
from grader.checks.measures import (
    ArrayFound,
    PlaceholderFound,
    RecordFigures,
    RestorePair,
    array_shapes,
    boundary_agreement,
    fetched,
    heldout_accuracy,
    is_one_hot,
    label_agreement,
    loss_before_after,
    loss_function_difference,
    parameter_values,
    placeholder_shapes,
    restore_pairs,
    training_record,
    wiring_difference,
)
from grader.model.keras import ModelRefused
from grader.registry import check

# --- shapes ------------------------------------------------------------------------------------


class _ShapeRule:
    """Matches found shapes against the spec's symbolic ones, binding each open dimension (a
    `[low, high]` range) to the size it first meets."""

    def __init__(self, dims: dict[str, Any]):
        self.dims = dims
        self.bound: dict[str, int] = {}

    def problem(self, label: str, got: tuple, spec: list) -> str | None:
        """What is wrong with shape `got` of `label` against `spec`, or None."""
        expected_vals = []
        ok = len(got) == len(spec)
        for i, sym in enumerate(spec):
            g = got[i] if i < len(got) else "?"
            if sym == "batch":
                expected_vals.append("None")
                continue
            if isinstance(sym, int):
                expected_vals.append(str(sym))
                ok = ok and g == sym
                continue
            rule = self.dims.get(sym)
            if isinstance(rule, int):
                expected_vals.append(str(rule))
                ok = ok and g == rule
            elif sym in self.bound:
                expected_vals.append(str(self.bound[sym]))
                ok = ok and g == self.bound[sym]
            elif isinstance(rule, list) and len(rule) == 2:
                lo, hi = rule
                if isinstance(g, int) and lo <= g <= hi:
                    self.bound[sym] = g
                    expected_vals.append(str(g))
                else:
                    expected_vals.append(f"{lo}..{hi}")
                    ok = False
            else:
                expected_vals.append(sym)
        if ok:
            return None
        names = "(" + ", ".join(str(s) for s in spec) + ")"
        return (
            f"{label} has shape {_fmt_shape(got)}; expected {names} = "
            f"({', '.join(expected_vals)}{',' if len(expected_vals) == 1 else ''})"
        )


def _placeholder_problem(found: PlaceholderFound, spec: list, rule: _ShapeRule) -> str | None:
    if not found.defined:
        return f"placeholder `{found.name}` not found ({found.reason})"
    if found.kind != "placeholder":
        return f"`{found.name}` is a {found.kind}, not a tf.placeholder"
    if found.shape is None:
        return f"placeholder `{found.name}` has no fixed rank; give it a shape like [None, ...]"
    return rule.problem(f"placeholder `{found.name}`", found.shape, spec)


def _array_problem(ev: Evidence, found: ArrayFound, spec: list, rule: _ShapeRule) -> str | None:
    if found.found is not None and found.shape is not None:
        return rule.problem(show(found.found), found.shape, spec)
    try:
        ev.array(found.name)
    except Missing as exc:
        return str(exc)
    return None


@check("shapes")
def check_shapes(
    ev: Evidence,
    *,
    placeholders: dict[str, list] | None = None,
    arrays: dict[str, list] | None = None,
    dims: dict[str, Any] | None = None,
) -> Verdict:
    """Placeholders and weight arrays have the shapes of the lecture's network.

    Dimensions are numbers or names bound in `dims` (a number, or `[low, high]` for a size the
    assignment leaves open, bound by its first use); `batch` accepts `None` or any number.
    """
    placeholders, arrays = placeholders or {}, arrays or {}
    rule = _ShapeRule(dict(dims or {}))
    found = [
        _placeholder_problem(p, placeholders[p.name], rule)
        for p in placeholder_shapes(ev, list(placeholders))
    ]
    found += [_array_problem(ev, a, arrays[a.name], rule) for a in array_shapes(ev, list(arrays))]
    problems = [p for p in found if p is not None]
    total = len(found)
    if total == 0:
        return Verdict(0.0, "nothing to check (spec lists no shapes)")
    score = (total - len(problems)) / total
    if not problems:
        return Verdict(1.0, f"all {total} shapes are right")
    return Verdict(score, "\n".join(problems), expected=None, got=None)


# --- wiring ------------------------------------------------------------------------------------


def _fetched(ev: Evidence, fetch: str) -> np.ndarray | Verdict:
    """What the student's tensor `fetch` gave on the probe inputs, or the failing verdict."""
    try:
        return fetched(ev, fetch)
    except Missing:
        err = ev.facts.get("fetch_errors", {}).get(fetch)
        if err:
            return Verdict(0.0, f"could not evaluate `{fetch}` on probe inputs: {err}")
        raise


def describe_model(task, layers: list[int] | None = None) -> str:
    """The reference network in the student's terms, one layer after the other."""
    steps = []
    start = (layers or [0])[0]
    src = task.layers[start - 1].weight.split("|")[0].split(".")[-1] if start else "x"
    for layer in task.layers[slice(*layers)] if layers else task.layers:
        op = "*" if layer.op == "scale" else "@"
        expr = f"{src} {op} {show(layer.weight)}"
        if layer.bias:
            expr += f" + {show(layer.bias)}"
        if layer.activation != "linear":
            expr = f"{layer.activation}({expr})"
        src = layer.weight.split("|")[0].split(".")[-1]
        steps.append(f"{src} = {expr}")
    return "; ".join(steps)


@check("wiring", needs_task=True)
def check_wiring(
    ev: Evidence,
    *,
    fetch: str = "pred",
    input: str = "probe_x",
    layers: list[int] | None = None,
    atol: float = 1e-3,
    rtol: float = 1e-3,
) -> Verdict:
    """The reference model function fed the student's weights reproduces the student's own
    `pred` on probe inputs: the layers are wired as the lecture wires them. `layers` =
    [start, stop] checks a slice (an autoencoder's encoder, or its decoder)."""
    got = _fetched(ev, fetch)
    if isinstance(got, Verdict):
        return got
    params = ev.params()
    try:
        d = wiring_difference(ev.task, params, ev.inputs[input], got, layers, rtol=rtol)
    except ValueError as exc:
        shapes = ", ".join(f"{show(k)} {_fmt_shape(v.shape)}" for k, v in params.items())
        return Verdict(0.0, f"your weights do not fit the lecture's network ({shapes}): {exc}")
    if d.got_shape != d.want_shape:
        return Verdict(
            0.0,
            f"`{fetch}` on {d.inputs} probe inputs has shape {_fmt_shape(d.got_shape)}; "
            f"the lecture's network gives {_fmt_shape(d.want_shape)}",
            expected=_fmt_shape(d.want_shape),
            got=_fmt_shape(d.got_shape),
        )
    if not d.finite:
        return Verdict(
            0.0, f"`{fetch}` contains NaN or infinity on probe inputs: training diverged"
        )
    if d.excess <= atol:
        return Verdict(1.0, f"`{fetch}` matches the lecture's network on {d.inputs} probe inputs")
    return Verdict(
        0.0,
        f"`{fetch}` differs from the lecture's network ({describe_model(ev.task, layers)}) fed your "
        f"own weights, by up to {d.max_abs:.3g} on {d.inputs} probe inputs; check the layer "
        f"order, activations and biases",
        expected=f"max difference <= {atol:g}",
        got=f"{d.max_abs:.3g}",
    )


# --- loss_function -----------------------------------------------------------------------------

LOSS_NAMES = {
    "sigmoid_ce": "tf.nn.sigmoid_cross_entropy_with_logits (mean)",
    "softmax_ce": "tf.nn.softmax_cross_entropy_with_logits (mean), for one-hot labels",
    "mse": "the mean squared error tf.reduce_mean(tf.square(y - pred))",
}
LOSS_RTOL = 1e-3  # relative tolerance of the loss comparison, besides the spec's `atol`


@check("loss_function", needs_task=True)
def check_loss_function(
    ev: Evidence,
    *,
    fetch: str = "loss",
    pred: str = "pred",
    labels: str = "probe_y",
    atol: float = 1e-3,
) -> Verdict:
    """`loss`, evaluated on probe inputs and labels, is the lecture's loss of `pred`."""
    got = _fetched(ev, fetch)
    if isinstance(got, Verdict):
        return got
    f = loss_function_difference(ev.task, got, fetched(ev, pred), ev.inputs[labels], rtol=LOSS_RTOL)
    name = LOSS_NAMES[ev.task.loss]
    if not f.finite:
        return Verdict(0.0, f"`{fetch}` is NaN or infinite on probe inputs: training diverged")
    if not f.same_shape:
        return Verdict(
            0.0, f"`{fetch}` should be one number (reduce_mean); got shape {f.got.shape}"
        )
    if f.excess <= atol:
        return Verdict(1.0, f"`{fetch}` is {name}")
    several = len(f.got) > 1
    return Verdict(
        0.0,
        f"`{fetch}` on probe inputs is {_fmt_num(f.got if several else f.got[0])}; {name} of your "
        f"`{pred}` against `y` is {_fmt_num(f.want if several else f.want[0])}. "
        f"This assignment needs {name}.",
        expected=_fmt_num(f.want),
        got=_fmt_num(f.got),
    )


# --- loss_decrease -----------------------------------------------------------------------------


def _record_story(rec: RecordFigures | None, start: float, max_ratio: float):
    """The student's own record in a few words, whether it fell enough, and whether it blew up
    (rose above twice the loss at initialization) on the way."""
    if rec is None:
        return "", False, False
    own_fell = bool(np.isfinite(rec.last) and rec.last <= max_ratio * min(rec.first, start))
    if rec.peak > 2 * start:
        return f" (your `{rec.name}` rose to {rec.peak:.4g} on the way)", own_fell, True
    return f" (your `{rec.name}` went from {rec.first:.4g} to {rec.last:.4g})", own_fell, False


def _loss_hint(blew_up: bool, own_fell: bool, ratio: float) -> str:
    if blew_up:
        return " The training loss jumped up: the learning rate (LR) is probably too high."
    if own_fell:
        return (
            " Your own loss fell, so the network you trained is not the lecture's network on "
            "the lecture's labels: see the wiring and label checks."
        )
    if ratio > 0.9:
        return " Did the training loop run `optm`?"
    return ""


@check("loss_decrease", needs_task=True)
def check_loss_decrease(ev: Evidence, *, max_ratio: float = 0.5, n: int = 2000) -> Verdict:
    """Training lowered the loss: the grader recomputes the loss of the final weights and of the
    template's initialization on data it generates itself (the student's `loss_record` is shown
    for feedback only)."""
    bad = _nonfinite(ev.params())
    if bad:
        return Verdict(
            0.0,
            f"training diverged: {', '.join(bad)} contain NaN or infinity; "
            f"try a smaller learning rate (LR)",
            got="NaN",
        )
    try:
        loss = loss_before_after(ev, n)
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    start, final = loss.start, loss.final
    record, own_fell, blew_up = _record_story(training_record(ev), start, max_ratio)
    if not np.isfinite(final) or final > 1e6 * max(start, 1e-12):
        return Verdict(
            0.0, f"training diverged: the loss is {final:.4g}{record}", got=f"{final:.4g}"
        )
    drawn = "held-out images" if ev.data is not None else "fresh points"
    expected = (
        f"loss after training <= {max_ratio:g} x loss at initialization = {max_ratio * start:.4g}"
    )
    if loss.ratio <= max_ratio:
        return Verdict(
            1.0,
            f"the loss fell from {start:.4g} at initialization to {final:.4g} after training{record}",
        )
    hint = _loss_hint(blew_up, own_fell, loss.ratio)
    return Verdict(
        0.0,
        f"the loss of your final weights on {n} {drawn} is {final:.4g}; at the template's "
        f"initialization it is {start:.4g}; expected {expected}.{hint}{record}",
        expected=expected,
        got=f"{final:.4g}",
    )


# --- parameters --------------------------------------------------------------------------------


@check("parameters")
def check_parameters(ev: Evidence, *, expect: dict[str, float], atol: float = 0.2) -> Verdict:
    """Learned parameters are close to the values the data were generated with."""
    problems = []
    good = []
    for name, arr in parameter_values(ev, list(expect)).items():
        value = expect[name]
        if arr.size != 1:
            problems.append(f"{show(name)} has {arr.size} values; expected a single number")
            continue
        got = float(arr[0])
        if not np.isfinite(got):
            problems.append(
                f"{show(name)} is {got}: training diverged; try a smaller learning rate"
            )
        elif abs(got - value) > atol:
            problems.append(
                f"{show(name)} is {got:.4g}; expected about {value:g} (within {atol:g})"
            )
        else:
            good.append(f"{show(name)} = {got:.4g}")
    if problems:
        return Verdict((len(expect) - len(problems)) / len(expect), "\n".join(problems))
    return Verdict(1.0, ", ".join(good) + " (close to the values used to generate the data)")


# --- decision_boundary -------------------------------------------------------------------------


@check("decision_boundary", needs_task=True)
def check_decision_boundary(
    ev: Evidence, *, minimum: float, grid: int = 200, heldout: int = 2000
) -> Verdict:
    """The classifier agrees with the true boundary of the lecture's data generator, on a dense
    grid over the lecture's domain and on held-out points drawn with a grader seed."""
    params = _finite_params(ev)
    if isinstance(params, Verdict):
        return params
    try:
        agree = boundary_agreement(ev.task, params, grid, heldout, ev.assignment.grading_seed)
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    gen = ev.task.generator
    domain = ", ".join(
        f"x{i + 1} in [{lo:g}, {hi:g}]"
        for i, (lo, hi) in enumerate(zip(gen.low, gen.high, strict=True))
    )
    text = (
        f"your classifier agrees with the true boundary {gen.formula} on {agree.on_grid:.1%} of a "
        f"{grid}x{grid} grid over {domain} and on {agree.on_held:.1%} of {heldout} held-out points"
    )
    return _against(text, agree.lowest, minimum, least=True, fmt=".1%")


# --- checkpoint_restore ---------------------------------------------------------------------------


def _restore_problem(pair: RestorePair, trained_in: str, tested_in: str, atol: float) -> str | None:
    name = pair.name
    if pair.trained is None:
        return f"{trained_in} left no trained {show(name)}: did it run a session?"
    if pair.restored is None:
        return (
            f"{tested_in} has no value for {show(name)}: restore the checkpoint with "
            f"tf.train.Saver().restore(sess, path)"
        )
    if pair.trained.shape != pair.restored.shape:
        return (
            f"{show(name)} is {_fmt_shape(pair.trained.shape)} when trained, "
            f"{_fmt_shape(pair.restored.shape)} when restored"
        )
    if pair.difference > atol:
        return (
            f"{tested_in} used a {show(name)} that differs from the one {trained_in} trained, by "
            f"up to {pair.max_abs:.3g}: was the checkpoint saved after training, and restored "
            f"rather than initialized again?"
        )
    return None


@check("checkpoint_restore", needs_task=True)
def check_checkpoint_restore(
    ev: Evidence, *, names: list[str], prefix: str = "train:", atol: float = 1e-6
) -> Verdict:
    """The test file restored exactly what the training file trained and saved (the two ran
    in separate namespaces and graphs): same variables, hence the same held-out accuracy."""
    stages = [s.file for s in ev.assignment.stages] or ["training", "test"]
    trained_in, tested_in = stages[0], stages[-1]
    pairs = restore_pairs(ev, names, prefix)
    problems = [p for p in (_restore_problem(q, trained_in, tested_in, atol) for q in pairs) if p]
    if problems:
        return Verdict(0.0, "\n".join(problems))
    text = f"{tested_in} restored exactly what {trained_in} trained ({', '.join(show(n) for n in names)})"
    if ev.data is not None:
        restored = {p.name: p.restored for p in pairs if p.restored is not None}
        acc = heldout_accuracy(ev, restored).accuracy
        text += f": held-out accuracy {acc:.1%} after the restore, as after training"
    return Verdict(1.0, text)


# --- accuracy ----------------------------------------------------------------------------------


@check("accuracy", needs_task=True)
def check_accuracy(ev: Evidence, *, minimum: dict[str, float]) -> Verdict:
    """Accuracy of the student's weights in the grader's own rebuild of the network, on the
    held-out test set the sandbox never saw. `minimum` is per data set (`mnist`,
    `mnist-embedded`, ...), calibrated against the reference on the same data."""
    want = _bound_for(ev, minimum, "accuracy threshold")
    if isinstance(want, Verdict):
        return want
    keras = ev.task.model == "keras"
    params: dict[str, np.ndarray] | None = None
    if not keras:
        found = _finite_params(ev)
        if isinstance(found, Verdict):
            return found
        params = found
    try:
        acc = heldout_accuracy(ev, params)
    except ModelRefused as exc:
        return Verdict(0.0, f"your model cannot be graded: {exc}")
    except ValueError as exc:
        if keras:
            return Verdict(
                0.0, f"your model does not take the images as the notes prepare them: {exc}"
            )
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    text = f"accuracy {acc.accuracy:.1%} on {acc.images} held-out images of {ev.data.dataset.name}"
    hint = ""
    if acc.top_count > 0.5 * acc.images:
        share = acc.top_count / acc.images
        hint = f"; it predicts {acc.top_class} for {share:.0%} of the images"
    return _against(text, acc.accuracy, want, least=True, fmt=".1%", hint=hint)


# --- one_hot -----------------------------------------------------------------------------------


@check("one_hot", needs_task=True)
def check_one_hot(ev: Evidence, *, labels: str = "train_y", inputs: str = "train_X") -> Verdict:
    """Training labels are one-hot rows [C0, C1] (as OneHotEncoder makes them) matching the data."""
    y = np.asarray(ev.array(labels), dtype=np.float64)
    m = y.shape[0] if y.ndim else 0
    if y.ndim != 2 or y.shape[1] != 2:
        return Verdict(
            0.0,
            f"{show(labels)} has shape {_fmt_shape(y.shape)}; expected one-hot labels of shape "
            f"(m, n_output) = ({m}, 2): use OneHotEncoder as in the lecture",
            expected=f"({m}, 2)",
            got=_fmt_shape(y.shape),
        )
    if not is_one_hot(y):
        return Verdict(0.0, f"{show(labels)} rows are not one-hot (each row needs a single 1)")
    agree = label_agreement(ev.task, y, np.asarray(ev.array(inputs), dtype=np.float64))
    if agree < 0.99:
        return Verdict(
            0.0,
            f"{show(labels)} does not match the classes of {show(inputs)} ({agree:.1%} agree); "
            f"column 1 must be C1 (g >= 0), as OneHotEncoder orders labels 0 and 1",
        )
    return Verdict(1.0, f"{show(labels)} is one-hot, {m} rows, matching the data")
