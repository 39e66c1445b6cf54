"""Checks of what training achieved, on the student's own network (their graph with their
trained weights, evaluated by the grader on data the sandbox never saw): the loss fell from
their own initialization, the decision boundary, held-out accuracy, learned parameters, a
checkpoint restored, one-hot labels. A result the student's initial values already give
(weights written in rather than learned) counts as not learned.
"""

from __future__ import annotations

import numpy as np

from grader.checks.base import Evidence, Missing, Verdict, _against, _bound_for, _fmt_shape, show
from grader.checks.graph import _at, _name_of, _network
from grader.checks.measures import (
    INIT_SEED,
    RecordFigures,
    RestorePair,
    heldout_accuracy,
    is_one_hot,
    label_agreement,
    restore_pairs,
    training_record,
)
from grader.checks.measures.student import (
    StudentNetwork,
    TrainingLoss,
    at_initialization,
    network_accuracy,
    network_boundary,
    training_loss,
)
from grader.course.data import FAMILIES
from grader.model.keras import ModelRefused
from grader.model.tfgraph import GraphError
from grader.registry import check

# --- loss_decrease -----------------------------------------------------------------------------


def _record_story(rec: RecordFigures | None) -> str:
    """The student's own record in a few words (feedback only: never scored)."""
    if rec is None:
        return ""
    return f" (your `{rec.name}` went from {rec.first:.4g} to {rec.last:.4g})"


def _swapped_hint(
    net: StudentNetwork, loss: str, x: str, y: str, feeds, values, ratio: float, max_ratio: float
) -> str:
    """Did the training loop feed the labels to `x` and the inputs to `y`? Then the loss on
    swapped data fell where the loss on the right data did not."""
    xs, ys = feeds.get(x), feeds.get(y)
    if xs is None or ys is None or xs.shape != ys.shape:
        return ""
    try:
        before = float(net.run(loss, {x: ys, y: xs}, values=values).reshape(-1)[0])
        after = float(net.run(loss, {x: ys, y: xs}).reshape(-1)[0])
    except (GraphError, ValueError):
        return ""
    # Only for a network that learned nothing on the right data (a doubled softmax or a
    # missing bias also leaves the loss high, and a loss fed inputs as labels can fall anyway).
    if before > 0 and after / before <= max_ratio and ratio >= 0.9:
        return (
            f" Your network learned to predict `{x}` from `{y}`: the training loop feeds `{y}`'s "
            f"data to `{x}` and `{x}`'s to `{y}` (check the feed_dict)."
        )
    return ""


def _flipped(y: np.ndarray) -> np.ndarray:
    """Labels with the two classes the other way round (one-hot columns reversed, or 1 - y)."""
    if y.ndim == 2 and y.shape[1] == 2:
        return y[:, ::-1].copy()
    return 1.0 - y


def _classes_reversed(
    net: StudentNetwork, loss: str, y: str, feeds, values, max_ratio: float
) -> bool:
    """Did the network learn the two classes the other way round (labels built with C1 in
    column 0)? Then its loss on the grader's labels, classes flipped, fell as training should."""
    ys = feeds.get(y)
    if ys is None or not np.all((ys == 0) | (ys == 1)):
        return False
    flipped = dict(feeds, **{y: _flipped(ys)})
    try:
        before = float(net.run(loss, flipped, values=values).reshape(-1)[0])
        after = float(net.run(loss, flipped).reshape(-1)[0])
    except (GraphError, ValueError):
        return False
    return bool(before > 0 and after / before <= max_ratio)


def _why_not_enough(net: StudentNetwork, f: TrainingLoss) -> str:
    """Why a loss that did not fall enough did not: never trained, or too little."""
    if f.unchanged:
        step = net.line("optm")
        at = f" (defined at {step})" if step else ""
        return (
            f" Your network was never trained, or learned nothing: its loss is what its "
            f"initialization gives. Did the training loop run `optm`{at}, on labels that "
            f"match the inputs, with a learning rate (LR) large enough to move the weights?"
        )
    if f.fell:
        return (
            " The loss fell, but not enough: if your network as built cannot fit the data, the "
            "wiring check says why; otherwise train longer or with a larger learning rate (LR)."
        )
    return ""


def _reversed_verdict(figures: str, expected: str, ratio: float) -> Verdict:
    return Verdict(
        1.0,
        f"the loss fell, for the two classes the other way round: {figures} on the grader's "
        f"labels, and it falls as training should with the classes flipped (your labels have "
        f"C1 in column 0: see the labels and the decision boundary)",
        expected=expected,
        got=f"{ratio:.3g}",
    )


def _record_hint(ev: Evidence, start: float) -> str:
    """What the student's own loss record suggests (feedback only, never scored)."""
    rec = training_record(ev)
    if rec is not None and np.isfinite(start) and rec.peak > 10 * max(start, 1e-12):
        return (
            f" Your own `{rec.name}` rose to {rec.peak:.4g} on the way: the learning rate (LR) "
            f"is probably too high."
        )
    return ""


def _before_training(net: StudentNetwork, loss: str, record: str) -> Verdict | None:
    """The verdict when no training can be seen at all: no trained values, or NaN in them."""
    variables = [v.name for v in net.graph.variables()]
    if variables and len(net.untrained) == len(variables):
        return Verdict(
            0.0,
            "your network was never trained: none of its variables has a trained value "
            "(did the code run `optm` in a tf.Session?)" + record,
        )
    bad = [_name_of(net, k) for k, v in net.graph.values.items() if not np.all(np.isfinite(v))]
    if bad:
        return Verdict(
            0.0,
            f"training diverged: {', '.join(bad)} contain NaN or infinity; try a smaller "
            f"learning rate (LR){record}",
            got="NaN",
        )
    return None


def _constant_loss(loss: str, f: TrainingLoss) -> Verdict | None:
    """A loss that is the same at every weight cannot have guided training."""
    same = abs(f.start - f.final) <= 1e-9 * max(1.0, abs(f.start))
    if not (same and abs(f.template - f.final) <= 1e-9 * max(1.0, abs(f.final))):
        return None
    why = (
        "it cannot guide training (see the shapes: softmax cross entropy over a single output "
        "column is always 0)"
        if abs(f.final) < 1e-9
        else "it does not depend on them"
    )
    return Verdict(
        0.0, f"your `{loss}` is {f.final:.4g} whatever the weights: {why}", got=f"{f.final:.4g}"
    )


@check("loss_decrease", needs_task=True)
def check_loss_decrease(
    ev: Evidence,
    *,
    max_ratio: float = 0.5,
    n: int = 2000,
    loss: str = "loss",
    x: str = "x",
    y: str = "y",
) -> Verdict:
    """Training lowered the loss: the student's own `loss`, evaluated by the grader on data it
    draws itself, is at most `max_ratio` of its value at the student's own initialization (the
    initializers in their graph, drawn again by the grader). A loss that grows is called
    divergence; the student's `loss_record` is shown for feedback only."""
    net = _network(ev, loss)
    if isinstance(net, Verdict):
        return net
    record = _record_story(training_record(ev))
    if (early := _before_training(net, loss, record)) is not None:
        return early
    try:
        f, feeds = training_loss(ev, net, n, loss, x, y)
    except (GraphError, ValueError) as exc:
        return Verdict(0.0, f"your `{loss}` cannot be evaluated on fresh data: {exc}")
    drawn = "held-out images" if ev.data is not None else "fresh points"
    at = f" ({net.line(loss)})" if net.line(loss) else ""
    figures = (
        f"on {n} {drawn}, your `{loss}`{at} is {f.start:.4g} at your initialization and "
        f"{f.final:.4g} after training"
    )
    if not np.isfinite(f.final):
        return Verdict(
            0.0,
            f"training diverged: {figures}; try a smaller learning rate (LR){record}",
            got=f"{f.final:.4g}",
        )
    if (constant := _constant_loss(loss, f)) is not None:
        return constant
    expected = f"loss after training <= {max_ratio:g} x loss at initialization"
    if f.start > 0 and f.ratio <= max_ratio:
        also = (
            f"; at the template's initialization it is {f.template:.4g}"
            if abs(f.template - f.start) > 0.05 * abs(f.start)
            else ""
        )
        return Verdict(
            1.0, f"the loss fell: {figures}{also}{record}", expected=expected, got=f"{f.ratio:.3g}"
        )
    initial = at_initialization(ev, net)
    if _classes_reversed(net, loss, y, feeds, initial, max_ratio):
        return _reversed_verdict(figures + record, expected, f.ratio)
    hint = _swapped_hint(net, loss, x, y, feeds, initial, f.ratio, max_ratio)
    if f.grew and not hint:
        return Verdict(
            0.0,
            f"the loss grew: {figures}. Training diverged: try a smaller learning rate (LR)."
            f"{_record_hint(ev, f.start)}{record}",
            expected=expected,
            got=f"{f.ratio:.3g}",
        )
    hint = hint or _record_hint(ev, f.start) or _why_not_enough(net, f)
    return Verdict(
        0.0,
        f"the loss did not fall enough: {figures}; expected at most {max_ratio:g} x "
        f"{f.start:.4g} = {max_ratio * f.start:.4g}.{hint}{record}",
        expected=expected,
        got=f"{f.ratio:.3g}",
    )


# --- decision_boundary -------------------------------------------------------------------------


@check("decision_boundary", needs_task=True)
def check_decision_boundary(
    ev: Evidence,
    *,
    minimum: float,
    grid: int = 200,
    heldout: int = 2000,
    pred: str = "pred",
    x: str = "x",
) -> Verdict:
    """The student's own network (their graph with their trained weights, evaluated by the
    grader) agrees with the true boundary of the lecture's data generator, on a dense grid over
    the lecture's domain and on held-out points drawn with a grader seed."""
    net = _network(ev, pred, x, finite=True)
    if isinstance(net, Verdict):
        return net
    gen = ev.task.generator
    try:
        agree = network_boundary(ev, net, grid, heldout, pred, x)
    except (GraphError, ValueError) as exc:
        return Verdict(0.0, f"your network cannot be evaluated on the grader's points: {exc}")
    on_grid, on_held = agree.on_grid, agree.on_held
    domain = ", ".join(
        f"x{i + 1} in [{lo:g}, {hi:g}]"
        for i, (lo, hi) in enumerate(zip(gen.low, gen.high, strict=True))
    )
    text = (
        f"your network agrees with the true boundary {gen.formula} on {on_grid:.1%} of a "
        f"{grid}x{grid} grid over {domain} and on {on_held:.1%} of {heldout} held-out points"
    )
    reversed_ = max(on_grid, on_held) <= 1 - minimum
    hint = (
        "; it predicts the two classes the other way round: C1 must be column 1 of the one-hot "
        "labels (as OneHotEncoder orders 0 and 1), or label 1"
        if reversed_
        else ""
    )
    verdict = _against(
        text,
        min(on_grid, on_held),
        minimum,
        least=True,
        fmt=".1%",
        hint=hint + _built_at(net, pred),
    )
    if verdict.passed:
        start = network_boundary(ev, net, grid, heldout, pred, x, at_initialization(ev, net))
        if start.lowest >= minimum and start.lowest >= min(on_grid, on_held) - 0.01:
            return _not_learned(text, f"{start.lowest:.1%}")
    return verdict


def _built_at(net: StudentNetwork, pred: str) -> str:
    """Where the network judged is built, for a failure's message."""
    line = net.line(pred)
    return f" (your network's output `{pred}` is built at {line})" if line else ""


def _not_learned(text: str, figure: str) -> Verdict:
    """A result the student's own initialization already gives (and training did not improve
    on): nothing was learned, the answer was written into the initial values. Counts as a
    network that was never trained."""
    return Verdict(
        0.0,
        f"{text}; but your network gives {figure} already at its initial values (your "
        f"initializers): the result must come from training, not be written in",
    )


# --- parameters --------------------------------------------------------------------------------


def learned_values(
    ev: Evidence, net: StudentNetwork, names: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """(trained value, value at the student's own initialization) of each named variable of
    the student's graph, flattened. Raises Missing if one is absent or never trained."""
    initial = net.initial_values(ev.assignment.grading_seed + INIT_SEED)
    out = {}
    for name in names:
        if name not in net.tensors:
            raise Missing(f"{show(name)} is not a variable of your network")
        node = net.tensors[name][0]
        if node not in net.graph.values:
            raise Missing(f"{show(name)} has no trained value: was the network trained?")
        start = initial.get(node)
        out[name] = (
            np.asarray(net.graph.values[node], dtype=np.float64).ravel(),
            None if start is None else np.asarray(start, dtype=np.float64).ravel(),
        )
    return out


@check("parameters")
def check_parameters(ev: Evidence, *, expect: dict[str, float], atol: float = 0.2) -> Verdict:
    """Learned parameters (the variables of the student's graph after training) are close to
    the values the data were generated with, and were learned: a variable whose own
    initializer already gives the answer learned nothing."""
    net = _network(ev)
    if isinstance(net, Verdict):
        return net
    try:
        found = learned_values(ev, net, list(expect))
    except Missing as exc:
        return Verdict(0.0, str(exc))
    problems = []
    good = []
    for name, (arr, start) in found.items():
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
        elif start is not None and start.size == 1 and abs(float(start[0]) - value) <= atol:
            problems.append(
                f"{_at(net.line(name))}{show(name)} starts at {float(start[0]):.4g}, the answer "
                f"itself: it must be learned from the data, not written in"
            )
        else:
            good.append(f"{show(name)} = {got:.4g}")
    if problems:
        return Verdict((len(expect) - len(problems)) / len(expect), "\n".join(problems))
    return Verdict(1.0, ", ".join(good) + " (close to the values used to generate the data)")


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
    ev: Evidence,
    *,
    names: list[str],
    prefix: str = "train:",
    atol: float = 1e-6,
    min_accuracy: float = 0.5,
    pred: str = "pred",
    x: str = "x",
) -> Verdict:
    """The test file restored exactly what the training file trained and saved (the two ran
    in separate namespaces and graphs), and what it restored is a trained network: the
    student's test graph with the restored weights reaches `min_accuracy` on the held-out
    images (a restore of untrained weights proves nothing)."""
    stages = [s.file for s in ev.assignment.stages] or ["training", "test"]
    trained_in, tested_in = stages[0], stages[-1]
    net = _network(ev)
    if isinstance(net, Verdict):
        return net
    pairs = []
    for pair in restore_pairs(ev, names, prefix):
        node = net.tensors.get(pair.name, ("", 0))[0]
        restored = net.graph.values.get(node)
        pairs.append(
            RestorePair(
                pair.name,
                pair.trained,
                None if restored is None else np.asarray(restored, dtype=np.float64),
            )
        )
    problems = [p for p in (_restore_problem(q, trained_in, tested_in, atol) for q in pairs) if p]
    if problems:
        return Verdict(0.0, "\n".join(problems))
    text = f"{tested_in} restored exactly what {trained_in} trained ({', '.join(show(n) for n in names)})"
    if ev.data is None:
        family = FAMILIES[ev.task.data]
        return Verdict(
            0.0,
            text + f"; whether it was trained cannot be told: {family.label} "
            f"not available{family.where_to_put}",
            skipped=True,
        )
    try:
        acc = network_accuracy(ev, net, pred, x)
    except (GraphError, ValueError) as exc:
        return Verdict(0.0, f"{text}, but the restored network cannot be evaluated: {exc}")
    text += f": held-out accuracy {acc.accuracy:.1%} with the restored weights"
    return _against(
        text,
        acc.accuracy,
        min_accuracy,
        least=True,
        fmt=".0%",
        hint=" (what was saved and restored was not a trained network)",
    )


# --- accuracy ----------------------------------------------------------------------------------


@check("accuracy", needs_task=True)
def check_accuracy(
    ev: Evidence, *, minimum: dict[str, float], pred: str = "pred", x: str = "x"
) -> Verdict:
    """Accuracy on the held-out test set the sandbox never saw: of the student's own network
    (their graph with their trained weights, evaluated by the grader; or their Keras model,
    rebuilt from its JSON). `minimum` is per data set (`mnist`, `mnist-embedded`, ...),
    calibrated against the reference on the same data."""
    want = _bound_for(ev, minimum, "accuracy threshold")
    if isinstance(want, Verdict):
        return want
    keras = ev.task.model == "keras"
    net: StudentNetwork | Verdict | None = None
    try:
        if keras:
            acc = heldout_accuracy(ev)
        else:
            net = _network(ev, pred, x, finite=True)
            if isinstance(net, Verdict):
                return net
            acc = network_accuracy(ev, net, pred, x)
            if acc.accuracy >= want:
                start = network_accuracy(ev, net, pred, x, at_initialization(ev, net))
                if start.accuracy >= want and start.accuracy >= acc.accuracy - 0.01:
                    text = f"accuracy {acc.accuracy:.1%} on {acc.images} held-out images"
                    return _not_learned(text, f"{start.accuracy:.1%}")
    except ModelRefused as exc:
        return Verdict(0.0, f"your model cannot be graded: {exc}")
    except (GraphError, ValueError) as exc:
        if keras:
            return Verdict(
                0.0, f"your model does not take the images as the notes prepare them: {exc}"
            )
        return Verdict(0.0, f"your network cannot be evaluated on the held-out images: {exc}")
    text = f"accuracy {acc.accuracy:.1%} on {acc.images} held-out images of {ev.data.dataset.name}"
    hint = ""
    if acc.top_count > 0.5 * acc.images:
        share = acc.top_count / acc.images
        hint = f"; it predicts {acc.top_class} for {share:.0%} of the images"
    if isinstance(net, StudentNetwork):
        hint += _built_at(net, pred)
    return _against(text, acc.accuracy, want, least=True, fmt=".1%", hint=hint)


# --- one_hot -----------------------------------------------------------------------------------


@check("one_hot", needs_task=True, structural=True)
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
