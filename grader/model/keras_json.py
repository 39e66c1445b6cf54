"""Reading `model.to_json()` as data: the allow-list, and the chain of layer entries in order.

Never deserializes anything executable; everything refused raises `ModelRefused` with a message
for the student about the layer they wrote.
"""

from __future__ import annotations

import json
import math
from typing import Any

from grader.model.architecture import (
    ALLOWED,
    HINT,
    MAX_JSON_BYTES,
    MAX_LAYERS,
    MAX_PARAMS,
    MAX_RANK,
    ModelRefused,
    Shape,
    fmt,
)


def load_json(json_text: str) -> dict:
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


def text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ModelRefused(f"{what} is missing or not a string; expected model.to_json()")
    return value


def layer_entries(config: Any) -> list[dict]:
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
        text(entry.get("class_name"), f"entry {k} of the model's layers: `class_name`")
    return entries


def builtin(entry: dict, where: str, kind: str, *, top_level: bool = False) -> None:
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
            f"the grader only reads built-in layers: {HINT}"
        )


def name_of(entry: dict) -> str:
    name = entry["config"].get("name", entry.get("name"))
    return name if isinstance(name, str) else entry["class_name"].lower()


def label(entry: dict, index: int) -> str:
    return f"layer {index} (`{name_of(entry)}`)"


def allow_listed(entries: list[dict]) -> None:
    index = 0
    for entry in entries:
        kind = entry["class_name"]
        if kind != "InputLayer":
            index += 1
        where = label(entry, index) if kind != "InputLayer" else "the input layer"
        if kind == "Lambda":
            raise ModelRefused(
                f"{where} is a Lambda layer: it runs arbitrary code, so the grader refuses it; "
                f"{HINT}"
            )
        if kind in ("Sequential", "Functional", "Model"):
            raise ModelRefused(
                f"{where} is a whole model used as a layer; the grader reads one flat chain of "
                f"layers: put its layers directly in the model ({HINT})"
            )
        if kind not in ALLOWED:
            raise ModelRefused(
                f"{where} is a {kind} layer, which the grader cannot compute; it reads "
                "Dense, Flatten, Dropout, Activation, Softmax, ReLU and Input layers"
            )
        builtin(entry, where, kind)


def sequential(model: dict, config: dict, entries: list[dict]) -> tuple[list[dict], Shape]:
    allow_listed(entries)
    rest = list(entries)
    shape = None
    if rest and rest[0]["class_name"] == "InputLayer":
        shape = _input_layer_shape(rest.pop(0)["config"], "the input layer")
    elif rest:
        shape = _input_shape(rest[0]["config"], label(rest[0], 1))
    for k, entry in enumerate(rest, 1):
        if entry["class_name"] == "InputLayer":
            raise ModelRefused(
                f"{label(entry, k)} is an Input layer in the middle of the model; "
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


def _input_layer_shape(config: dict, where: str) -> Shape:
    """The shape of an InputLayer, which must have one."""
    shape = _input_shape(config, where)
    if shape is None:
        raise ModelRefused(f"{where} has no shape; give it one: tf.keras.Input((784,))")
    return shape


def _input_shape(config: dict, where: str) -> Shape | None:
    """The input shape a first layer (or an InputLayer) declares, all Keras spellings alike."""
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return _shape(config[key], f"{where}: `{key}`", with_batch=True)
    for key in ("shape", "input_shape"):
        if config.get(key) is not None:
            return _shape(config[key], f"{where}: `{key}`", with_batch=False)
    if config.get("input_dim") is not None:
        return _shape([config["input_dim"]], f"{where}: `input_dim`", with_batch=False)
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
                f"{where} is {fmt((None, *dims))}: every dimension but the batch must be known"
            )
        if not isinstance(d, int) or isinstance(d, bool) or d <= 0:
            raise ModelRefused(f"{where} has the dimension {d!r}; expected positive integers")
    if math.prod(dims) > MAX_PARAMS:
        raise ModelRefused(f"{where} is {fmt((None, *dims))}: too large to grade")
    return (None, *dims)


def functional(config: dict, entries: list[dict]) -> tuple[list[dict], Shape]:
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
    shape = _input_layer_shape(by_name[ins]["config"], "the input layer")
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
