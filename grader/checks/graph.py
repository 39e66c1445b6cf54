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
from grader.registry import check

# --- shapes ------------------------------------------------------------------------------------


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
    dims = dict(dims or {})
    bound: dict[str, int] = {}
    problems: list[str] = []
    total = 0

    def want(spec: list) -> tuple[list, str]:
        names = ", ".join(str(s) for s in spec)
        return spec, f"({names})"

    def compare(label: str, got: tuple, spec: list) -> None:
        nonlocal total
        total += 1
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
            rule = dims.get(sym)
            if isinstance(rule, int):
                expected_vals.append(str(rule))
                ok = ok and g == rule
            elif sym in bound:
                expected_vals.append(str(bound[sym]))
                ok = ok and g == bound[sym]
            elif isinstance(rule, list) and len(rule) == 2:
                lo, hi = rule
                if isinstance(g, int) and lo <= g <= hi:
                    bound[sym] = g
                    expected_vals.append(str(g))
                else:
                    expected_vals.append(f"{lo}..{hi}")
                    ok = False
            else:
                expected_vals.append(sym)
        if not ok:
            _, names = want(spec)
            problems.append(
                f"{label} has shape {_fmt_shape(got)}; expected {names} = "
                f"({', '.join(expected_vals)}{',' if len(expected_vals) == 1 else ''})"
            )

    for name, spec in (placeholders or {}).items():
        info = ev.facts.get("placeholders", {}).get(name)
        if info is None:
            total += 1
            reason = ev.facts.get("missing", {}).get(name, "not defined")
            problems.append(f"placeholder `{name}` not found ({reason})")
            continue
        if info.get("kind") != "placeholder":
            total += 1
            problems.append(f"`{name}` is a {info.get('kind')}, not a tf.placeholder")
            continue
        shape = info.get("shape")
        if shape is None:
            total += 1
            problems.append(
                f"placeholder `{name}` has no fixed rank; give it a shape like [None, ...]"
            )
            continue
        compare(f"placeholder `{name}`", tuple(shape), spec)

    declared = ev.facts.get("declared_shapes", {})
    for name, spec in (arrays or {}).items():
        alternatives = name.split("|")
        trained = [a for a in alternatives if a in ev.arrays]
        defined = [a for a in alternatives if isinstance(declared.get(a), list)]
        if trained:
            compare(show(trained[0]), tuple(ev.arrays[trained[0]].shape), spec)
        elif defined:  # defined, though never trained: its shape still counts
            compare(show(defined[0]), tuple(declared[defined[0]]), spec)
        else:
            total += 1
            try:
                ev.array(name)
            except Missing as exc:
                problems.append(str(exc))

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
        return np.asarray(ev.array(f"fetch:{fetch}"), dtype=np.float64)
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
    for layer in task.layers[slice(*(layers or [None]))]:
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
    x = ev.inputs[input]
    try:
        want = ev.task.forward(params, x, *(layers or []))
    except ValueError as exc:
        shapes = ", ".join(f"{show(k)} {_fmt_shape(v.shape)}" for k, v in params.items())
        return Verdict(0.0, f"your weights do not fit the lecture's network ({shapes}): {exc}")
    if got.shape != want.shape:
        return Verdict(
            0.0,
            f"`{fetch}` on {len(x)} probe inputs has shape {_fmt_shape(got.shape)}; "
            f"the lecture's network gives {_fmt_shape(want.shape)}",
            expected=_fmt_shape(want.shape),
            got=_fmt_shape(got.shape),
        )
    if not np.all(np.isfinite(got)):
        return Verdict(
            0.0, f"`{fetch}` contains NaN or infinity on probe inputs: training diverged"
        )
    diff = float(np.max(np.abs(got - want)))
    if np.allclose(got, want, atol=atol, rtol=rtol):
        return Verdict(1.0, f"`{fetch}` matches the lecture's network on {len(x)} probe inputs")
    return Verdict(
        0.0,
        f"`{fetch}` differs from the lecture's network ({describe_model(ev.task, layers)}) fed your "
        f"own weights, by up to {diff:.3g} on {len(x)} probe inputs; check the layer order, "
        f"activations and biases",
        expected=f"max difference <= {atol:g}",
        got=f"{diff:.3g}",
    )


# --- loss_function -----------------------------------------------------------------------------

LOSS_NAMES = {
    "sigmoid_ce": "tf.nn.sigmoid_cross_entropy_with_logits (mean)",
    "softmax_ce": "tf.nn.softmax_cross_entropy_with_logits (mean), for one-hot labels",
    "mse": "the mean squared error tf.reduce_mean(tf.square(y - pred))",
}


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
    got = got.ravel()
    outputs = np.asarray(ev.array(f"fetch:{pred}"), dtype=np.float64)
    y = ev.inputs[labels]
    chunks = max(len(got), 1)
    want = np.array(
        [
            ev.task.loss_value(o, t)
            for o, t in zip(np.array_split(outputs, chunks), np.array_split(y, chunks), strict=True)
        ]
    )
    name = LOSS_NAMES[ev.task.loss]
    if not np.all(np.isfinite(got)):
        return Verdict(0.0, f"`{fetch}` is NaN or infinite on probe inputs: training diverged")
    if got.shape != want.shape:
        return Verdict(0.0, f"`{fetch}` should be one number (reduce_mean); got shape {got.shape}")
    if np.allclose(got, want, atol=atol, rtol=1e-3):
        return Verdict(1.0, f"`{fetch}` is {name}")
    return Verdict(
        0.0,
        f"`{fetch}` on probe inputs is {_fmt_num(got if chunks > 1 else got[0])}; {name} of your "
        f"`{pred}` against `y` is {_fmt_num(want if chunks > 1 else want[0])}. "
        f"This assignment needs {name}.",
        expected=_fmt_num(want),
        got=_fmt_num(got),
    )


# --- loss_decrease -----------------------------------------------------------------------------


@check("loss_decrease", needs_task=True)
def check_loss_decrease(ev: Evidence, *, max_ratio: float = 0.5, n: int = 2000) -> Verdict:
    """Training lowered the loss: the grader recomputes the loss of the final weights and of the
    template's initialization on data it generates itself (the student's `loss_record` is shown
    for feedback only)."""
    params = ev.params()
    bad = _nonfinite(params)
    if bad:
        return Verdict(
            0.0,
            f"training diverged: {', '.join(bad)} contain NaN or infinity; "
            f"try a smaller learning rate (LR)",
            got="NaN",
        )
    if ev.data is not None:  # an image assignment: the held-out images the sandbox never saw
        images, labels = ev.task.select(ev.data.heldout_x, ev.data.heldout_y)
        x = ev.task.features(images[:n])
        y = ev.task.image_targets(images[:n], labels[:n])
    else:
        _, x, y = ev.task.dataset(n, ev.assignment.grading_seed + 1)
    rng = np.random.default_rng(ev.assignment.grading_seed + 2)
    init = {
        k: rng.normal(0.0, ev.task.init_stddev, size=v.shape).astype(np.float64)
        for k, v in params.items()
    }
    try:
        final = ev.task.loss_value(ev.task.forward(params, x), y)
        start = ev.task.loss_value(ev.task.forward(init, x), y)
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    record, own_fell, blew_up = "", False, False
    for rec in ev.assignment.collect.records:
        if rec in ev.arrays and ev.arrays[rec].size >= 2:
            r = ev.arrays[rec].ravel().astype(float)
            record = f" (your `{rec}` went from {r[0]:.4g} to {r[-1]:.4g})"
            own_fell = bool(np.isfinite(r[-1]) and r[-1] <= max_ratio * min(r[0], start))
            own_peak = float(np.nanmax(r)) if np.isfinite(np.nanmax(r)) else np.inf
            if own_peak > 2 * start:
                record = f" (your `{rec}` rose to {own_peak:.4g} on the way)"
                blew_up = True
            break  # the first record (the training loss) tells the story
    if not np.isfinite(final) or final > 1e6 * max(start, 1e-12):
        return Verdict(
            0.0, f"training diverged: the loss is {final:.4g}{record}", got=f"{final:.4g}"
        )
    ratio = final / start if start > 0 else 0.0
    drawn = "held-out images" if ev.data is not None else "fresh points"
    expected = (
        f"loss after training <= {max_ratio:g} x loss at initialization = {max_ratio * start:.4g}"
    )
    if ratio <= max_ratio:
        return Verdict(
            1.0,
            f"the loss fell from {start:.4g} at initialization to {final:.4g} after training{record}",
        )
    if blew_up:
        hint = " The training loss jumped up: the learning rate (LR) is probably too high."
    elif own_fell:
        hint = (
            " Your own loss fell, so the network you trained is not the lecture's network on "
            "the lecture's labels: see the wiring and label checks."
        )
    elif ratio > 0.9:
        hint = " Did the training loop run `optm`?"
    else:
        hint = ""
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
    for name, value in expect.items():
        arr = np.asarray(ev.array(name), dtype=np.float64).ravel()
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
    params = ev.params()
    bad = _nonfinite(params)
    if bad:
        return Verdict(0.0, f"training diverged: {', '.join(bad)} contain NaN or infinity")
    gen = ev.task.generator
    points = gen.grid(grid)
    held, _, _ = ev.task.dataset(heldout, ev.assignment.grading_seed + 3)
    try:
        on_grid = float(
            np.mean(ev.task.predict_class(params, ev.task.features(points)) == gen.classes(points))
        )
        on_held = float(
            np.mean(ev.task.predict_class(params, ev.task.features(held)) == gen.classes(held))
        )
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    domain = ", ".join(
        f"x{i + 1} in [{lo:g}, {hi:g}]"
        for i, (lo, hi) in enumerate(zip(gen.low, gen.high, strict=True))
    )
    text = (
        f"your classifier agrees with the true boundary {gen.formula} on {on_grid:.1%} of a "
        f"{grid}x{grid} grid over {domain} and on {on_held:.1%} of {heldout} held-out points"
    )
    return _against(text, min(on_grid, on_held), minimum, least=True, fmt=".1%")


# --- checkpoint_restore ---------------------------------------------------------------------------


@check("checkpoint_restore", needs_task=True)
def check_checkpoint_restore(
    ev: Evidence, *, names: list[str], prefix: str = "train:", atol: float = 1e-6
) -> Verdict:
    """The test file restored exactly what the training file trained and saved (the two ran
    in separate namespaces and graphs): same variables, hence the same held-out accuracy."""
    stages = [s.file for s in ev.assignment.stages] or ["training", "test"]
    trained_in, tested_in = stages[0], stages[-1]
    problems = []
    trained, restored = {}, {}
    for name in names:
        try:
            trained[name] = np.asarray(ev.array(prefix + name), dtype=np.float64)
        except Missing:
            problems.append(f"{trained_in} left no trained {show(name)}: did it run a session?")
            continue
        try:
            restored[name] = np.asarray(ev.array(name), dtype=np.float64)
        except Missing:
            problems.append(
                f"{tested_in} has no value for {show(name)}: restore the checkpoint with "
                f"tf.train.Saver().restore(sess, path)"
            )
            continue
        if trained[name].shape != restored[name].shape:
            problems.append(
                f"{show(name)} is {_fmt_shape(trained[name].shape)} when trained, {_fmt_shape(restored[name].shape)} when restored"
            )
        elif not np.allclose(trained[name], restored[name], atol=atol, rtol=0, equal_nan=True):
            diff = float(np.max(np.abs(trained[name] - restored[name])))
            problems.append(
                f"{tested_in} used a {show(name)} that differs from the one {trained_in} trained, by "
                f"up to {diff:.3g}: was the checkpoint saved after training, and restored rather "
                f"than initialized again?"
            )
    if problems:
        return Verdict(0.0, "\n".join(problems))
    text = f"{tested_in} restored exactly what {trained_in} trained ({', '.join(show(n) for n in names)})"
    if ev.data is not None:
        x = ev.task.features(ev.data.heldout_x)
        acc = float(np.mean(ev.task.predict_class(restored, x) == ev.data.heldout_y))
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
    x = ev.task.features(ev.data.heldout_x)
    if ev.task.model == "keras":
        from grader.checks.keras import student_model
        from grader.model.keras import ModelRefused

        try:
            pred = np.argmax(student_model(ev).forward(x), axis=-1)
        except ModelRefused as exc:
            return Verdict(0.0, f"your model cannot be graded: {exc}")
        except ValueError as exc:
            return Verdict(
                0.0, f"your model does not take the images as the notes prepare them: {exc}"
            )
    else:
        params = _finite_params(ev)
        if isinstance(params, Verdict):
            return params
        try:
            pred = ev.task.predict_class(params, x)
        except ValueError as exc:
            return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    acc = float(np.mean(pred == ev.data.heldout_y))
    text = f"accuracy {acc:.1%} on {len(pred)} held-out images of {ev.data.dataset.name}"
    common = np.bincount(pred, minlength=ev.task.classes)
    hint = ""
    if common.max() > 0.5 * len(pred):
        share = common.max() / len(pred)
        hint = f"; it predicts {int(np.argmax(common))} for {share:.0%} of the images"
    return _against(text, acc, want, least=True, fmt=".1%", hint=hint)


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
    if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        return Verdict(0.0, f"{show(labels)} rows are not one-hot (each row needs a single 1)")
    x = np.asarray(ev.array(inputs), dtype=np.float64)
    points = x[:, -2:]
    agree = float(np.mean(np.argmax(y, axis=1) == ev.task.generator.classes(points)))
    if agree < 0.99:
        return Verdict(
            0.0,
            f"{show(labels)} does not match the classes of {show(inputs)} ({agree:.1%} agree); "
            f"column 1 must be C1 (g >= 0), as OneHotEncoder orders labels 0 and 1",
        )
    return Verdict(1.0, f"{show(labels)} is one-hot, {m} rows, matching the data")
