"""Measures of the network: what the grader's NumPy rebuild of the student's network computes.

Shapes found, the student's own outputs next to the lecture's network fed the student's
weights, losses, agreement with a true boundary, held-out accuracy, reconstruction error and
latent codes. Data the grader draws itself use the assignment's `grading_seed` plus a fixed
offset per use (`LOSS_DATA_SEED`, `INIT_SEED`, `HELDOUT_SEED`), so that the draws are
independent of each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks.base import Evidence, Missing
from grader.checks.measures.keras import student_model
from grader.course.data import Splits
from grader.course.tasks import Task
from grader.wire import fetch_key

LOSS_DATA_SEED = 1  # grading_seed + 1: the fresh points the losses are computed on
INIT_SEED = 2  # grading_seed + 2: the template's initialization, drawn again by the grader
HELDOUT_SEED = 3  # grading_seed + 3: the held-out points of a decision boundary


def max_difference(got: Any, want: Any, *, rtol: float = 0.0, equal_nan: bool = False) -> float:
    """max over the elements of |got - want| - rtol * |want|: the smallest `atol` for which
    `np.allclose(got, want, atol=atol, rtol=rtol, equal_nan=equal_nan)` holds (with `rtol=0`
    exactly, otherwise up to one rounding). Equal infinities count 0, as do two NaN with
    `equal_nan`; any other non-finite pair counts infinity. 0.0 for empty arrays."""
    g, w = np.broadcast_arrays(np.asarray(got, np.float64), np.asarray(want, np.float64))
    finite = np.isfinite(g) & np.isfinite(w)
    d = np.full(g.shape, np.inf)
    d[finite] = np.abs(g[finite] - w[finite]) - rtol * np.abs(w[finite])
    same = ~finite & (g == w)
    if equal_nan:
        same |= np.isnan(g) & np.isnan(w)
    d[same] = 0.0
    return float(d.max()) if d.size else 0.0


# --- shapes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceholderFound:
    """What the run shows of one placeholder the spec lists."""

    name: str
    defined: bool  # the student's code defined a variable of that name
    kind: str | None = None  # "placeholder", or what the variable is instead
    shape: tuple | None = None  # None: not defined, or no fixed rank
    reason: str = ""  # why it is not defined, as the run reported it


def placeholder_shapes(ev: Evidence, names: list[str]) -> list[PlaceholderFound]:
    """The kind and static shape (`None` for an open batch axis) of each named placeholder."""
    found = []
    for name in names:
        info = ev.facts.get("placeholders", {}).get(name)
        if info is None:
            reason = ev.facts.get("missing", {}).get(name, "not defined")
            found.append(PlaceholderFound(name, False, reason=reason))
            continue
        shape = info.get("shape")
        kind = info.get("kind")
        found.append(PlaceholderFound(name, True, kind, None if shape is None else tuple(shape)))
    return found


@dataclass(frozen=True)
class ArrayFound:
    """The shape of one weight array the spec lists (`a|b`: the first alternative present)."""

    name: str  # as the spec lists it
    found: str | None  # the alternative found, or None
    shape: tuple | None  # None when no alternative was found
    trained: bool  # False: declared in the graph but never given a trained value


def array_shapes(ev: Evidence, names: list[str]) -> list[ArrayFound]:
    """The shape of each named array: its trained value's, else its declared one."""
    declared = ev.facts.get("declared_shapes", {})
    found = []
    for name in names:
        alternatives = name.split("|")
        trained = [a for a in alternatives if a in ev.arrays]
        defined = [a for a in alternatives if isinstance(declared.get(a), list)]
        if trained:
            found.append(ArrayFound(name, trained[0], tuple(ev.arrays[trained[0]].shape), True))
        elif defined:  # defined, though never trained: its shape still counts
            found.append(ArrayFound(name, defined[0], tuple(declared[defined[0]]), False))
        else:
            found.append(ArrayFound(name, None, None, False))
    return found


# --- what the network computes -----------------------------------------------------------------


def fetched(ev: Evidence, name: str) -> np.ndarray:
    """What the student's tensor `name` gave on the probe inputs (Missing if it gave nothing)."""
    return np.asarray(ev.array(fetch_key(name)), dtype=np.float64)


@dataclass(frozen=True)
class Difference:
    """The student's own output next to the lecture's network fed the student's weights."""

    inputs: int  # probe inputs compared
    got_shape: tuple
    want_shape: tuple
    finite: bool  # the student's output holds no NaN or infinity
    max_abs: float  # max |got - want|; NaN when the shapes differ
    excess: float  # max(|got - want| - rtol |want|); within atol iff np.allclose(atol, rtol)


def wiring_difference(
    task: Task,
    params: dict[str, np.ndarray],
    x: np.ndarray,
    got: np.ndarray,
    layers: list[int] | None = None,
    *,
    rtol: float = 1e-3,
) -> Difference:
    """The lecture's network (or the slice `layers` = [start, stop]) on the probe inputs `x`,
    fed the student's weights, against what the student's own tensor gave (`got`).
    Raises ValueError if the weights do not fit the network."""
    want = task.forward(params, x, *(layers or []))
    got = np.asarray(got, dtype=np.float64)
    finite = bool(np.all(np.isfinite(got)))
    if got.shape != want.shape:
        return Difference(len(x), got.shape, want.shape, finite, math.nan, math.inf)
    max_abs = float(np.max(np.abs(got - want))) if got.size else 0.0
    return Difference(
        len(x), got.shape, want.shape, finite, max_abs, max_difference(got, want, rtol=rtol)
    )


@dataclass(frozen=True)
class LossFunctionFigures:
    """The student's loss on probe batches next to the lecture's loss of the student's output."""

    got: np.ndarray  # one value per batch the student's `loss` gave
    want: np.ndarray  # the lecture's loss of the student's `pred`, per batch
    excess: float  # max(|got - want| - rtol |want|); inf when the shapes differ

    @property
    def finite(self) -> bool:
        return bool(np.all(np.isfinite(self.got)))

    @property
    def same_shape(self) -> bool:
        return self.got.shape == self.want.shape


def loss_function_difference(
    task: Task, got: np.ndarray, outputs: np.ndarray, targets: np.ndarray, *, rtol: float = 1e-3
) -> LossFunctionFigures:
    """The lecture's loss of `outputs` against `targets`, in as many batches as the student's
    loss gave values (`got`), compared with those values."""
    got = np.asarray(got, dtype=np.float64).ravel()
    chunks = max(len(got), 1)
    want = np.array(
        [
            task.loss_value(o, t)
            for o, t in zip(
                np.array_split(outputs, chunks), np.array_split(targets, chunks), strict=True
            )
        ]
    )
    excess = max_difference(got, want, rtol=rtol) if got.shape == want.shape else math.inf
    return LossFunctionFigures(got, want, excess)


def predicted_classes(task: Task, params: dict[str, np.ndarray], points: np.ndarray) -> np.ndarray:
    """The class the network fed `params` predicts for each generator point."""
    return task.predict_class(params, task.features(points))


def heldout_points(task: Task, n: int, grading_seed: int) -> np.ndarray:
    """`n` points of the lecture's generator that the sandbox never saw."""
    points, _, _ = task.dataset(n, grading_seed + HELDOUT_SEED)
    return points


@dataclass(frozen=True)
class Agreement:
    """Share of points where the classifier agrees with the generator's true boundary."""

    on_grid: float
    on_held: float

    @property
    def lowest(self) -> float:
        return min(self.on_grid, self.on_held)


def boundary_agreement(
    task: Task, params: dict[str, np.ndarray], grid: int, heldout: int, grading_seed: int
) -> Agreement:
    """Agreement with the true boundary on a `grid` x `grid` grid over the lecture's domain and
    on `heldout` held-out points. Raises ValueError if the weights do not fit the network."""
    gen = task.generator
    assert gen is not None, "a decision boundary needs the lecture's data generator"
    points = gen.grid(grid)
    held = heldout_points(task, heldout, grading_seed)
    on_grid = float(np.mean(predicted_classes(task, params, points) == gen.classes(points)))
    on_held = float(np.mean(predicted_classes(task, params, held) == gen.classes(held)))
    return Agreement(on_grid, on_held)


@dataclass(frozen=True)
class Accuracy:
    """Accuracy on the held-out images, with the predictions it counts."""

    accuracy: float
    predictions: np.ndarray
    counts: np.ndarray  # how often each class is predicted

    @property
    def images(self) -> int:
        return len(self.predictions)

    @property
    def top_class(self) -> int:
        return int(np.argmax(self.counts))

    @property
    def top_count(self) -> int:
        return int(self.counts.max())


def heldout_accuracy(ev: Evidence, params: dict[str, np.ndarray] | None = None) -> Accuracy:
    """Accuracy on the held-out test set (never served to the sandbox): of the student's
    Keras model, or of the lecture's network fed `params` (default: the student's weights).
    Raises ValueError (or ModelRefused) when the model cannot be evaluated on the images."""
    x = ev.task.features(ev.data.heldout_x)
    if params is None and ev.task.model == "keras":
        pred = np.argmax(student_model(ev).forward(x), axis=-1)
    else:
        pred = ev.task.predict_class(ev.params() if params is None else params, x)
    acc = float(np.mean(pred == ev.data.heldout_y))
    return Accuracy(acc, pred, np.bincount(pred, minlength=ev.task.classes))


def is_one_hot(y: np.ndarray) -> bool:
    """Every entry of the 2-D labels `y` is 0 or 1, and every row holds a single 1."""
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))


def label_agreement(task: Task, y: np.ndarray, x: np.ndarray) -> float:
    """Share of one-hot rows `y` whose class (column 1 = C1) is the generator's class of the
    matching point (the last two columns of `x`)."""
    assert task.generator is not None, "one-hot labels are checked against a data generator"
    return float(np.mean(np.argmax(y, axis=1) == task.generator.classes(x[:, -2:])))


# --- training ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossFigures:
    """The loss of the student's final weights and of the template's initialization."""

    start: float  # at the template's initialization (weights drawn by the grader)
    final: float  # with the student's final weights

    @property
    def ratio(self) -> float:
        return self.final / self.start if self.start > 0 else 0.0


def loss_data(ev: Evidence, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) the losses are computed on: the first `n` held-out images of the
    assignment's digits, or `n` fresh generator points."""
    if ev.data is not None:  # an image assignment: the held-out images the sandbox never saw
        images, labels = ev.task.select(ev.data.heldout_x, ev.data.heldout_y)
        return ev.task.features(images[:n]), ev.task.image_targets(images[:n], labels[:n])
    _, x, y = ev.task.dataset(n, ev.assignment.grading_seed + LOSS_DATA_SEED)
    return x, y


def loss_before_after(ev: Evidence, n: int) -> LossFigures:
    """The assignment's loss on `loss_data(ev, n)` of the student's weights and of weights
    drawn as the template initializes them. Raises ValueError if the weights do not fit."""
    params = ev.params()
    x, y = loss_data(ev, n)
    rng = np.random.default_rng(ev.assignment.grading_seed + INIT_SEED)
    init = {
        k: rng.normal(0.0, ev.task.init_stddev, size=v.shape).astype(np.float64)
        for k, v in params.items()
    }
    final = ev.task.loss_value(ev.task.forward(params, x), y)
    start = ev.task.loss_value(ev.task.forward(init, x), y)
    return LossFigures(start, final)


def loss_records(ev: Evidence) -> dict[str, np.ndarray]:
    """The loss records the notes keep (the spec's `collect.records`) with 2 or more entries."""
    return {
        name: ev.arrays[name].ravel().astype(float)
        for name in ev.assignment.collect.records
        if name in ev.arrays and ev.arrays[name].size >= 2
    }


@dataclass(frozen=True)
class RecordFigures:
    """The student's own training-loss record, summed up."""

    name: str
    first: float
    last: float
    peak: float  # the highest value; infinity when that is not finite


def training_record(ev: Evidence) -> RecordFigures | None:
    """The first loss record (the training loss), or None when the run kept none."""
    for name, r in loss_records(ev).items():
        peak = float(np.nanmax(r)) if np.isfinite(np.nanmax(r)) else np.inf
        return RecordFigures(name, float(r[0]), float(r[-1]), peak)
    return None


def parameter_values(ev: Evidence, names: list[str]) -> dict[str, np.ndarray]:
    """The learned values of the named arrays, flattened (Missing if one is absent)."""
    return {name: np.asarray(ev.array(name), dtype=np.float64).ravel() for name in names}


@dataclass(frozen=True)
class RestorePair:
    """One variable as the training file saved it and as the test file restored it."""

    name: str
    trained: np.ndarray | None  # None: the training file left no value
    restored: np.ndarray | None  # None: the test file has none (or no trained one to compare)

    def _both(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.trained is not None and self.restored is not None, "a value is missing"
        return self.trained, self.restored

    @property
    def difference(self) -> float:
        """max |trained - restored|, NaN in the same places counting as equal."""
        return max_difference(*self._both(), equal_nan=True)

    @property
    def max_abs(self) -> float:
        """max |trained - restored| as NumPy computes it (NaN if any value is NaN)."""
        trained, restored = self._both()
        return float(np.max(np.abs(trained - restored)))


def restore_pairs(ev: Evidence, names: list[str], prefix: str) -> list[RestorePair]:
    """Each named variable after training (artifact `prefix + name`) and after the restore."""
    pairs = []
    for name in names:
        try:
            trained = np.asarray(ev.array(prefix + name), dtype=np.float64)
        except Missing:
            pairs.append(RestorePair(name, None, None))
            continue
        try:
            restored = np.asarray(ev.array(name), dtype=np.float64)
        except Missing:
            restored = None
        pairs.append(RestorePair(name, trained, restored))
    return pairs


# --- autoencoder -------------------------------------------------------------------------------


def heldout_digits(task: Task, data: Splits) -> tuple[np.ndarray, np.ndarray]:
    """The held-out images (and labels) of the assignment's digits."""
    return task.select(data.heldout_x, data.heldout_y)


def reconstructions(
    task: Task, params: dict[str, np.ndarray], images: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, outputs) of the autoencoder fed `params`, for the given images."""
    x = task.features(images)
    return x, task.forward(params, x)


@dataclass(frozen=True)
class Reconstruction:
    """Mean squared error per pixel over the held-out images of the assignment's digits."""

    error: float
    images: int


def reconstruction_error(task: Task, params: dict[str, np.ndarray], data: Splits) -> Reconstruction:
    """Mean squared error per pixel of the autoencoder's reconstructions of the held-out
    images of the assignment's digits. Raises ValueError if the weights do not fit."""
    images, _ = heldout_digits(task, data)
    x, out = reconstructions(task, params, images)
    return Reconstruction(float(np.mean((out - x) ** 2)), len(x))


def latent_codes(
    task: Task, params: dict[str, np.ndarray], images: np.ndarray, latent_layers: int = 3
) -> np.ndarray:
    """The encoder's codes (the first `latent_layers` layers) of the given images."""
    return task.forward(params, task.features(images), 0, latent_layers)


def latent_separation(z: np.ndarray, labels: np.ndarray, neighbours: int = 5) -> float:
    """5-fold cross-validated accuracy of a k-nearest-neighbour classifier on the codes `z`."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return float(
        np.mean(cross_val_score(KNeighborsClassifier(n_neighbors=neighbours), z, labels, cv=5))
    )
