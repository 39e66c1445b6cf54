"""Measures shared by the network checks: the figures' types (agreement, accuracy), the
grader's own data draws, the student's loss records (feedback only), restore pairs, one-hot
labels, a Keras model's held-out accuracy. (The student's TF1 graph is measured in
`grader.checks.measures.student`.)

Data the grader draws itself use the assignment's `grading_seed` plus a fixed offset per use
(`LOSS_DATA_SEED`, `INIT_SEED`, `HELDOUT_SEED`, `LOSS_FUNCTION_SEED`), so that the draws are
independent of each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks.base import Evidence, Missing
from grader.checks.measures.keras import student_model
from grader.course.data import Splits
from grader.course.tasks import Task

LOSS_DATA_SEED = 1  # grading_seed + 1: the fresh points the losses are computed on
INIT_SEED = 2  # grading_seed + 2: the template's initialization, drawn again by the grader
HELDOUT_SEED = 3  # grading_seed + 3: the held-out points of a decision boundary
LOSS_FUNCTION_SEED = 4  # grading_seed + 4: the outputs and labels a loss function is checked on


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


# --- what the network computes -----------------------------------------------------------------


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


def heldout_accuracy(ev: Evidence) -> Accuracy:
    """Accuracy of the student's Keras model (rebuilt from its JSON and weights) on the
    held-out test set (never served to the sandbox). Raises ValueError (or ModelRefused) when
    the model cannot be evaluated on the images. (A TF1 graph: `student.network_accuracy`.)"""
    x = ev.task.features(ev.data.heldout_x)
    pred = np.argmax(student_model(ev).forward(x), axis=-1)
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


def latent_separation(z: np.ndarray, labels: np.ndarray, neighbours: int = 5) -> float:
    """5-fold cross-validated accuracy of a k-nearest-neighbour classifier on the codes `z`."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return float(
        np.mean(cross_val_score(KNeighborsClassifier(n_neighbors=neighbours), z, labels, cv=5))
    )
