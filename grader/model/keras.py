"""The trusted side of grading a Keras model: an allow-listed description, read as data.

The sandboxed child hands back `model.to_json()` and `model.get_weights()`. This module reads
them as plain data: it never imports TensorFlow or Keras and never deserializes anything
executable (no `model_from_json`, no `from_config`, no marshalled Lambda code). It accepts only
an allow-list of layers (InputLayer, Flatten, Dense, Dropout, Activation, Softmax, ReLU) in a
chain (a Sequential model, or a functional model where each layer feeds the next), checks the
weight arrays against the layers, and computes the model's output itself in float64 numpy
(the one engine, `grader.model.engine`).

Everything it refuses raises `ModelRefused`, whose message speaks to the student about the
layer they wrote ("layer 2 (`lambda`) is a Lambda layer: ...").

Layers are numbered from 1 in the order the student wrote them; the input layer that Keras 3
adds in front of a built Sequential model (or the `Input` of a functional model) is not
counted, as in `model.summary()`.

This module is the public face: the data types live in `architecture`, reading the JSON in
`keras_json`, the structural comparison in `structure`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from grader.model import keras_json as js
from grader.model.architecture import (
    ACTIVATIONS,
    MAX_JSON_BYTES,
    MAX_LAYERS,
    MAX_PARAMS,
    MAX_RANK,
    Architecture,
    Layer,
    ModelRefused,
    Shape,
    dims,
    fmt,
)
from grader.model.structure import compare_structure

__all__ = [
    "ACTIVATIONS",
    "MAX_JSON_BYTES",
    "MAX_LAYERS",
    "MAX_PARAMS",
    "MAX_RANK",
    "Architecture",
    "Layer",
    "ModelRefused",
    "compare_structure",
    "parse_architecture",
]


def parse_architecture(json_text: str, weights: list[np.ndarray]) -> Architecture:
    """Validate `model.to_json()` and `model.get_weights()` against the allow-list.

    Args:
        json_text: the JSON text Keras 3 (or Keras 2) wrote for a Sequential or functional model.
        weights: the weight arrays, in `get_weights()` order (kernel then bias of each Dense).

    Raises ModelRefused for anything outside the allow-list, a model that is not a chain, a
    model over the size caps (`MAX_JSON_BYTES`, `MAX_LAYERS`, `MAX_PARAMS`), or weight arrays
    that do not fit the layers; the message names the layer, what was expected and what was got.
    """
    model = js.load_json(json_text)
    top = js.text(model.get("class_name"), "the model's `class_name`")
    config: Any = model.get("config")  # checked to be a dict by js.layer_entries
    if top in ("Sequential", "Functional", "Model"):
        js.builtin(model, "the model", top, top_level=True)
    if top == "Sequential":
        entries = js.layer_entries(config)
        ordered, input_shape = js.sequential(model, config, entries)
    elif top in ("Functional", "Model"):
        entries = js.layer_entries(config)
        js.allow_listed(entries)
        ordered, input_shape = js.functional(config, entries)
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


def _dense(config: dict[str, Any], where: str, shape: Shape, total: int) -> dict[str, Any]:
    units = _positive_int(config.get("units"), where, "units")
    use_bias = config.get("use_bias", True)
    if not isinstance(use_bias, bool):
        raise ModelRefused(f"{where}: `use_bias` is {use_bias!r}; expected true or false")
    if config.get("lora_rank") or config.get("quantization_config") is not None:
        raise ModelRefused(f"{where} is a LoRA or quantized Dense layer; use a plain Dense")
    params = dims(shape)[-1] * units + (units if use_bias else 0)
    if total + params > MAX_PARAMS:
        raise ModelRefused(
            f"the model has more than {MAX_PARAMS:,} parameters (at {where}); "
            "the grader reads smaller models"
        )
    act = _activation(config.get("activation"), where)
    return dict(
        output_shape=(*shape[:-1], units),
        params=params,
        units=units,
        activation=act,
        use_bias=use_bias,
    )


def _flatten(config: dict[str, Any], where: str, shape: Shape, total: int) -> dict[str, Any]:
    data_format = config.get("data_format") or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ModelRefused(f"{where}: `data_format` is {data_format!r}")
    return dict(
        output_shape=(None, math.prod(dims(shape))),
        params=0,
        channels_first=data_format == "channels_first",
    )


def _dropout(config: dict[str, Any], where: str, shape: Shape, total: int) -> dict[str, Any]:
    rate = config.get("rate")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate < 1:
        raise ModelRefused(f"{where}: `rate` is {rate!r}; expected a number in [0, 1)")
    return dict(output_shape=shape, params=0, rate=float(rate))


def _activation_layer(
    config: dict[str, Any], where: str, shape: Shape, total: int
) -> dict[str, Any]:
    act = _activation(config.get("activation"), where)
    return dict(output_shape=shape, params=0, activation=act)


def _softmax(config: dict[str, Any], where: str, shape: Shape, total: int) -> dict[str, Any]:
    axis = config.get("axis", -1)
    if axis not in (-1, [-1], len(shape) - 1, [len(shape) - 1]):
        raise ModelRefused(
            f"{where} takes the softmax over axis {axis}; the grader computes it over "
            "the last axis (axis=-1) only"
        )
    return dict(output_shape=shape, params=0, activation="softmax")


def _relu(config: dict[str, Any], where: str, shape: Shape, total: int) -> dict[str, Any]:
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
    return dict(output_shape=shape, params=0, activation="relu")


# Each allow-listed kind past the input: validate its config and give the Layer's fields
# (a builder gets the config, the layer's label, its input shape and the parameters so far).
BUILDERS: dict[str, Callable[[dict[str, Any], str, Shape, int], dict[str, Any]]] = {
    "Dense": _dense,
    "Flatten": _flatten,
    "Dropout": _dropout,
    "Activation": _activation_layer,
    "Softmax": _softmax,
    "ReLU": _relu,
}


def _build_layers(entries: list[dict[str, Any]], input_shape: Shape) -> tuple[Layer, ...]:
    if not entries:
        raise ModelRefused("the model has no layers besides its input")
    if len(entries) > MAX_LAYERS:
        raise ModelRefused(
            f"the model has {len(entries)} layers; the grader reads at most {MAX_LAYERS}"
        )
    layers: list[Layer] = []
    shape, total = input_shape, 0
    for index, entry in enumerate(entries, 1):
        kind = entry["class_name"]
        where = js.label(entry, index)
        if kind not in BUILDERS:  # InputLayer past the first layer; others were refused earlier
            raise ModelRefused(f"{where} is a {kind} layer where the grader expects a chain")
        fields = BUILDERS[kind](entry["config"], where, shape, total)
        layer = Layer(index=index, name=js.name_of(entry), kind=kind, input_shape=shape, **fields)
        layers.append(layer)
        shape, total = layer.output_shape, total + layer.params
    return tuple(layers)


def _attach_weights(layers: tuple[Layer, ...], weights: list[np.ndarray]) -> tuple[Layer, ...]:
    needed: list[tuple[Layer, str, Shape, str]] = []  # (layer, part, expected shape, meaning)
    for la in layers:
        if la.kind == "Dense":
            needed.append((la, "kernel", (la.input_shape[-1], la.units), "(inputs, units)"))
            if la.use_bias:
                needed.append((la, "bias", (la.units,), "(units,)"))
    if not isinstance(weights, list | tuple):
        raise ModelRefused(f"the weights are a {type(weights).__name__}; expected a list of arrays")
    if len(weights) != len(needed):
        got = ", ".join(_shape_of(w) for w in weights) or "none"
        want = ", ".join(f"`{la.name}` {part} {fmt(s)}" for la, part, s, _ in needed) or "none"
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
                f"{la.where}: {part} has shape {fmt(w.shape)}; expected {fmt(expected)} = {meaning}"
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
    return fmt(w.shape) if isinstance(w, np.ndarray) else type(w).__name__
