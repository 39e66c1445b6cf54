"""Checks of Keras assignments, in the trusted process, on what the sandbox handed back.

The student's model arrives as JSON text and weight arrays (see `grader/sandbox/keras_export.py`);
`measures.student_model` validates it against an allow-list and rebuilds it in NumPy. Nothing
the student wrote is loaded here: no `.h5`, `.keras`, SavedModel, Lambda code or pickle.
"""

from __future__ import annotations

import math
from typing import Any

from grader.checks.base import Evidence, Verdict
from grader.checks.measures import (
    compiled_with,
    decayed_rate,
    event_scalars,
    learning_rates,
    saved_models,
    scalar_series,
    structure_differences,
    student_model,
)
from grader.model.keras import Architecture, ModelRefused
from grader.registry import check
from grader.run.tb_events import EventFileError


def _model_or_verdict(ev: Evidence) -> Architecture | Verdict:
    try:
        return student_model(ev)
    except ModelRefused as exc:
        return Verdict(0.0, f"your model cannot be graded: {exc}")
    except ValueError as exc:
        return Verdict(0.0, str(exc))


@check("model_structure", needs_task=True, structural=True)
def check_model_structure(
    ev: Evidence, *, input_shape: list[int], layers: list[dict[str, Any]], dropout: bool = False
) -> Verdict:
    """The student's model has the reference's layers, units, activations, output shapes and
    parameter counts. Equivalent spellings pass (an activation as an argument or as a layer,
    `Input` or `input_shape`); with `dropout`, Dropout layers must match too."""
    model = _model_or_verdict(ev)
    if isinstance(model, Verdict):
        return model
    reference, differences = structure_differences(model, input_shape, layers, dropout)
    if differences:
        return Verdict(
            0.0, "\n".join(differences), expected=reference.summary(), got=model.summary()
        )
    return Verdict(1.0, f"the model matches the reference: {model.params:,} parameters")


@check("compile_config", needs_task=True, structural=True)
def check_compile_config(
    ev: Evidence, *, loss: list[str], optimizer: list[str], metrics: list[str] | None = None
) -> Verdict:
    """`model.compile` used an allowed loss, optimizer and metrics; a string or an object are
    equivalent (`'adam'` or `tf.keras.optimizers.Adam()`)."""
    compiled = compiled_with(ev)
    if compiled is None:
        return Verdict(0.0, "the model was never compiled (model.compile(optimizer=..., loss=...))")
    problems = []
    got_loss, got_opt, got_metrics = compiled.loss, compiled.optimizer, compiled.metrics
    if got_loss not in loss:
        problems.append(
            f"loss is {got_loss!r}; this assignment uses {' or '.join(map(repr, loss))}"
        )
    if got_opt not in optimizer:
        problems.append(
            f"optimizer is {got_opt!r}; this assignment uses {' or '.join(map(repr, optimizer))}"
        )
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
    saved = saved_models(ev)
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


@check("schedule", needs_task=True, structural=True)
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
    sched = learning_rates(ev)
    if sched is None:
        return Verdict(
            0.0, f"the optimizer has a fixed learning rate; the notes decay it with {kind}"
        )
    if sched.kind != kind:
        return Verdict(0.0, f"the learning rate follows a {sched.kind}; the notes use {kind}")
    problems = []
    for step, got in zip(sched.steps, sched.values, strict=True):
        want = decayed_rate(step, initial_learning_rate, decay_steps, decay_rate, staircase)
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-9):
            problems.append(f"at step {step} the learning rate is {got:.6g}; expected {want:.6g}")
    if problems:
        return Verdict(0.0, "\n".join(problems) + f" (your schedule: {sched.config})")
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
    try:
        scalars = event_scalars(ev)
    except EventFileError as exc:
        return Verdict(0.0, f"the TensorBoard logs cannot be read: {exc}")
    if scalars is None:
        return Verdict(
            0.0,
            "no TensorBoard event files: pass callbacks=[tf.keras.callbacks.TensorBoard(log_dir=...)] to fit",
        )
    series = scalar_series(scalars, tag, split)
    if series is None:
        return Verdict(0.0, f"the logs hold no {split}/{tag} scalar (found: {sorted(scalars)[:6]})")
    name, points = series
    if len(points) < 2:
        return Verdict(0.0, f"{name} has {len(points)} value(s); train for at least 2 epochs")
    first, last = points[0][1], points[-1][1]
    if not last < first:
        return Verdict(0.0, f"{name} went from {first:.4g} to {last:.4g}: it did not decrease")
    return Verdict(1.0, f"{name}: {len(points)} values, from {first:.4g} to {last:.4g}")
