"""The one NumPy engine: activations, layer steps, a forward pass and the losses, in float64.

Every network the trusted side evaluates goes through here: the lecture's graph networks
(`grader.course.tasks`) and a student's Keras model (`grader.model.keras`); the student's own
TensorFlow graph is meant to be evaluated with the same primitives.

Three levels, each built from the one below:

- primitives, pure functions of arrays: the activations (`ACTIVATIONS`), `matmul`, `scale`,
  `add_bias`, and the losses (element-wise, as TensorFlow defines them, and their means);
- steps: callables `array -> array` (`Dense`, `Activation`, `Flatten`, `identity`, or any
  function of one array), which a `Chain` composes (a chain is itself a step);
- `forward(steps, x)`: the steps applied in order to `x` as float64.

Arrays combine under NumPy's broadcasting rules, as TensorFlow's element-wise ops do; where they
cannot (a matrix product whose inner axes differ, a bias that fits no axis, labels of another
size than the outputs) a `ValueError` says which shapes met. Nothing here overflows for
large |z|: the sigmoid and the losses use their numerically stable forms and the softmax
subtracts the row maximum, so no RuntimeWarning is raised (only a row whose values span more
than the float range, ~1e308, could still overflow in that subtraction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ACTIVATIONS",
    "OPS",
    "Activation",
    "Chain",
    "Dense",
    "Flatten",
    "Step",
    "add_bias",
    "fmt_shape",
    "forward",
    "identity",
    "linear",
    "matmul",
    "mean_squared_error",
    "relu",
    "scale",
    "sigmoid",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_with_logits",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_logits",
    "tanh",
]

Step = Callable[[np.ndarray], np.ndarray]


def _f64(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def fmt_shape(shape: Sequence[int | None]) -> str:
    """`(None, 784)`, `(3,)`, `()`: a shape as Python writes a tuple, `None` for unknown axes."""
    dims = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _at(where: str) -> str:
    return f"{where}: " if where else ""


# --- activations ------------------------------------------------------------------------------


def linear(z: ArrayLike) -> np.ndarray:
    """The identity (a Dense layer without an activation)."""
    return _f64(z)


def relu(z: ArrayLike) -> np.ndarray:
    """max(z, 0), element-wise."""
    return np.maximum(_f64(z), 0.0)


def tanh(z: ArrayLike) -> np.ndarray:
    """tanh(z), element-wise."""
    return np.tanh(_f64(z))


def sigmoid(z: ArrayLike) -> np.ndarray:
    """1 / (1 + e^-z), element-wise, without overflow: with e = e^-|z| (at most 1), it is
    1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0 (both branches are finite everywhere)."""
    z = _f64(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z: ArrayLike) -> np.ndarray:
    """The softmax over the last axis; the row maximum is subtracted first, so e^x <= 1."""
    z = _f64(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# The activations a layer may name, in the order messages list them.
ACTIVATIONS: dict[str, Callable[[ArrayLike], np.ndarray]] = {
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
}


def _activation(name: str, where: str = "") -> Callable[[ArrayLike], np.ndarray]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"{_at(where)}activation {name!r} is not one the engine computes; "
            f"known: {', '.join(ACTIVATIONS)}"
        ) from None


# --- products and biases ----------------------------------------------------------------------


def matmul(x: ArrayLike, w: ArrayLike, where: str = "") -> np.ndarray:
    """`x @ w` in float64 (NumPy's matmul: a 1-D `w` gives one output per row).

    Raises ValueError, naming both shapes, if the last axis of `x` is not the first axis of `w`
    (the second-to-last for a stack of matrices), or if either is a scalar.
    """
    x, w = _f64(x), _f64(w)
    if x.ndim == 0 or w.ndim == 0:
        raise ValueError(
            f"{_at(where)}a matrix product needs arrays, not scalars; got inputs of shape "
            f"{fmt_shape(x.shape)} and a weight of shape {fmt_shape(w.shape)}"
        )
    inner = w.shape[0] if w.ndim == 1 else w.shape[-2]
    if x.shape[-1] != inner:
        raise ValueError(
            f"{_at(where)}inputs of shape {fmt_shape(x.shape)} cannot be multiplied by a weight "
            f"of shape {fmt_shape(w.shape)}: the inputs' last axis ({x.shape[-1]}) must equal "
            f"the weight's {'first' if w.ndim <= 2 else 'second-to-last'} axis ({inner})"
        )
    return x @ w


def _broadcastable(x: np.ndarray, w: np.ndarray, what: str, where: str) -> None:
    try:
        np.broadcast_shapes(x.shape, w.shape)
    except ValueError:
        raise ValueError(
            f"{_at(where)}{what} of shape {fmt_shape(w.shape)} does not fit inputs of shape "
            f"{fmt_shape(x.shape)} (NumPy broadcasting: axes compared from the last must be "
            "equal or 1)"
        ) from None


def scale(x: ArrayLike, w: ArrayLike, where: str = "") -> np.ndarray:
    """`x * w`, element-wise in float64 (the `w*x` of linear regression).

    Raises ValueError, naming both shapes, if they do not broadcast.
    """
    x, w = _f64(x), _f64(w)
    _broadcastable(x, w, "an element-wise weight", where)
    return x * w


def add_bias(x: ArrayLike, b: ArrayLike, where: str = "") -> np.ndarray:
    """`x + b` in float64, `b` broadcast as TensorFlow's `tf.add` broadcasts it.

    Raises ValueError, naming both shapes, if they do not broadcast.
    """
    x, b = _f64(x), _f64(b)
    _broadcastable(x, b, "a bias", where)
    return x + b


# The products a Dense step may use: a matrix product, or the element-wise scale.
OPS: dict[str, Callable[[ArrayLike, ArrayLike, str], np.ndarray]] = {
    "matmul": matmul,
    "scale": scale,
}


# --- steps ------------------------------------------------------------------------------------


def identity(x: np.ndarray) -> np.ndarray:
    """The step that does nothing (Dropout when predicting)."""
    return x


@dataclass(frozen=True)
class Activation:
    """The step that applies one of `ACTIVATIONS` (a Keras Activation, Softmax or ReLU layer)."""

    name: str
    where: str = ""

    def __post_init__(self) -> None:
        _activation(self.name, self.where)  # an unknown name fails here, not mid-forward

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.name](x)


@dataclass(frozen=True, eq=False)  # it holds arrays: compared and hashed by identity
class Dense:
    """`activation(op(x, kernel) + bias)`: a Keras Dense layer, or a layer of the lecture.

    Args:
        kernel: the weight array.
        bias: the bias, added after the product. Defaults to `None` (no bias).
        activation: a name in `ACTIVATIONS`. Defaults to `"linear"`.
        op: `"matmul"` (`x @ kernel`) or `"scale"` (`x * kernel`). Defaults to `"matmul"`.
        where: how messages name the layer, e.g. "layer 2 (`dense`)". Defaults to `""`.
    """

    kernel: np.ndarray
    bias: np.ndarray | None = None
    activation: str = "linear"
    op: str = "matmul"
    where: str = ""

    def __post_init__(self) -> None:
        _activation(self.activation, self.where)
        if self.op not in OPS:
            raise ValueError(f"{_at(self.where)}op {self.op!r}; known: {', '.join(OPS)}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = OPS[self.op](x, self.kernel, self.where)
        if self.bias is not None:
            h = add_bias(h, self.bias, self.where)
        return ACTIVATIONS[self.activation](h)


@dataclass(frozen=True)
class Flatten:
    """Each example flattened to one axis; with `channels_first`, the channels are moved last
    first, as Keras' Flatten(data_format="channels_first") does."""

    channels_first: bool = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.channels_first and x.ndim > 2:
            x = np.transpose(x, (0, *range(2, x.ndim), 1))
        return x.reshape(x.shape[0], -1)


@dataclass(frozen=True)
class Chain:
    """Steps applied one after the other; a chain is itself a step, and slices to a chain
    (`chain[:3]` is an autoencoder's encoder)."""

    steps: tuple[Step, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for step in self.steps:
            x = step(x)
        return x

    def __getitem__(self, index: slice) -> Chain:
        return Chain(self.steps[index])

    def __len__(self) -> int:
        return len(self.steps)


def forward(steps: Iterable[Step], x: ArrayLike) -> np.ndarray:
    """The steps applied in order to `x`, converted to float64 first."""
    return Chain(tuple(steps))(_f64(x))


# --- losses -----------------------------------------------------------------------------------


def _like(targets: np.ndarray, outputs: np.ndarray, loss: str) -> np.ndarray:
    """`targets` in the shape of `outputs` ((m,) labels for (m, 1) logits are the same labels)."""
    if targets.size != outputs.size:
        raise ValueError(
            f"{loss}: the labels have shape {fmt_shape(targets.shape)} ({targets.size} values); "
            f"the outputs have shape {fmt_shape(outputs.shape)} ({outputs.size} values)"
        )
    return targets.reshape(outputs.shape)


def sigmoid_cross_entropy_with_logits(labels: ArrayLike, logits: ArrayLike) -> np.ndarray:
    """tf.nn.sigmoid_cross_entropy_with_logits, element-wise, in its stable form
    max(z, 0) - z*t + log(1 + e^-|z|). `labels` are reshaped to the shape of `logits`."""
    z = _f64(logits)
    t = _like(_f64(labels), z, "sigmoid cross entropy")
    return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))


def softmax_cross_entropy_with_logits(labels: ArrayLike, logits: ArrayLike) -> np.ndarray:
    """tf.nn.softmax_cross_entropy_with_logits, one value per row of `logits` (batch, classes):
    sum(t * (logsumexp(z) - z)), with the row maximum subtracted inside the logsumexp. (For
    labels that sum to 1 this is logsumexp(z) - sum(t * z); like TensorFlow's, it is 0 for a
    single column whatever the labels.)"""
    z, t = _f64(logits), _f64(labels)
    if z.ndim != 2:
        raise ValueError(
            f"softmax cross entropy: the logits have shape {fmt_shape(z.shape)}; expected "
            "(batch, classes)"
        )
    zmax = z.max(axis=1, keepdims=True)
    logsumexp = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    try:
        return (t * (logsumexp[:, None] - z)).sum(axis=1)
    except ValueError:
        raise ValueError(
            f"softmax cross entropy: the labels have shape {fmt_shape(t.shape)}; the logits "
            f"have shape {fmt_shape(z.shape)}"
        ) from None


def sigmoid_cross_entropy(outputs: ArrayLike, targets: ArrayLike) -> float:
    """The mean of `sigmoid_cross_entropy_with_logits` (outputs are logits)."""
    return float(np.mean(sigmoid_cross_entropy_with_logits(targets, outputs)))


def softmax_cross_entropy(outputs: ArrayLike, targets: ArrayLike) -> float:
    """The mean of `softmax_cross_entropy_with_logits` over the batch (outputs are logits)."""
    return float(np.mean(softmax_cross_entropy_with_logits(targets, outputs)))


def mean_squared_error(outputs: ArrayLike, targets: ArrayLike) -> float:
    """mean((t - z)^2), `targets` reshaped to the shape of `outputs`."""
    z = _f64(outputs)
    t = _like(_f64(targets), z, "mean squared error")
    return float(np.mean((t - z) ** 2))
