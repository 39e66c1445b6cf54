"""The lecture's data generators and model functions, in NumPy, for the trusted process.

The trusted process never imports student code and never needs TensorFlow: the models of the
graph assignments are a few matrix products, rebuilt here from the spec's allow-listed layer
list as steps of the one NumPy engine (`grader.model.engine`) and fed the student's weight
arrays. `grader validate` checks these rebuilt models against the reference solutions' own
TensorFlow outputs (the `wiring` check on the reference).

The spec's choices (`input`, `labels`, `loss`, `model`, a layer's `op`) are `str` enums; each
selects its function from a table once, when the spec is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from grader.course.data import FAMILIES
from grader.errors import SpecError
from grader.model import engine


@dataclass(frozen=True)
class Generator:
    """A lecture data generator: a box domain and, for classifiers, the true boundary g >= 0 -> C1."""

    name: str
    low: tuple[float, ...]
    high: tuple[float, ...]
    boundary: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    formula: str

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        low, high = np.array(self.low), np.array(self.high)
        return low + (high - low) * rng.random((n, len(self.low)))

    def grid(self, per_axis: int) -> np.ndarray:
        axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(self.low, self.high, strict=True)]
        mesh = np.meshgrid(*axes)
        return np.column_stack([m.ravel() for m in mesh])

    def classes(self, points: np.ndarray) -> np.ndarray:
        assert self.boundary is not None
        return (self.boundary(points[:, 0], points[:, 1]) >= 0).astype(np.int64)


DATASETS = tuple(FAMILIES)

GENERATORS: dict[str, Generator] = {
    # seed 004, Perceptron: x1 = 8*rand, x2 = 7*rand - 4, g = 0.8*x1 + x2 - 3
    "halfplane": Generator(
        "halfplane", (0.0, -4.0), (8.0, 3.0), lambda a, b: 0.8 * a + b - 3, "0.8*x1 + x2 - 3 = 0"
    ),
    # seed 004, MLP: x1 = 10*rand - 5, x2 = 8*rand - 4, g = -0.5*(x1-1)**2 + 2*x2 + 5
    "quadratic": Generator(
        "quadratic",
        (-5.0, -4.0),
        (5.0, 4.0),
        lambda a, b: -0.5 * (a - 1) ** 2 + 2 * b + 5,
        "-0.5*(x1-1)^2 + 2*x2 + 5 = 0",
    ),
    # seed 004, harder MLP: g = -0.5*(x1*x2-1)**2 + 2*x2 + 5
    "quadratic_hard": Generator(
        "quadratic_hard",
        (-5.0, -4.0),
        (5.0, 4.0),
        lambda a, b: -0.5 * (a * b - 1) ** 2 + 2 * b + 5,
        "-0.5*(x1*x2-1)^2 + 2*x2 + 5 = 0",
    ),
    # seed 000 section 3.2: data_x = linspace(-1, 1, 100), data_y = 2*x + 1 + 0.3*noise
    "line": Generator("line", (-1.0,), (1.0,), None, "y = 2*x + 1 + 0.3*noise"),
}


# --- the closed sets a spec chooses from ------------------------------------------------------


class Choice(str, Enum):
    """A spec value from a closed set: it compares, hashes, prints and formats as its string,
    so `task.labels == "reconstruction"` and `f"{task.loss}"` read as the spec wrote them."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(str(member) for member in cls)


class InputKind(Choice):
    """How generator points or images become the network's input ([task].input)."""

    RAW = "raw"  # the generator's points as they are
    BIAS_COLUMN = "bias_column"  # a column of ones first, as the perceptron
    PIXELS = "pixels"  # images flattened to (n, 784), scaled to [0, 1]
    IMAGES = "images"  # images as they are, scaled to [0, 1] (a Keras model flattens them)


class LabelKind(Choice):
    """What the network is trained to output ([task].labels)."""

    BINARY = "binary"  # (m, 1) of 0/1
    ONEHOT = "onehot"  # (m, classes), [C0, C1, ...]
    REGRESSION = "regression"  # one number per point
    RECONSTRUCTION = "reconstruction"  # the input itself (an autoencoder)


class LossKind(Choice):
    """The loss the students define, as TensorFlow computes it ([task].loss)."""

    SIGMOID_CE = "sigmoid_ce"
    SOFTMAX_CE = "softmax_ce"
    MSE = "mse"


class ModelKind(Choice):
    """Which network the checks evaluate ([task].model)."""

    GRAPH = "graph"  # the layer list of the spec, fed the student's weight arrays
    KERAS = "keras"  # the student's own Keras model


class Op(Choice):
    """The product of a layer ([task].layers[i].op)."""

    MATMUL = "matmul"  # inputs @ weight
    SCALE = "scale"  # inputs * weight, element-wise (the w*x of linear regression)


# --- what each choice computes: one table per choice, looked up once at spec load --------------

Features = Callable[[np.ndarray], np.ndarray]


def _bias_column(points: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(points)), points])


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def _scaled_images(images: np.ndarray) -> np.ndarray:  # Keras: (n, 28, 28), as the notes do
    return images.astype(np.float64) / 255.0


def _first_coordinate(points: np.ndarray) -> np.ndarray:
    return points[:, 0]


FEATURES: dict[InputKind, Features] = {
    InputKind.RAW: lambda points: points,
    InputKind.BIAS_COLUMN: _bias_column,
    InputKind.PIXELS: _pixels,
    InputKind.IMAGES: _scaled_images,
}
# Where the labels change the input: seed 000 feeds linear regression its x as a 1-D vector.
FEATURES_FOR_LABELS: dict[tuple[InputKind, LabelKind], Features] = {
    (InputKind.RAW, LabelKind.REGRESSION): _first_coordinate,
}

PointTargets = Callable[[Generator, np.ndarray, np.random.Generator], np.ndarray]

# Labels of generator points, in the assignment's format (image labels come from the data set).
POINT_TARGETS: dict[LabelKind, PointTargets] = {
    LabelKind.BINARY: lambda gen, points, rng: gen.classes(points)[:, None].astype(float),
    LabelKind.ONEHOT: lambda gen, points, rng: np.eye(2)[gen.classes(points)],
    # seed 000 section 3.2: y = 2*x + 1 + 0.3*noise
    LabelKind.REGRESSION: lambda gen, points, rng: (
        2 * points[:, 0] + 1 + 0.3 * rng.standard_normal(len(points))
    ),
}

LOSSES: dict[LossKind, Callable[[np.ndarray, np.ndarray], float]] = {
    LossKind.SIGMOID_CE: engine.sigmoid_cross_entropy,
    LossKind.SOFTMAX_CE: engine.softmax_cross_entropy,
    LossKind.MSE: engine.mean_squared_error,
}


def _in_student_terms(name: str) -> str:
    """`weights.hidden|weights.hidden1` -> `weights['hidden']`, as the student wrote it."""
    head, _, key = name.split("|")[0].partition(".")
    return f"`{head}['{key}']`" if key else f"`{head}`"


# --- the spec's [task] ------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One allow-listed layer: `op(inputs, weight) + bias`, then the activation.

    Raises ValueError for an activation outside `engine.ACTIVATIONS` or an unknown op.
    """

    weight: str
    bias: str | None = None
    activation: str = "linear"
    op: Op = Op.MATMUL  # or Op.SCALE for the element-wise w*x of linear regression

    def __post_init__(self) -> None:
        if self.activation not in engine.ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r}; allowed: {list(engine.ACTIVATIONS)}")
        object.__setattr__(self, "op", Op(self.op))

    def step(self, params: dict[str, np.ndarray]) -> engine.Dense:
        """This layer as an engine step, fed the given weight arrays."""
        return engine.Dense(
            kernel=params[self.weight],
            bias=None if self.bias is None else params[self.bias],
            activation=self.activation,
            op=self.op,
            where=_in_student_terms(self.weight),
        )


TASK_KEYS = (
    "generator",
    "data",
    "layers",
    "input",
    "labels",
    "loss",
    "init_stddev",
    "probes",
    "digits",
    "model",
)


@dataclass(frozen=True)
class Task:
    """What the trusted side knows of an assignment's problem (spec table `[task]`).

    The string fields are coerced to their `Choice` (ValueError for an unknown value), and the
    functions they select are looked up once, here, not at every call.
    """

    generator: Generator | None  # the lecture's generator, or None for an image data set
    layers: tuple[Layer, ...]
    input: InputKind = InputKind.RAW
    labels: LabelKind = LabelKind.BINARY
    loss: LossKind = LossKind.SIGMOID_CE
    init_stddev: float = 0.1
    probes: int = 200
    data: str | None = None  # "mnist": images served to the sandbox, held-out set kept here
    classes: int = 2
    model: ModelKind = ModelKind.GRAPH  # "keras": the student's Keras model, not `layers`
    digits: tuple[int, ...] = ()  # grade on these digits only (the autoencoder's 1, 5, 6)
    _features: Features = field(init=False, repr=False, compare=False)
    _loss: Callable[[np.ndarray, np.ndarray], float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, kind in (
            ("input", InputKind),
            ("labels", LabelKind),
            ("loss", LossKind),
            ("model", ModelKind),
        ):
            object.__setattr__(self, name, kind(getattr(self, name)))
        features = FEATURES_FOR_LABELS.get((self.input, self.labels), FEATURES[self.input])
        object.__setattr__(self, "_features", features)
        object.__setattr__(self, "_loss", LOSSES[self.loss])

    @classmethod
    def from_spec(cls, data: dict[str, Any], where: str) -> Task:
        """The `[task]` table of the spec at `where`; SpecError names the key that is wrong."""
        for key in data:
            if key not in TASK_KEYS:
                raise SpecError(f"{where}: unknown key [task].{key}; known: {sorted(TASK_KEYS)}")
        gen = data.get("generator")
        if "data" in data:
            if data["data"] not in DATASETS:
                raise SpecError(
                    f"{where}: [task].data = {data['data']!r}; known: {sorted(DATASETS)}"
                )
            if gen is not None:
                raise SpecError(f"{where}: [task] takes a generator or a data set, not both")
        elif gen not in GENERATORS:
            raise SpecError(f"{where}: [task].generator = {gen!r}; known: {sorted(GENERATORS)}")
        layers = tuple(_layer_from_spec(i, e, where) for i, e in enumerate(data.get("layers", [])))
        for key, kind in (("input", InputKind), ("labels", LabelKind), ("loss", LossKind)):
            if key in data and data[key] not in kind.values():
                raise SpecError(f"{where}: [task].{key} = {data[key]!r}; allowed: {kind.values()}")
        rest: dict[str, Any] = {
            k: data[k] for k in ("input", "labels", "loss", "init_stddev", "probes") if k in data
        }
        if data.get("model", "graph") not in ModelKind.values():
            raise SpecError(f"{where}: [task].model = {data['model']!r}; allowed: 'graph', 'keras'")
        rest["model"] = data.get("model", "graph")
        rest["digits"] = tuple(int(d) for d in data.get("digits", ()))
        if "data" in data:
            return cls(None, layers, data=data["data"], classes=10, **rest)  # 10 classes
        return cls(generator=GENERATORS[str(gen)], layers=layers, **rest)

    # -- data -------------------------------------------------------------------------------

    def features(self, points: np.ndarray) -> np.ndarray:
        """Raw generator points as the network's input (the perceptron adds its bias column);
        uint8 images as the lecture feeds them, flattened and scaled to [0, 1]."""
        return self._features(points)

    def onehot(self, labels: np.ndarray) -> np.ndarray:
        return np.eye(self.classes)[np.asarray(labels, dtype=np.int64)]

    def image_targets(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """What the loss compares the network's output with, for images: one-hot labels, or
        the images themselves for an autoencoder."""
        if self.labels is LabelKind.RECONSTRUCTION:
            return self.features(images)
        return self.onehot(labels)

    def select(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The images of the assignment's digits (all of them when none are named)."""
        if not self.digits:
            return images, labels
        keep = np.isin(labels, self.digits)
        return images[keep], labels[keep]

    def targets(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Labels in the assignment's format for generator points.

        Raises ValueError for a task without a generator or with reconstruction labels (those
        come from images: `image_targets`).
        """
        if self.generator is None or self.labels not in POINT_TARGETS:
            raise ValueError(f"labels = {self.labels!r} of generator points: use image_targets")
        return POINT_TARGETS[self.labels](self.generator, points, rng)

    def dataset(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points, features, targets) drawn with a grader seed, never shown to the sandbox."""
        if self.generator is None:
            raise ValueError(f"[task].data = {self.data!r} has no generator to draw points from")
        rng = np.random.default_rng(seed)
        points = self.generator.sample(n, rng)
        return points, self.features(points), self.targets(points, rng)

    # -- model ------------------------------------------------------------------------------

    def forward(
        self,
        params: dict[str, np.ndarray],
        inputs: np.ndarray,
        start: int = 0,
        stop: int | None = None,
    ) -> np.ndarray:
        """The reference model function on the given weight arrays (float64 throughout);
        `start`/`stop` run a slice of the layers (an autoencoder's encoder or decoder).

        Raises ValueError, naming the layer and the shapes, if the weights do not fit.
        """
        steps = [layer.step(params) for layer in self.layers[start:stop]]
        return engine.forward(steps, inputs)

    def predict_class(self, params: dict[str, np.ndarray], inputs: np.ndarray) -> np.ndarray:
        out = self.forward(params, inputs)
        if out.ndim == 2 and out.shape[1] >= 2:
            return np.argmax(out, axis=1)  # one-hot [C0, C1]: column 1 is C1
        return (out.reshape(len(out), -1)[:, 0] > 0).astype(np.int64)  # sigmoid logit > 0

    def loss_value(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The assignment's loss (mean over the batch), in the students' TensorFlow definition."""
        return self._loss(outputs, targets)

    def weight_names(self) -> list[str]:
        names = []
        for layer in self.layers:
            names.append(layer.weight)
            if layer.bias:
                names.append(layer.bias)
        return names


def _layer_from_spec(i: int, entry: dict[str, Any], where: str) -> Layer:
    try:
        return Layer(**entry)
    except TypeError as exc:
        raise SpecError(f"{where}: [task].layers[{i}]: {exc}") from exc
    except ValueError:
        activation = entry.get("activation", "linear")
        if activation not in engine.ACTIVATIONS:
            raise SpecError(
                f"{where}: [task].layers[{i}].activation = {activation!r}; "
                f"allowed: {sorted(engine.ACTIVATIONS)}"
            ) from None
        raise SpecError(f"{where}: [task].layers[{i}].op must be 'matmul' or 'scale'") from None
