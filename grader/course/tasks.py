"""The lecture's data generators and model functions, in NumPy, for the trusted process.

The trusted process never imports student code and never needs TensorFlow: the models of the
graph assignments are a few matrix products, rebuilt here from the spec's allow-listed layer
list and fed the student's weight arrays. `grader validate` checks these rebuilt models
against the reference solutions' own TensorFlow outputs (the `wiring` check on the reference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grader.course.data import FAMILIES
from grader.errors import SpecError


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

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: z,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "softmax": lambda z: (
        np.exp(z - z.max(axis=-1, keepdims=True))
        / np.exp(z - z.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True)
    ),
}


@dataclass(frozen=True)
class Layer:
    """One allow-listed layer: `op(inputs, weight) + bias`, then the activation."""

    weight: str
    bias: str | None = None
    activation: str = "linear"
    op: str = "matmul"  # "matmul", or "scale" for the element-wise w*x of linear regression


@dataclass(frozen=True)
class Task:
    """What the trusted side knows of an assignment's problem (spec table `[task]`)."""

    generator: Generator | None  # the lecture's generator, or None for an image data set
    layers: tuple[Layer, ...]
    input: str = "raw"  # "raw", or "bias_column" (a column of ones first, as the perceptron)
    labels: str = "binary"  # "binary" (m, 1) of 0/1, "onehot" (m, 2) [C0, C1], "regression"
    loss: str = "sigmoid_ce"  # "sigmoid_ce", "softmax_ce", "mse"
    init_stddev: float = 0.1
    probes: int = 200
    data: str | None = None  # "mnist": images served to the sandbox, held-out set kept here
    classes: int = 2
    model: str = "graph"  # "graph": the layer list above; "keras": the student's Keras model
    digits: tuple[int, ...] = ()  # grade on these digits only (the autoencoder's 1, 5, 6)

    @classmethod
    def from_spec(cls, data: dict, where: str) -> Task:
        known = {
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
        }
        for key in data:
            if key not in known:
                raise SpecError(f"{where}: unknown key [task].{key}; known: {sorted(known)}")
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
        layers = []
        for i, layer in enumerate(data.get("layers", [])):
            try:
                layers.append(Layer(**layer))
            except TypeError as exc:
                raise SpecError(f"{where}: [task].layers[{i}]: {exc}") from exc
            if layers[-1].activation not in ACTIVATIONS:
                raise SpecError(
                    f"{where}: [task].layers[{i}].activation = {layers[-1].activation!r}; "
                    f"allowed: {sorted(ACTIVATIONS)}"
                )
            if layers[-1].op not in ("matmul", "scale"):
                raise SpecError(f"{where}: [task].layers[{i}].op must be 'matmul' or 'scale'")
        choices = {
            "input": ("raw", "bias_column", "pixels", "images"),
            "labels": ("binary", "onehot", "regression", "reconstruction"),
            "loss": ("sigmoid_ce", "softmax_ce", "mse"),
        }
        for key, allowed in choices.items():
            if key in data and data[key] not in allowed:
                raise SpecError(f"{where}: [task].{key} = {data[key]!r}; allowed: {allowed}")
        rest = {
            k: data[k] for k in ("input", "labels", "loss", "init_stddev", "probes") if k in data
        }
        if data.get("model", "graph") not in ("graph", "keras"):
            raise SpecError(f"{where}: [task].model = {data['model']!r}; allowed: 'graph', 'keras'")
        rest["model"] = data.get("model", "graph")
        rest["digits"] = tuple(int(d) for d in data.get("digits", ()))
        if "data" in data:
            return cls(None, tuple(layers), data=data["data"], classes=10, **rest)  # 10 classes
        return cls(generator=GENERATORS[gen], layers=tuple(layers), **rest)

    # -- data -------------------------------------------------------------------------------

    def features(self, points: np.ndarray) -> np.ndarray:
        """Raw generator points as the network's input (the perceptron adds its bias column);
        uint8 images as the lecture feeds them, flattened and scaled to [0, 1]."""
        if self.input == "pixels":
            return points.reshape(len(points), -1).astype(np.float64) / 255.0
        if self.input == "images":  # Keras: (n, 28, 28) scaled to [0, 1], as the notes do
            return points.astype(np.float64) / 255.0
        if self.input == "bias_column":
            return np.column_stack([np.ones(len(points)), points])
        if self.labels == "regression":
            return points[:, 0]
        return points

    def onehot(self, labels: np.ndarray) -> np.ndarray:
        return np.eye(self.classes)[np.asarray(labels, dtype=np.int64)]

    def image_targets(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """What the loss compares the network's output with, for images: one-hot labels, or
        the images themselves for an autoencoder."""
        if self.labels == "reconstruction":
            return self.features(images)
        return self.onehot(labels)

    def select(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The images of the assignment's digits (all of them when none are named)."""
        if not self.digits:
            return images, labels
        keep = np.isin(labels, self.digits)
        return images[keep], labels[keep]

    def targets(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Labels in the assignment's format for generator points."""
        if self.labels == "regression":
            return 2 * points[:, 0] + 1 + 0.3 * rng.standard_normal(len(points))
        cls_ = self.generator.classes(points)
        if self.labels == "onehot":
            return np.eye(2)[cls_]
        return cls_[:, None].astype(float)

    def dataset(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points, features, targets) drawn with a grader seed, never shown to the sandbox."""
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
        `start`/`stop` run a slice of the layers (an autoencoder's encoder or decoder)."""
        h = np.asarray(inputs, dtype=np.float64)
        for layer in self.layers[start:stop]:
            w = np.asarray(params[layer.weight], dtype=np.float64)
            h = h @ w if layer.op == "matmul" else h * w
            if layer.bias is not None:
                h = h + np.asarray(params[layer.bias], dtype=np.float64)
            h = ACTIVATIONS[layer.activation](h)
        return h

    def predict_class(self, params: dict[str, np.ndarray], inputs: np.ndarray) -> np.ndarray:
        out = self.forward(params, inputs)
        if out.ndim == 2 and out.shape[1] >= 2:
            return np.argmax(out, axis=1)  # one-hot [C0, C1]: column 1 is C1
        return (out.reshape(len(out), -1)[:, 0] > 0).astype(np.int64)  # sigmoid logit > 0

    def loss_value(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The assignment's loss (mean over the batch), in the students' TensorFlow definition."""
        z = np.asarray(outputs, dtype=np.float64)
        t = np.asarray(targets, dtype=np.float64)
        if self.loss == "mse":
            return float(np.mean((t.reshape(z.shape) - z) ** 2))
        if self.loss == "sigmoid_ce":
            t = t.reshape(z.shape)
            # tf.nn.sigmoid_cross_entropy_with_logits, numerically stable form
            return float(np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))))
        zmax = z.max(axis=1, keepdims=True)
        logsumexp = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        return float(np.mean(logsumexp - (t * z).sum(axis=1)))

    def weight_names(self) -> list[str]:
        names = []
        for layer in self.layers:
            names.append(layer.weight)
            if layer.bias:
                names.append(layer.bias)
        return names
