"""Checks: plain functions, named after what they verify, run in the trusted process.

A check reads the validated artifacts of a sandboxed run (`Evidence`) and the assignment's
trusted task (data generator, reference model function) and returns a `Verdict`. It never
imports student code. Registration only tags the function (`@check("shapes")`); the spec
loader validates each check's parameters against its keyword-only signature.

Failure messages say what, where, expected and got, in the student's terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REGISTRY: dict[str, Callable[..., Verdict]] = {}


def check(name: str, *, needs_task: bool = False):
    """Register a check function under `name` (the spec's `check = "..."`)."""

    def tag(fn):
        fn.check_name = name
        fn.needs_task = needs_task
        REGISTRY[name] = fn
        return fn

    return tag


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

    @property
    def task(self):
        return self.assignment.task

    def array(self, name: str) -> np.ndarray:
        """An artifact by name; `a|b` names alternatives (the notes call one layer `hidden` in
        one lecture and `hidden1` in another): the first one present is taken."""
        for alt in name.split("|"):
            if alt in self.arrays:
                return self.arrays[alt]
        name = name.split("|")[0]
        reason = self.facts.get("missing", {}).get(name) or self.facts.get("missing", {}).get(
            name.split(".")[0].split(":")[-1]
        )
        raise Missing(
            f"{show(name)} was not produced by your code" + (f": {reason}" if reason else "")
        )

    def params(self) -> dict[str, np.ndarray]:
        return {name: self.array(name) for name in self.task.weight_names()}


def show(name: str) -> str:
    """An artifact name in the student's terms: `weights.output` -> `weights['output']`."""
    name = name.split("|")[0]
    for prefix in ("fetch:", "call:", "var:"):
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


def _nonfinite(params: dict[str, np.ndarray]) -> list[str]:
    return [show(k) for k, v in params.items() if not np.all(np.isfinite(v))]


def _finite_params(ev: Evidence) -> dict[str, np.ndarray] | Verdict:
    """The student's weight arrays, or the verdict that training diverged."""
    params = ev.params()
    bad = _nonfinite(params)
    if bad:
        return Verdict(0.0, f"training diverged: {', '.join(bad)} contain NaN or infinity")
    return params


def _bound_for(ev: Evidence, table: dict[str, float], what: str) -> float | Verdict:
    """The spec's bound for the data set this run is graded on, or a skipped verdict when the
    data are absent or no bound is calibrated for them (never counted as passed)."""
    if ev.data is None:
        name = DATA_NAMES.get(ev.task.data, ev.task.data)
        return Verdict(
            0.0, f"{name} not available{WHERE_TO_PUT.get(ev.task.data, '')}", skipped=True
        )
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
    for rec in ev.assignment.collect.get("records", []):
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


# --- autoencoder -------------------------------------------------------------------------------


@check("reconstruction", needs_task=True)
def check_reconstruction(ev: Evidence, *, maximum: dict[str, float]) -> Verdict:
    """Mean squared reconstruction error of the grader's rebuild of the autoencoder, fed the
    student's weights, on held-out images of the assignment's digits, below a bound calibrated
    per data set."""
    bound = _bound_for(ev, maximum, "reconstruction bound")
    if isinstance(bound, Verdict):
        return bound
    params = _finite_params(ev)
    if isinstance(params, Verdict):
        return params
    images, _ = ev.task.select(ev.data.heldout_x, ev.data.heldout_y)
    x = ev.task.features(images)
    try:
        err = float(np.mean((ev.task.forward(params, x) - x) ** 2))
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    digits = "/".join(map(str, ev.task.digits)) or "all"
    text = f"mean squared reconstruction error {err:.4f} on {len(x)} held-out images of digits {digits}"
    return _against(text, err, bound, least=False, fmt="g", got=f"{err:.4f}")


@check("latent_separation", needs_task=True)
def check_latent_separation(
    ev: Evidence, *, minimum: dict[str, float], latent_layers: int = 3, neighbours: int = 5
) -> Verdict:
    """The digits are separable in the latent space: k-nearest-neighbour accuracy (5-fold
    cross-validated) on the latent codes of held-out images, computed by the grader's rebuild
    of the encoder fed the student's weights."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    want = _bound_for(ev, minimum, "separation bound")
    if isinstance(want, Verdict):
        return want
    params = _finite_params(ev)
    if isinstance(params, Verdict):
        return params
    images, labels = ev.task.select(ev.data.heldout_x, ev.data.heldout_y)
    try:
        z = ev.task.forward(params, ev.task.features(images), 0, latent_layers)
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    acc = float(
        np.mean(cross_val_score(KNeighborsClassifier(n_neighbors=neighbours), z, labels, cv=5))
    )
    digits = "/".join(map(str, ev.task.digits))
    text = (
        f"a {neighbours}-nearest-neighbour classifier tells digits {digits} apart from their "
        f"{z.shape[1]}-D latent codes with {acc:.1%} accuracy ({len(z)} held-out images, 5-fold)"
    )
    return _against(text, acc, want, least=True, fmt=".1%")


# --- checkpoint_restore ---------------------------------------------------------------------------


@check("checkpoint_restore", needs_task=True)
def check_checkpoint_restore(
    ev: Evidence, *, names: list[str], prefix: str = "train:", atol: float = 1e-6
) -> Verdict:
    """The test file restored exactly what the training file trained and saved (the two ran
    in separate namespaces and graphs): same variables, hence the same held-out accuracy."""
    stages = [s["file"] for s in ev.assignment.stages] or ["training", "test"]
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


# --- records -----------------------------------------------------------------------------------


@check("records")
def check_records(ev: Evidence, *, names: list[str], min_length: int = 2) -> Verdict:
    """The loss records the notes keep (for the student's own plots) exist, have the same
    number of finite entries, at least `min_length`. Feedback on completeness only: the
    grader never takes a learning result from them."""
    problems, lengths = [], []
    for name in names:
        try:
            rec = np.asarray(ev.array(name), dtype=np.float64).ravel()
        except Missing as exc:
            problems.append(str(exc))
            continue
        lengths.append(len(rec))
        if len(rec) < min_length:
            problems.append(f"{show(name)} has {len(rec)} entries; expected at least {min_length}")
        elif not np.all(np.isfinite(rec)):
            problems.append(f"{show(name)} contains NaN or infinity")
    if not problems and len(set(lengths)) > 1:
        problems.append(
            ", ".join(f"{show(n)} has {k}" for n, k in zip(names, lengths, strict=True))
            + " entries; record them at the same iterations"
        )
    if problems:
        return Verdict(0.0, "\n".join(problems))
    return Verdict(1.0, f"{' and '.join(show(n) for n in names)}: {lengths[0]} entries each")


DATA_NAMES = {"cifar10": "CIFAR-10", "mnist": "MNIST"}
WHERE_TO_PUT = {
    "cifar10": " (give its folder in $GRADER_CIFAR10, or put it in the Keras cache)",
    "mnist": " (pass --mnist PATH, or set $GRADER_MNIST)",
}

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
        from ._checks_keras import student_model
        from ._keras_model import ModelRefused

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
        err = ev.facts.get("call_errors", {}).get(of.removeprefix("call:"))
        if err:
            problems.append(f"{label} failed: {err}")
            continue
        try:
            got = np.asarray(ev.array(of), dtype=np.float64)
        except Missing as exc:
            problems.append(str(exc) if label == show(of) else f"{label}: {exc}")
            continue
        except (TypeError, ValueError):
            problems.append(f"{label} is not a number")
            continue
        if got.size != expected.size:
            problems.append(
                f"{label} gave {got.size} value(s) {_fmt_num(got)}; expected {expected.size}: "
                f"{_fmt_num(expected)}"
            )
        elif not np.allclose(got.reshape(expected.shape), expected, atol=atol, rtol=0):
            problems.append(
                f"{label} is {_fmt_num(got)}; expected {_fmt_num(expected)} (within {atol:g})"
            )
    if problems:
        return Verdict((len(cases) - len(problems)) / len(cases), "\n".join(problems))
    return Verdict(1.0, f"all {len(cases)} values are right")


# --- call_count --------------------------------------------------------------------------------


@check("call_count")
def check_call_count(ev: Evidence, *, function: str, per_n: float = 3.0) -> Verdict:
    """A memoized function makes a number of calls linear in n (counted in the sandbox)."""
    runs = ev.facts.get("call_counts", {}).get(function)
    if not runs:
        reason = ev.facts.get("missing", {}).get(function, "not defined")
        return Verdict(0.0, f"`{function}` could not be called: {reason}")
    problems = []
    for run in runs:
        n, calls = run["n"], run["calls"]
        limit = per_n * n + 2
        if run.get("error"):
            problems.append(f"`{function}({n})` raised {run['error']}")
        elif run.get("capped"):
            problems.append(
                f"`{function}({n})` made more than {calls} calls (stopped there); a memoized "
                f"version makes about 2n = {2 * n}. Store each result in `memo` and return it "
                f"when it is already there"
            )
        elif calls > limit:
            problems.append(
                f"`{function}({n})` made {calls} calls; expected at most {limit:g} "
                f"(linear in n), as memoization gives"
            )
    counts = ", ".join(f"{function}({r['n']}): {r['calls']} calls" for r in runs)
    if problems:
        return Verdict(0.0, "\n".join(problems), expected=f"<= {per_n:g}n + 2 calls", got=counts)
    return Verdict(1.0, f"calls grow linearly with n ({counts})")


# The Keras checks register themselves in the same registry.
from . import _checks_keras  # noqa: E402,F401
