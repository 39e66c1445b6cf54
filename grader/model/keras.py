"""The trusted side of grading a Keras model: an allow-listed description, read as data.

The sandboxed child hands back `model.to_json()` and `model.get_weights()`. This module reads
them as plain data: it never imports TensorFlow or Keras and never deserializes anything
executable (no `model_from_json`, no `from_config`, no marshalled Lambda code). It accepts only
an allow-list of layers (InputLayer, Flatten, Dense, Dropout, Activation, Softmax, ReLU) in a
chain (a Sequential model, or a functional model where each layer feeds the next), checks the
weight arrays against the layers, and computes the model's output itself in float64 numpy.

Everything it refuses raises `ModelRefused`, whose message speaks to the student about the
layer they wrote ("layer 2 (`lambda`) is a Lambda layer: ...").

Layers are numbered from 1 in the order the student wrote them; the input layer that Keras 3
adds in front of a built Sequential model (or the `Input` of a functional model) is not
counted, as in `model.summary()`.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "Architecture",
    "Layer",
    "ModelRefused",
    "compare_structure",
    "parse_architecture",
]

MAX_JSON_BYTES = 1 << 20  # Keras writes ~1 kB per layer; 1 MiB is far beyond 64 layers.
MAX_LAYERS = 64
MAX_PARAMS = 50_000_000  # 400 MB in float64 at most, when the forward pass converts a kernel.
MAX_RANK = 6  # batch axis included

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
# Layer kinds that only apply a function element-wise (or along the last axis).
_ACTIVATION_LAYERS = ("Activation", "Softmax", "ReLU")
_ALLOWED = ("InputLayer", "Flatten", "Dense", "Dropout", *_ACTIVATION_LAYERS)
_HINT = "use Dense/Flatten/Dropout/Activation layers"

Shape = tuple[int | None, ...]


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
        return f"{self.kind}()" if self.kind in _ACTIVATION_LAYERS else self.kind


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
                f"inputs have shape {x.shape}; the model takes {_fmt(self.input_shape)}"
            )
        for layer in self.layers:
            x = _apply(layer, x)
        return x

    def summary(self) -> str:
        """A table of the layers, like Keras' `model.summary()`, with each layer's activation."""
        rows = [
            (f"{la.name} ({la.kind})", _fmt(la.output_shape), la.activation or "-", la)
            for la in self.layers
        ]
        w0 = max([len("Layer (type)"), *(len(r[0]) for r in rows)]) + 2
        w1 = max([len("Output Shape"), *(len(r[1]) for r in rows)]) + 2
        w2 = max([len("Activation"), *(len(r[2]) for r in rows)]) + 2
        rule = "-" * (w0 + w1 + w2 + 12)
        lines = [
            f'Model: "{self.name}" ({self.model_class}), input shape {_fmt(self.input_shape)}',
            rule,
            f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Activation':<{w2}}{'Param #':>12}",
            rule.replace("-", "="),
        ]
        for name, shape, act, layer in rows:
            lines.append(f"{name:<{w0}}{shape:<{w1}}{act:<{w2}}{layer.params:>12,}")
        lines += [rule.replace("-", "="), f"Total params: {self.params:,}"]
        return "\n".join(lines)


def parse_architecture(json_text: str, weights: list[np.ndarray]) -> Architecture:
    """Validate `model.to_json()` and `model.get_weights()` against the allow-list.

    Args:
        json_text: the JSON text Keras 3 (or Keras 2) wrote for a Sequential or functional model.
        weights: the weight arrays, in `get_weights()` order (kernel then bias of each Dense).

    Raises ModelRefused for anything outside the allow-list, a model that is not a chain, a
    model over the size caps (`MAX_JSON_BYTES`, `MAX_LAYERS`, `MAX_PARAMS`), or weight arrays
    that do not fit the layers; the message names the layer, what was expected and what was got.
    """
    model = _load_json(json_text)
    top = _text(model.get("class_name"), "the model's `class_name`")
    config = model.get("config")
    if top in ("Sequential", "Functional", "Model"):
        _builtin(model, "the model", top, top_level=True)
    if top == "Sequential":
        entries = _layer_entries(config)
        ordered, input_shape = _sequential(model, config, entries)
    elif top in ("Functional", "Model"):
        entries = _layer_entries(config)
        _allow_listed(entries)
        ordered, input_shape = _functional(config, entries)
    else:
        raise ModelRefused(
            f"the model is a `{top}`, not a Sequential or functional model (a subclassed "
            "tf.keras.Model cannot be read as data); build it with tf.keras.Sequential([...]) "
            "or tf.keras.Model(inputs, outputs)"
        )
    layers = _build_layers(ordered, input_shape)
    layers = _attach_weights(layers, weights)
    name = config.get("name") if isinstance(config.get("name"), str) else top.lower()
    model_class = "Sequential" if top == "Sequential" else "Functional"
    return Architecture(name=name, model_class=model_class, input_shape=input_shape, layers=layers)


def compare_structure(
    student: Architecture, reference: Architecture, *, dropout: bool = False
) -> list[str]:
    """The semantic differences between two models, one message each (empty if equivalent).

    Equivalent spellings compare equal: an activation given as an argument or as a following
    Activation/Softmax/ReLU layer, `Input(...)` or `input_shape=`/`input_dim=`, a Flatten of an
    input that is already flat. Dropout layers are compared (presence, position, rate) only if
    `dropout` is true. Defaults to `False`: they are identities when predicting.
    Messages use the student's layer numbers and names.
    """
    out: list[str] = []
    if student.input_shape[1:] != reference.input_shape[1:]:
        out.append(
            f"input shape is {_fmt(student.input_shape)}; "
            f"the reference takes {_fmt(reference.input_shape)}"
        )
    mine, theirs = _canonical(student, dropout), _canonical(reference, dropout)
    outputs = (_output_step(mine), _output_step(theirs))
    # Align identical steps first (so an output layer meets the reference's output layer),
    # then, inside each stretch that differs, steps of the same kind.
    for op, i1, i2, j1, j2 in _opcodes(mine, theirs, lambda s: s.describe()):
        if op == "equal":
            out += _compare_steps(mine, theirs, i1, i2, j1, outputs)
            continue
        part_a, part_b = mine[i1:i2], theirs[j1:j2]
        for op2, a1, a2, b1, b2 in _opcodes(part_a, part_b, lambda s: s.kind):
            if op2 == "equal":
                out += _compare_steps(mine, theirs, i1 + a1, i1 + a2, j1 + b1, outputs)
            elif op2 == "replace" and a2 - a1 == b2 - b1:
                for a, b in zip(part_a[a1:a2], part_b[b1:b2], strict=True):
                    out.append(f"{a.where}: {a.describe()}; the reference has {b.describe()} here")
            else:
                out += _extra_and_missing(mine, theirs, i1 + a1, i1 + a2, j1 + b1, j1 + b2)
    if student.params != reference.params:
        out.append(
            f"the model has {student.params:,} parameters; the reference has {reference.params:,}"
        )
    return out


def _opcodes(a: list, b: list, key) -> list[tuple[str, int, int, int, int]]:
    matcher = difflib.SequenceMatcher(
        None, [key(s) for s in a], [key(s) for s in b], autojunk=False
    )
    return matcher.get_opcodes()


def _compare_steps(mine, theirs, i1, i2, j1, outputs) -> list[str]:
    out = []
    for i in range(i1, i2):
        j = j1 + i - i1
        out += _compare_step(mine[i], theirs[j], (i, j) == outputs)
    return out


def _extra_and_missing(mine, theirs, i1, i2, j1, j2) -> list[str]:
    out = []
    for a in mine[i1:i2]:
        out.append(f"{a.where}: {a.describe()} is extra; the reference has no such layer")
    if j2 > j1:
        missing = ", ".join(b.describe() for b in theirs[j1:j2])
        if i1 > 0:
            place = f"after {mine[i1 - 1].last_where}"
        else:
            place = f"before {mine[0].where}" if mine else "in the model"
        out.append(f"missing {place}: the reference has {missing} there")
    return out


# --- reading the JSON -----------------------------------------------------------------------


def _load_json(json_text: str) -> dict:
    if isinstance(json_text, bytes | bytearray):
        try:
            json_text = json_text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ModelRefused(f"the model description is not UTF-8 text ({e})") from None
    if not isinstance(json_text, str):
        raise ModelRefused(f"the model description is a {type(json_text).__name__}, not JSON text")
    size = len(json_text.encode("utf-8", errors="replace"))
    if size > MAX_JSON_BYTES:
        raise ModelRefused(
            f"the model description is {size:,} bytes; the grader reads at most "
            f"{MAX_JSON_BYTES:,} (a model of {MAX_LAYERS} layers needs far less)"
        )
    try:
        model = json.loads(json_text)
    except RecursionError:
        raise ModelRefused(
            "the model description is nested too deeply to be a Keras model"
        ) from None
    except ValueError as e:
        raise ModelRefused(f"the model description is not valid JSON ({e})") from None
    if not isinstance(model, dict):
        raise ModelRefused("the model description is not a JSON object; expected model.to_json()")
    return model


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ModelRefused(f"{what} is missing or not a string; expected model.to_json()")
    return value


def _layer_entries(config: Any) -> list[dict]:
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ModelRefused("the model description has no list of layers; expected model.to_json()")
    entries = config["layers"]
    if len(entries) > MAX_LAYERS + 1:  # +1: the InputLayer Keras adds
        raise ModelRefused(
            f"the model has {len(entries)} layers; the grader reads at most {MAX_LAYERS}"
        )
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ModelRefused(f"entry {k} of the model's layers is malformed (no config)")
        _text(entry.get("class_name"), f"entry {k} of the model's layers: `class_name`")
    return entries


def _builtin(entry: dict, where: str, kind: str, *, top_level: bool = False) -> None:
    """Refuse a custom class that merely borrows a built-in name (its code would differ)."""
    module = entry.get("module")
    registered = entry.get("registered_name")
    known_module = module is None or (
        isinstance(module, str)
        and (module in ("keras", "keras.layers", "keras.models") or module.startswith("keras.src."))
    )
    known_name = registered is None or (top_level and registered == kind)
    if not (known_module and known_name):
        origin = registered if registered is not None else module
        raise ModelRefused(
            f"{where} is a custom `{kind}` class (`{origin}`), not the built-in Keras one; "
            f"the grader only reads built-in layers: {_HINT}"
        )


def _name(entry: dict) -> str:
    name = entry["config"].get("name", entry.get("name"))
    return name if isinstance(name, str) else entry["class_name"].lower()


def _label(entry: dict, index: int) -> str:
    return f"layer {index} (`{_name(entry)}`)"


def _allow_listed(entries: list[dict]) -> None:
    index = 0
    for entry in entries:
        kind = entry["class_name"]
        if kind != "InputLayer":
            index += 1
        where = _label(entry, index) if kind != "InputLayer" else "the input layer"
        if kind == "Lambda":
            raise ModelRefused(
                f"{where} is a Lambda layer: it runs arbitrary code, so the grader refuses it; "
                f"{_HINT}"
            )
        if kind in ("Sequential", "Functional", "Model"):
            raise ModelRefused(
                f"{where} is a whole model used as a layer; the grader reads one flat chain of "
                f"layers: put its layers directly in the model ({_HINT})"
            )
        if kind not in _ALLOWED:
            raise ModelRefused(
                f"{where} is a {kind} layer, which the grader cannot compute; it reads "
                "Dense, Flatten, Dropout, Activation, Softmax, ReLU and Input layers"
            )
        _builtin(entry, where, kind)


def _sequential(model: dict, config: dict, entries: list[dict]) -> tuple[list[dict], Shape]:
    _allow_listed(entries)
    rest = list(entries)
    shape = None
    if rest and rest[0]["class_name"] == "InputLayer":
        shape = _input_shape(rest.pop(0)["config"], "the input layer", batch_first=True)
    elif rest:
        shape = _input_shape(rest[0]["config"], _label(rest[0], 1), batch_first=False)
    for k, entry in enumerate(rest, 1):
        if entry["class_name"] == "InputLayer":
            raise ModelRefused(
                f"{_label(entry, k)} is an Input layer in the middle of the model; "
                "only the first layer may be an Input"
            )
    if shape is None:
        build = config.get("build_input_shape")
        if build is None and isinstance(model.get("build_config"), dict):
            build = model["build_config"].get("input_shape")
        if build is not None:
            shape = _shape(build, "the model's build input shape", with_batch=True)
    if shape is None:
        raise ModelRefused(
            "the model has no input shape: it was never built, so it has no weights. Give it "
            "an input shape (`tf.keras.Input((784,))` as the first layer, or "
            "`input_shape=(28, 28)` on the first layer) or train it before handing it in"
        )
    return rest, shape


def _input_shape(config: dict, where: str, *, batch_first: bool) -> Shape | None:
    """The input shape a first layer (or an InputLayer) declares, all Keras spellings alike."""
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return _shape(config[key], f"{where}: `{key}`", with_batch=True)
    for key in ("shape", "input_shape"):
        if config.get(key) is not None:
            return _shape(config[key], f"{where}: `{key}`", with_batch=False)
    if config.get("input_dim") is not None:
        return _shape([config["input_dim"]], f"{where}: `input_dim`", with_batch=False)
    if batch_first:
        raise ModelRefused(f"{where} has no shape; give it one: tf.keras.Input((784,))")
    return None


def _shape(value: Any, where: str, *, with_batch: bool) -> Shape:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ModelRefused(f"{where} is {value!r}; expected a shape such as (None, 784)")
    dims = list(value)
    if with_batch:
        if not dims:
            raise ModelRefused(f"{where} is empty; expected a shape such as (None, 784)")
        dims = dims[1:]
    if not dims or len(dims) + 1 > MAX_RANK:
        raise ModelRefused(
            f"{where} has {len(dims)} dimensions besides the batch; the grader reads 1 to "
            f"{MAX_RANK - 1}"
        )
    for d in dims:
        if d is None:
            raise ModelRefused(
                f"{where} is {_fmt((None, *dims))}: every dimension but the batch must be known"
            )
        if not isinstance(d, int) or isinstance(d, bool) or d <= 0:
            raise ModelRefused(f"{where} has the dimension {d!r}; expected positive integers")
    if math.prod(dims) > MAX_PARAMS:
        raise ModelRefused(f"{where} is {_fmt((None, *dims))}: too large to grade")
    return (None, *dims)


def _functional(config: dict, entries: list[dict]) -> tuple[list[dict], Shape]:
    """Order a functional model's layers from its input to its output; refuse anything but a chain."""
    by_name: dict[str, dict] = {}
    for entry in entries:
        name = entry.get("name", entry["config"].get("name"))
        if not isinstance(name, str) or name in by_name:
            raise ModelRefused(f"the model has a layer with a missing or repeated name ({name!r})")
        by_name[name] = entry
    ins = _endpoints(config.get("input_layers"), "inputs")
    outs = _endpoints(config.get("output_layers"), "outputs")
    if ins not in by_name or by_name[ins]["class_name"] != "InputLayer":
        raise ModelRefused(f"the model's input `{ins}` is not an Input layer of the model")
    if outs not in by_name:
        raise ModelRefused(f"the model's output `{outs}` is not a layer of the model")

    feeds: dict[str, str] = {}  # producer -> consumer
    for entry in entries:
        if entry["class_name"] == "InputLayer":
            continue
        name = entry.get("name", entry["config"].get("name"))
        source = _single_input(entry, name)
        if source not in by_name:
            raise ModelRefused(f"layer `{name}` reads from `{source}`, which is not in the model")
        if source in feeds:
            raise ModelRefused(
                f"`{source}` feeds both `{feeds[source]}` and `{name}`; the grader reads only a "
                "chain, where each layer feeds the next"
            )
        feeds[source] = name
    chain, at = [], ins
    while at in feeds:
        at = feeds[at]
        chain.append(by_name[at])
    if at != outs or len(chain) + 1 != len(entries):
        raise ModelRefused(
            "the model is not a single chain from its input to its output (a layer is left "
            "over, or the output is not the end of the chain); the grader reads only a chain"
        )
    shape = _input_shape(by_name[ins]["config"], "the input layer", batch_first=True)
    return chain, shape


def _endpoints(value: Any, what: str) -> str:
    # Keras 3 writes one input as ["x", 0, 0]; several (or Keras 2) as [["x", 0, 0], ...].
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        if value[1:] != [0, 0]:
            raise ModelRefused(f"the model's {what} are not a plain chain")
        return value[0]
    raise ModelRefused(
        f"the model has several {what} (or none); the grader reads a model with one input "
        "and one output"
    )


def _single_input(entry: dict, name: str) -> str:
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1:
        raise ModelRefused(
            f"layer `{name}` is called {len(nodes) if isinstance(nodes, list) else 0} times; "
            "the grader reads a chain where each layer is called once"
        )
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [tensor], "kwargs": {...}}
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            raise ModelRefused(f"layer `{name}` takes several inputs; the grader reads a chain")
        history = (args[0].get("config") or {}).get("keras_history")
    elif isinstance(node, list) and len(node) == 1 and isinstance(node[0], list):
        history = node[0][:3]  # Keras 2: [[name, node_index, tensor_index, kwargs]]
        kwargs = node[0][3] if len(node[0]) > 3 else {}
    else:
        raise ModelRefused(f"layer `{name}` takes several inputs; the grader reads a chain")
    _call_kwargs(kwargs, name)
    if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
        raise ModelRefused(f"layer `{name}`: its input is not a layer's output")
    if history[1:] != [0, 0]:
        raise ModelRefused(f"layer `{name}` reads a second call or output of `{history[0]}`")
    return history[0]


def _call_kwargs(kwargs: Any, name: str) -> None:
    if not isinstance(kwargs, dict):
        raise ModelRefused(f"layer `{name}` is called with malformed arguments")
    for key, value in kwargs.items():
        if key == "training" and value is True:
            raise ModelRefused(
                f"layer `{name}` is called with training=True, so it behaves as in training "
                "even when predicting; remove training=True"
            )
        if key in ("training", "mask") and value in (None, False):
            continue  # Keras records these for an ordinary call
        raise ModelRefused(f"layer `{name}` is called with `{key}={value!r}`; remove it")


# --- layers and weights ---------------------------------------------------------------------


def _activation(value: Any, where: str) -> str:
    if value is None:
        return "linear"
    if isinstance(value, dict):  # Keras 3 writes a function it does not know as a dict
        name = value.get("config")
        raise ModelRefused(
            f"{where} uses a custom activation function (`{name}`), which the grader cannot "
            f"compute; use one of {', '.join(ACTIVATIONS)}"
        )
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ModelRefused(
            f"{where}: activation `{value}` is not one the grader can compute; use one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    return value


def _positive_int(value: Any, where: str, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelRefused(f"{where}: `{what}` is {value!r}; expected a positive integer")
    return value


def _build_layers(entries: list[dict], input_shape: Shape) -> tuple[Layer, ...]:
    if not entries:
        raise ModelRefused("the model has no layers besides its input")
    if len(entries) > MAX_LAYERS:
        raise ModelRefused(
            f"the model has {len(entries)} layers; the grader reads at most {MAX_LAYERS}"
        )
    layers, shape, total = [], input_shape, 0
    for index, entry in enumerate(entries, 1):
        config, kind = entry["config"], entry["class_name"]
        where = _label(entry, index)
        common = dict(index=index, name=_name(entry), kind=kind, input_shape=shape)
        if kind == "Dense":
            units = _positive_int(config.get("units"), where, "units")
            use_bias = config.get("use_bias", True)
            if not isinstance(use_bias, bool):
                raise ModelRefused(f"{where}: `use_bias` is {use_bias!r}; expected true or false")
            if config.get("lora_rank") or config.get("quantization_config") is not None:
                raise ModelRefused(f"{where} is a LoRA or quantized Dense layer; use a plain Dense")
            params = shape[-1] * units + (units if use_bias else 0)
            total += params
            if total > MAX_PARAMS:
                raise ModelRefused(
                    f"the model has more than {MAX_PARAMS:,} parameters (at {where}); "
                    "the grader reads smaller models"
                )
            act = _activation(config.get("activation"), where)
            layer = Layer(
                **common,
                output_shape=(*shape[:-1], units),
                params=params,
                units=units,
                activation=act,
                use_bias=use_bias,
            )
        elif kind == "Flatten":
            fmt = config.get("data_format") or "channels_last"
            if fmt not in ("channels_last", "channels_first"):
                raise ModelRefused(f"{where}: `data_format` is {fmt!r}")
            layer = Layer(
                **common,
                output_shape=(None, math.prod(shape[1:])),
                params=0,
                channels_first=fmt == "channels_first",
            )
        elif kind == "Dropout":
            rate = config.get("rate")
            if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate < 1:
                raise ModelRefused(f"{where}: `rate` is {rate!r}; expected a number in [0, 1)")
            layer = Layer(**common, output_shape=shape, params=0, rate=float(rate))
        elif kind == "Activation":
            act = _activation(config.get("activation"), where)
            layer = Layer(**common, output_shape=shape, params=0, activation=act)
        elif kind == "Softmax":
            axis = config.get("axis", -1)
            if axis not in (-1, [-1], len(shape) - 1, [len(shape) - 1]):
                raise ModelRefused(
                    f"{where} takes the softmax over axis {axis}; the grader computes it over "
                    "the last axis (axis=-1) only"
                )
            layer = Layer(**common, output_shape=shape, params=0, activation="softmax")
        elif kind == "ReLU":
            plain = (
                config.get("max_value") is None
                and not config.get("negative_slope")
                and not config.get("threshold")
            )
            if not plain:
                raise ModelRefused(
                    f"{where} is a ReLU with max_value, negative_slope or threshold; the grader "
                    "computes only the plain ReLU() (max(x, 0))"
                )
            layer = Layer(**common, output_shape=shape, params=0, activation="relu")
        else:  # InputLayer past the first layer; other kinds were refused earlier
            raise ModelRefused(f"{where} is a {kind} layer where the grader expects a chain")
        layers.append(layer)
        shape = layer.output_shape
    return tuple(layers)


def _attach_weights(layers: tuple[Layer, ...], weights: list[np.ndarray]) -> tuple[Layer, ...]:
    needed = []  # (layer, part, expected shape, meaning)
    for la in layers:
        if la.kind == "Dense":
            needed.append((la, "kernel", (la.input_shape[-1], la.units), "(inputs, units)"))
            if la.use_bias:
                needed.append((la, "bias", (la.units,), "(units,)"))
    if not isinstance(weights, list | tuple):
        raise ModelRefused(f"the weights are a {type(weights).__name__}; expected a list of arrays")
    if len(weights) != len(needed):
        got = ", ".join(_shape_of(w) for w in weights) or "none"
        want = ", ".join(f"`{la.name}` {part} {_fmt(s)}" for la, part, s, _ in needed) or "none"
        raise ModelRefused(
            f"got {len(weights)} weight arrays ({got}); the layers need {len(needed)}: {want}"
        )
    arrays: dict[tuple[int, str], np.ndarray] = {}
    for w, (la, part, expected, meaning) in zip(weights, needed, strict=True):
        if not isinstance(w, np.ndarray) or w.dtype.kind not in "fiu":
            what = w.dtype if isinstance(w, np.ndarray) else type(w).__name__
            raise ModelRefused(f"{la.where}: the {part} is {what}, not an array of numbers")
        if w.shape != expected:
            raise ModelRefused(
                f"{la.where}: {part} has shape {_fmt(w.shape)}; expected {_fmt(expected)} = "
                f"{meaning}"
            )
        copy = np.array(w, copy=True)
        copy.flags.writeable = False
        arrays[la.index, part] = copy
    return tuple(
        replace(la, kernel=arrays.get((la.index, "kernel")), bias=arrays.get((la.index, "bias")))
        if la.kind == "Dense"
        else la
        for la in layers
    )


def _shape_of(w: Any) -> str:
    return _fmt(w.shape) if isinstance(w, np.ndarray) else type(w).__name__


# --- computing --------------------------------------------------------------------------------


def _apply(layer: Layer, x: np.ndarray) -> np.ndarray:
    if layer.kind == "Dense":
        y = x @ layer.kernel.astype(np.float64)
        if layer.bias is not None:
            y = y + layer.bias.astype(np.float64)
        return _activate(layer.activation, y)
    if layer.kind == "Flatten":
        if layer.channels_first and x.ndim > 2:  # as Keras: move channels last, then flatten
            x = np.transpose(x, (0, *range(2, x.ndim), 1))
        return x.reshape(x.shape[0], -1)
    if layer.kind == "Dropout":
        return x
    return _activate(layer.activation, x)


def _activate(name: str | None, z: np.ndarray) -> np.ndarray:
    if name in (None, "linear"):
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        # 1 / (1 + e^-z) without overflow for large |z|
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise AssertionError(f"activation {name!r} passed validation")  # pragma: no cover


def _fmt(shape: tuple) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


# --- comparing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One semantic step: Dense (with its activation folded in), Flatten, Activation, Dropout."""

    kind: str
    layer: Layer
    activation: str | None = None
    act_layer: Layer | None = None  # the layer that set the activation, if not `layer`

    @property
    def where(self) -> str:
        return self.layer.where

    @property
    def last_where(self) -> str:
        return (self.act_layer or self.layer).where

    def describe(self) -> str:
        la = self.layer
        if self.kind == "Dense":
            bias = "" if la.use_bias else ", no bias"
            return f"Dense({la.units}, {self.activation}{bias})"
        return la.describe()


def _canonical(arch: Architecture, dropout: bool) -> list[_Step]:
    steps: list[_Step] = []
    for la in arch.layers:
        if la.kind == "Dropout":
            if dropout:
                steps.append(_Step("Dropout", la))
        elif la.kind == "Flatten":
            if len(la.input_shape) > 2:  # flattening a flat input does nothing
                steps.append(_Step("Flatten", la))
        elif la.kind in _ACTIVATION_LAYERS:
            if la.activation == "linear":
                continue
            prev = steps[-1] if steps else None
            if prev is not None and prev.kind == "Dense" and prev.activation == "linear":
                steps[-1] = replace(prev, activation=la.activation, act_layer=la)
            else:
                steps.append(_Step("Activation", la, activation=la.activation))
        else:
            steps.append(_Step("Dense", la, activation=la.activation))
    return steps


def _output_step(steps: list[_Step]) -> int | None:
    """The step that sets the model's output activation: the last Dense or Activation."""
    for i in range(len(steps) - 1, -1, -1):
        if steps[i].kind in ("Dense", "Activation"):
            return i
    return None


def _compare_step(a: _Step, b: _Step, is_output: bool) -> list[str]:
    la, lb = a.layer, b.layer
    out = []
    if a.kind == "Dense" and la.units != lb.units:
        out.append(f"{a.where}: Dense with {la.units} units; the reference has {lb.units}")
    if a.kind in ("Dense", "Activation") and a.activation != b.activation:
        act_where = (a.act_layer or la).where
        what = "output activation" if is_output else "activation"
        out.append(f"{act_where}: {what} is {a.activation}; the reference uses {b.activation}")
    if a.kind == "Dense" and la.use_bias != lb.use_bias:
        has = (
            "has no bias; the reference has one"
            if lb.use_bias
            else "has a bias; the reference has none"
        )
        out.append(f"{a.where}: {has}")
    if a.kind == "Dropout" and la.rate != lb.rate:
        out.append(f"{a.where}: Dropout rate {la.rate:g}; the reference uses {lb.rate:g}")
    if a.kind == "Dense" and la.units == lb.units:
        if la.output_shape[1:] != lb.output_shape[1:]:
            out.append(
                f"{a.where}: output shape {_fmt(la.output_shape)}; the reference has "
                f"{_fmt(lb.output_shape)}"
            )
        elif la.params != lb.params:
            out.append(
                f"{a.where}: {la.params:,} parameters; the reference has {lb.params:,} "
                f"(its input has {la.input_shape[-1]} features; the reference's has "
                f"{lb.input_shape[-1]})"
            )
    if a.kind == "Flatten" and la.output_shape[1:] != lb.output_shape[1:]:
        out.append(
            f"{a.where}: output shape {_fmt(la.output_shape)}; the reference has "
            f"{_fmt(lb.output_shape)}"
        )
    return out
