"""Checks of Keras assignments, in the trusted process, on what the sandbox handed back.

The student's model arrives as JSON text and weight arrays (see `_sandbox/keras_export.py`);
`_keras_model` validates it against an allow-list and rebuilds it in NumPy. Nothing the
student wrote is loaded here: no `.h5`, `.keras`, SavedModel, Lambda code or pickle.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from grader.checks.base import Evidence, Verdict
from grader.model.keras import Architecture, ModelRefused, compare_structure, parse_architecture
from grader.registry import check
from grader.run.tb_events import EventFileError, parse_event_files


def student_model(ev: Evidence) -> Architecture:
    """The student's model, validated and rebuilt (once per submission); ModelRefused if not
    gradeable, ValueError naming what is missing."""
    if "keras_model" not in ev.cache:
        info = ev.facts.get("keras")
        name = ev.assignment.collect.keras_model or "model"
        if not info:
            reason = (
                ev.facts.get("missing", {}).get(name)
                or ev.facts.get("keras_error")
                or "not defined"
            )
            ev.cache["keras_model"] = ValueError(f"no Keras model `{name}` in your code: {reason}")
        elif "json" not in info:
            ev.cache["keras_model"] = ValueError(
                info.get("error", "the model could not be exported")
            )
        else:
            weights = [ev.arrays[f"keras.w{i}"] for i in range(int(info.get("n_weights", 0)))]
            try:
                ev.cache["keras_model"] = parse_architecture(info["json"], weights)
            except ModelRefused as exc:
                ev.cache["keras_model"] = exc
    found = ev.cache["keras_model"]
    if isinstance(found, Exception):
        raise found
    return found


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


def _model_or_verdict(ev: Evidence) -> Architecture | Verdict:
    try:
        return student_model(ev)
    except ModelRefused as exc:
        return Verdict(0.0, f"your model cannot be graded: {exc}")
    except ValueError as exc:
        return Verdict(0.0, str(exc))


@check("model_structure", needs_task=True)
def check_model_structure(
    ev: Evidence, *, input_shape: list[int], layers: list[dict[str, Any]], dropout: bool = False
) -> Verdict:
    """The student's model has the reference's layers, units, activations, output shapes and
    parameter counts. Equivalent spellings pass (an activation as an argument or as a layer,
    `Input` or `input_shape`); with `dropout`, Dropout layers must match too."""
    model = _model_or_verdict(ev)
    if isinstance(model, Verdict):
        return model
    reference = reference_model(input_shape, layers)
    differences = compare_structure(model, reference, dropout=dropout)
    if differences:
        return Verdict(
            0.0, "\n".join(differences), expected=reference.summary(), got=model.summary()
        )
    return Verdict(1.0, f"the model matches the reference: {model.params:,} parameters")


def _name_of(entry: Any) -> str:
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


@check("compile_config", needs_task=True)
def check_compile_config(
    ev: Evidence, *, loss: list[str], optimizer: list[str], metrics: list[str] | None = None
) -> Verdict:
    """`model.compile` used an allowed loss, optimizer and metrics; a string or an object are
    equivalent (`'adam'` or `tf.keras.optimizers.Adam()`)."""
    info = ev.facts.get("keras") or {}
    compiled = info.get("compile")
    if not compiled:
        return Verdict(0.0, "the model was never compiled (model.compile(optimizer=..., loss=...))")
    problems = []
    got_loss = _name_of(compiled.get("loss"))
    if got_loss not in loss:
        problems.append(
            f"loss is {got_loss!r}; this assignment uses {' or '.join(map(repr, loss))}"
        )
    opt = info.get("optimizer", {})
    got_opt = _snake(opt.get("class", "")) if opt else _name_of(compiled.get("optimizer"))
    if got_opt not in optimizer:
        problems.append(
            f"optimizer is {got_opt!r}; this assignment uses {' or '.join(map(repr, optimizer))}"
        )
    got_metrics = [_name_of(m) for m in compiled.get("metrics") or []]
    for metric in metrics or []:
        if metric not in got_metrics:
            problems.append(f"metrics {got_metrics} do not include {metric!r}")
    if problems:
        return Verdict(0.0, "\n".join(problems))
    return Verdict(
        1.0, f"compiled with loss {got_loss!r}, optimizer {got_opt!r}, metrics {got_metrics}"
    )


@check("save_load", needs_task=True)
def check_save_load(ev: Evidence, *, atol: float = 1e-5) -> Verdict:
    """The student saved the model and, loaded back (in the sandbox), it predicts the same."""
    info = ev.facts.get("keras") or {}
    saved = info.get("saved") or []
    if not saved:
        return Verdict(
            0.0, "no saved model file was found: save it as the notes do, model.save('MINST.h5')"
        )
    good, problems = [], []
    for entry in saved:
        if entry.get("error"):
            problems.append(f"loading {entry['file']} failed: {entry['error']}")
        elif entry.get("max_diff") is None:
            problems.append(
                f"{entry['file']} loads as a model with a different output shape {entry.get('shape')}"
            )
        elif entry["max_diff"] > atol:
            problems.append(
                f"{entry['file']} loaded back predicts differently (up to {entry['max_diff']:.3g}): "
                f"was it saved before training finished?"
            )
        else:
            good.append(entry["file"])
    if good:
        return Verdict(1.0, f"{', '.join(good)} loads back and predicts the same")
    return Verdict(0.0, "\n".join(problems))


@check("schedule", needs_task=True)
def check_schedule(
    ev: Evidence,
    *,
    kind: str = "ExponentialDecay",
    initial_learning_rate: float,
    decay_steps: int,
    decay_rate: float,
    staircase: bool = False,
) -> Verdict:
    """The optimizer's learning rate follows the schedule of the notes (values computed in the
    sandbox by the student's own schedule object, compared with the formula here)."""
    sched = (ev.facts.get("keras") or {}).get("schedule")
    if not sched:
        return Verdict(
            0.0, f"the optimizer has a fixed learning rate; the notes decay it with {kind}"
        )
    if sched.get("class") != kind:
        return Verdict(
            0.0, f"the learning rate follows a {sched.get('class')}; the notes use {kind}"
        )
    problems = []
    for step, got in zip(sched["steps"], sched["values"], strict=True):
        power = step / decay_steps
        want = initial_learning_rate * decay_rate ** (math.floor(power) if staircase else power)
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-9):
            problems.append(f"at step {step} the learning rate is {got:.6g}; expected {want:.6g}")
    if problems:
        cfg = sched.get("config", {})
        return Verdict(0.0, "\n".join(problems) + f" (your schedule: {cfg})")
    return Verdict(
        1.0,
        f"learning rate {initial_learning_rate:g} x {decay_rate:g}^(step/{decay_steps})"
        f"{' (staircase)' if staircase else ''}, as in the notes",
    )


@check("tensorboard_log", needs_task=True)
def check_tensorboard_log(
    ev: Evidence, *, tag: str = "epoch_loss", split: str = "train"
) -> Verdict:
    """TensorBoard event files were written (read here as capped data) with a loss scalar
    that decreases over the epochs."""
    info = ev.facts.get("keras") or {}
    paths = info.get("event_files") or []
    if not paths:
        return Verdict(
            0.0,
            "no TensorBoard event files: pass callbacks=[tf.keras.callbacks.TensorBoard(log_dir=...)] to fit",
        )
    files = {
        p: ev.arrays[f"tb:{i}"].tobytes() for i, p in enumerate(paths) if f"tb:{i}" in ev.arrays
    }
    try:
        scalars = parse_event_files(files)
    except EventFileError as exc:
        return Verdict(0.0, f"the TensorBoard logs cannot be read: {exc}")
    wanted = [k for k in scalars if k.endswith(f"{split}/{tag}")]
    if not wanted:
        return Verdict(0.0, f"the logs hold no {split}/{tag} scalar (found: {sorted(scalars)[:6]})")
    points = scalars[wanted[0]]
    if len(points) < 2:
        return Verdict(0.0, f"{wanted[0]} has {len(points)} value(s); train for at least 2 epochs")
    first, last = points[0][1], points[-1][1]
    if not last < first:
        return Verdict(0.0, f"{wanted[0]} went from {first:.4g} to {last:.4g}: it did not decrease")
    return Verdict(1.0, f"{wanted[0]}: {len(points)} values, from {first:.4g} to {last:.4g}")
