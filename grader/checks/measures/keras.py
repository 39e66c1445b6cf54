"""Measures of a Keras model: the student's model rebuilt from data, its structure against
the spec's, and what the sandbox reported of compiling, saving, the schedule and the logs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.checks.base import Evidence
from grader.model.keras import (
    Architecture,
    ModelRefused,
    compare_structure,
    parse_architecture,
)
from grader.run.tb_events import parse_event_files


def student_model(ev: Evidence) -> Architecture:
    """The student's model, validated and rebuilt (once per submission); ModelRefused if not
    gradeable, ValueError naming what is missing."""
    if "keras_model" not in ev.cache:
        ev.cache["keras_model"] = _rebuild(ev)
    found = ev.cache["keras_model"]
    if isinstance(found, Exception):
        raise found
    return found


def _rebuild(ev: Evidence) -> Architecture | Exception:
    info = ev.facts.get("keras")
    name = ev.assignment.collect.keras_model or "model"
    if not info:
        reason = (
            ev.facts.get("missing", {}).get(name) or ev.facts.get("keras_error") or "not defined"
        )
        return ValueError(f"no Keras model `{name}` in your code: {reason}")
    if "json" not in info:
        return ValueError(info.get("error", "the model could not be exported"))
    weights = [ev.arrays[f"keras.w{i}"] for i in range(int(info.get("n_weights", 0)))]
    try:
        return parse_architecture(info["json"], weights)
    except ModelRefused as exc:  # kept, and raised to every check that asks
        return exc


def reference_model(input_shape: list[int], layers: list[dict[str, Any]]) -> Architecture:
    """The reference architecture from the spec's layer list (Keras class names and configs),
    through the same validation as a student's model."""
    config = [
        {
            "class_name": "InputLayer",
            "config": {"name": "input", "batch_shape": [None, *input_shape]},
        }
    ]
    shape, weights = list(input_shape), []
    for i, layer in enumerate(layers, start=1):
        layer = dict(layer)
        kind = layer.pop("class_name")
        config.append({"class_name": kind, "config": {"name": f"reference_{i}", **layer}})
        if kind == "Flatten":
            shape = [int(np.prod(shape))]
        elif kind == "Dense":
            weights.append(np.zeros((shape[-1], layer["units"])))
            if layer.get("use_bias", True):
                weights.append(np.zeros(layer["units"]))
            shape = [*shape[:-1], layer["units"]]
    text = json.dumps(
        {"class_name": "Sequential", "config": {"name": "reference", "layers": config}}
    )
    return parse_architecture(text, weights)


def structure_differences(
    model: Architecture, input_shape: list[int], layers: list[dict[str, Any]], dropout: bool
) -> tuple[Architecture, list[str]]:
    """The reference model of the spec and how the student's model differs from it (one
    entry per difference, in the student's terms; empty when they are equivalent)."""
    reference = reference_model(input_shape, layers)
    return reference, compare_structure(model, reference, dropout=dropout)


def name_of(entry: Any) -> str:
    """A loss, optimizer or metric as a name, whether given as a string or an object."""
    if isinstance(entry, str):
        return entry.lower()
    if isinstance(entry, dict):
        cfg = entry.get("config") or {}
        return str(cfg.get("name") or entry.get("class_name", "")).lower()
    return str(entry).lower()


def _snake(name: str) -> str:
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out.replace("s_g_d", "sgd")


@dataclass(frozen=True)
class Compiled:
    """What `model.compile` was given, as names."""

    loss: str
    optimizer: str
    metrics: list[str] = field(default_factory=list)


def compiled_with(ev: Evidence) -> Compiled | None:
    """The loss, optimizer and metrics the model was compiled with; None if never compiled."""
    info = ev.facts.get("keras") or {}
    compiled = info.get("compile")
    if not compiled:
        return None
    opt = info.get("optimizer", {})
    optimizer = _snake(opt.get("class", "")) if opt else name_of(compiled.get("optimizer"))
    metrics = [name_of(m) for m in compiled.get("metrics") or []]
    return Compiled(name_of(compiled.get("loss")), optimizer, metrics)


def saved_models(ev: Evidence) -> list[dict[str, Any]]:
    """Each saved model file, loaded back in the sandbox: `file`, and `error`, or `max_diff`
    (max |prediction before - after|, None for another output shape) and `shape`."""
    return list((ev.facts.get("keras") or {}).get("saved") or [])


@dataclass(frozen=True)
class LearningRates:
    """The learning rate schedule of the student's optimizer, sampled in the sandbox."""

    kind: str | None
    steps: list[int]
    values: list[float]
    config: dict[str, Any]


def learning_rates(ev: Evidence) -> LearningRates | None:
    """The schedule's class and its values at the sampled steps; None for a fixed rate."""
    sched = (ev.facts.get("keras") or {}).get("schedule")
    if not sched:
        return None
    return LearningRates(
        sched.get("class"), list(sched["steps"]), list(sched["values"]), sched.get("config", {})
    )


def decayed_rate(
    step: int, initial: float, decay_steps: int, decay_rate: float, staircase: bool
) -> float:
    """Keras' ExponentialDecay: initial * rate^(step / decay_steps), floored with staircase."""
    power = step / decay_steps
    return initial * decay_rate ** (math.floor(power) if staircase else power)


def event_scalars(ev: Evidence) -> dict[str, list] | None:
    """The scalars of the TensorBoard event files the run wrote, by tag; None if it wrote
    none. Raises EventFileError if they cannot be read."""
    paths = (ev.facts.get("keras") or {}).get("event_files") or []
    if not paths:
        return None
    files = {
        p: ev.arrays[f"tb:{i}"].tobytes() for i, p in enumerate(paths) if f"tb:{i}" in ev.arrays
    }
    return parse_event_files(files)


def scalar_series(scalars: dict[str, list], tag: str, split: str) -> tuple[str, list] | None:
    """The first logged series `split/tag` as (its name, its (step, value) points), or None."""
    wanted = [k for k in scalars if k.endswith(f"{split}/{tag}")]
    return (wanted[0], scalars[wanted[0]]) if wanted else None
