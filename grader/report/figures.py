"""Figure data for the feedback pages, computed in the trusted process from the evidence.

Plain numbers only (lists and small arrays), kept with the result so that reports stay views
of results: the student's recorded loss curve, the decision regions of their classifier over
the lecture's domain, a confusion matrix and misclassified held-out images, autoencoder
reconstructions and the 2-D latent codes by digit. A figure that cannot be made is left out;
it never affects a score.

Each plot shows what a check judges, computed by the check's own measure
(`grader.checks.measures`): the decision regions are the boundary check's predictions, the
confusion matrix counts the accuracy check's predictions, the reconstructions and latent codes
are the autoencoder checks' own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks import measures
from grader.checks.autoencoder import codes_and_images
from grader.checks.base import Evidence
from grader.checks.measures.student import network_accuracy, predict, student_network

GRID = 120
MAX_IMAGES = 8


def collect(ev: Evidence) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, make in (
        ("loss_curve", _loss_curve),
        ("boundary", _boundary),
        ("confusion", _confusion),
        ("autoencoder", _autoencoder),
    ):
        try:
            made = make(ev)
        except Exception:  # noqa: BLE001 - a missing figure is no reason to fail a grading
            made = None
        if made is not None:
            figures[name] = made
    return figures


def _loss_curve(ev: Evidence) -> dict[str, list[float]] | None:
    curves = {
        name: [float(v) for v in values if np.isfinite(v)]
        for name, values in measures.loss_records(ev).items()
    }
    return curves or None


def _boundary(ev: Evidence) -> dict[str, Any] | None:
    task = ev.task
    if task is None or task.generator is None or task.generator.boundary is None:
        return None
    gen = task.generator
    points = gen.grid(GRID)  # row i: x2 = ys[i]; column j: x1 = xs[j]
    # The student's own network, evaluated by the grader: its decision regions as it is built.
    pred = predict(ev, student_network(ev), points).reshape(GRID, GRID)
    truth = gen.boundary(points[:, 0].reshape(GRID, GRID), points[:, 1].reshape(GRID, GRID))
    held = measures.heldout_points(task, 300, ev.assignment.grading_seed)
    return {
        "extent": [gen.low[0], gen.high[0], gen.low[1], gen.high[1]],
        "predicted": pred.astype(int).tolist(),
        "truth": truth.tolist(),
        "points": held.tolist(),
        "classes": gen.classes(held).tolist(),
        "formula": gen.formula,
    }


def _confusion(ev: Evidence) -> dict[str, Any] | None:
    if ev.data is None or ev.task is None or ev.task.labels == "reconstruction":
        return None
    if ev.task.model == "keras":
        pred = measures.heldout_accuracy(ev).predictions
    else:
        checks = {c.check: c.params for c in ev.assignment.checks}
        names = checks.get("accuracy", {})
        pred = network_accuracy(
            ev, student_network(ev), names.get("pred", "pred"), names.get("x", "x")
        ).predictions
    truth = ev.data.heldout_y.astype(int)
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (truth, pred), 1)
    wrong = np.flatnonzero(pred != truth)[:MAX_IMAGES]
    return {
        "matrix": matrix.tolist(),
        "wrong": [
            {
                "image": ev.data.heldout_x[i].tolist(),
                "truth": int(truth[i]),
                "predicted": int(pred[i]),
            }
            for i in wrong
        ],
    }


def _autoencoder(ev: Evidence) -> dict[str, Any] | None:
    if ev.data is None or ev.task is None or ev.task.labels != "reconstruction":
        return None
    images, labels = measures.heldout_digits(ev.task, ev.data)
    net = student_network(ev)
    names = dict(encoder="latent", decoder="reconst", code="latent_input", input="x")
    x = ev.task.features(images[:MAX_IMAGES])
    _, recon = codes_and_images(net, x, **names)
    latent, _ = codes_and_images(net, ev.task.features(images[:300]), **names)
    return {
        "originals": (x * 255).clip(0, 255).astype(int).tolist(),
        "reconstructions": (recon * 255).clip(0, 255).astype(int).tolist(),
        "latent": latent.tolist(),
        "labels": labels[:300].astype(int).tolist(),
    }
