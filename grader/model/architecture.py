"""A validated Keras model as plain data: its layers, its weights, and its forward pass.

`grader.model.keras.parse_architecture` builds these from `model.to_json()` and
`model.get_weights()`; the forward pass is the one NumPy engine (`grader.model.engine`).

Layers are numbered from 1 in the order the student wrote them; the input layer that Keras 3
adds in front of a built Sequential model (or the `Input` of a functional model) is not
counted, as in `model.summary()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from grader.model import engine

MAX_JSON_BYTES = 1 << 20  # Keras writes ~1 kB per layer; 1 MiB is far beyond 64 layers.
MAX_LAYERS = 64
MAX_PARAMS = 50_000_000  # 400 MB in float64 at most, when the forward pass converts a kernel.
MAX_RANK = 6  # batch axis included

ACTIVATIONS = tuple(engine.ACTIVATIONS)  # linear, relu, sigmoid, tanh, softmax
# Layer kinds that only apply a function element-wise (or along the last axis).
ACTIVATION_LAYERS = ("Activation", "Softmax", "ReLU")
ALLOWED = ("InputLayer", "Flatten", "Dense", "Dropout", *ACTIVATION_LAYERS)
HINT = "use Dense/Flatten/Dropout/Activation layers"

Shape = tuple[int | None, ...]
fmt = engine.fmt_shape


def dims(shape: Shape) -> tuple[int, ...]:
    """The axes of a validated shape besides the batch: all known (the reader refuses None)."""
    return cast(tuple[int, ...], shape[1:])


class ModelRefused(Exception):
    """The model handed back is not one the grader reads; the message says why, for the student."""


@dataclass(frozen=True)
class Layer:
    """One layer of a validated model, as the student wrote it.

    `activation` is the function the layer applies ("linear" for a Dense without one, "softmax"
    for a Softmax layer, "relu" for a ReLU layer) and `None` for Flatten and Dropout. `units`
    and `use_bias` are set for Dense only, `rate` for Dropout only.
    """

    index: int
    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    params: int
    units: int | None = None
    activation: str | None = None
    use_bias: bool | None = None
    rate: float | None = None
    channels_first: bool = False
    kernel: np.ndarray | None = field(default=None, repr=False, compare=False)
    bias: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def where(self) -> str:
        return f"layer {self.index} (`{self.name}`)"

    def describe(self) -> str:
        """`Dense(128, relu)`, `Dropout(0.2)`, `Flatten`, `Activation(softmax)`."""
        if self.kind == "Dense":
            bias = "" if self.use_bias else ", no bias"
            return f"Dense({self.units}, {self.activation}{bias})"
        if self.kind == "Dropout":
            return f"Dropout({self.rate:g})"
        if self.kind == "Activation":
            return f"Activation({self.activation})"
        return f"{self.kind}()" if self.kind in ACTIVATION_LAYERS else self.kind


@dataclass(frozen=True)
class Architecture:
    """A validated chain of allow-listed layers with their weights (read-only copies)."""

    name: str
    model_class: str  # "Sequential" or "Functional"
    input_shape: Shape
    layers: tuple[Layer, ...]

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The model's output for the batch `x`, in float64 (Dropout is the identity).

        Raises ValueError if `x` does not have the model's input shape (any batch size).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != len(self.input_shape) or x.shape[1:] != self.input_shape[1:]:
            raise ValueError(
                f"inputs have shape {x.shape}; the model takes {fmt(self.input_shape)}"
            )
        return engine.forward(self.steps(), x)

    def steps(self) -> tuple[engine.Step, ...]:
        """The layers as engine steps (Dropout is the identity), to run or compose."""
        return tuple(STEPS[layer.kind](layer) for layer in self.layers)

    def summary(self) -> str:
        """A table of the layers, like Keras' `model.summary()`, with each layer's activation."""
        rows = [
            (f"{la.name} ({la.kind})", fmt(la.output_shape), la.activation or "-", la)
            for la in self.layers
        ]
        w0 = max([len("Layer (type)"), *(len(r[0]) for r in rows)]) + 2
        w1 = max([len("Output Shape"), *(len(r[1]) for r in rows)]) + 2
        w2 = max([len("Activation"), *(len(r[2]) for r in rows)]) + 2
        rule = "-" * (w0 + w1 + w2 + 12)
        lines = [
            f'Model: "{self.name}" ({self.model_class}), input shape {fmt(self.input_shape)}',
            rule,
            f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Activation':<{w2}}{'Param #':>12}",
            rule.replace("-", "="),
        ]
        for name, shape, act, layer in rows:
            lines.append(f"{name:<{w0}}{shape:<{w1}}{act:<{w2}}{layer.params:>12,}")
        lines += [rule.replace("-", "="), f"Total params: {self.params:,}"]
        return "\n".join(lines)


def _dense(layer: Layer) -> engine.Step:
    if layer.kernel is None:
        raise ValueError(f"{layer.where} has no weights attached")
    return engine.Dense(layer.kernel, layer.bias, layer.activation or "linear", where=layer.where)


def _activation(layer: Layer) -> engine.Step:
    return engine.Activation(layer.activation or "linear", where=layer.where)


# Each allow-listed kind (InputLayer never reaches a model's layers) as an engine step.
STEPS: dict[str, Callable[[Layer], engine.Step]] = {
    "Dense": _dense,
    "Flatten": lambda layer: engine.Flatten(channels_first=layer.channels_first),
    "Dropout": lambda layer: engine.identity,
    **{kind: _activation for kind in ACTIVATION_LAYERS},
}
