"""Figure data for the feedback pages, computed in the trusted process from the evidence.

Plain numbers only (lists and small arrays), kept with the result so that reports stay views
of results: the student's recorded loss curve, the decision regions of their classifier over
the lecture's domain, a confusion matrix and misclassified held-out images, autoencoder
reconstructions and the 2-D latent codes by digit. A figure that cannot be made is left out;
it never affects a score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.graph import Evidence

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


def _loss_curve(ev: Evidence):
    curves = {}
    for name in ev.assignment.collect.records:
        if name in ev.arrays and ev.arrays[name].size >= 2:
            values = np.asarray(ev.arrays[name], dtype=float).ravel()
            curves[name] = [float(v) for v in values if np.isfinite(v)]
    return curves or None


def _boundary(ev: Evidence):
    task = ev.task
    if task is None or task.generator is None or task.generator.boundary is None:
        return None
    gen = task.generator
    xs = np.linspace(gen.low[0], gen.high[0], GRID)
    ys = np.linspace(gen.low[1], gen.high[1], GRID)
    mx, my = np.meshgrid(xs, ys)
    points = np.column_stack([mx.ravel(), my.ravel()])
    pred = task.predict_class(ev.params(), task.features(points)).reshape(GRID, GRID)
    truth = gen.boundary(mx, my)
    held, _, _ = task.dataset(300, ev.assignment.grading_seed + 3)
    return {
        "extent": [gen.low[0], gen.high[0], gen.low[1], gen.high[1]],
        "predicted": pred.astype(int).tolist(),
        "truth": truth.tolist(),
        "points": held.tolist(),
        "classes": gen.classes(held).tolist(),
        "formula": gen.formula,
    }


def _predictions(ev: Evidence) -> np.ndarray | None:
    x = ev.task.features(ev.data.heldout_x)
    if ev.task.model == "keras":
        from grader.checks.keras import student_model

        return np.argmax(student_model(ev).forward(x), axis=-1)
    return ev.task.predict_class(ev.params(), x)


def _confusion(ev: Evidence):
    if ev.data is None or ev.task is None or ev.task.labels == "reconstruction":
        return None
    pred = _predictions(ev)
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


def _autoencoder(ev: Evidence):
    if ev.data is None or ev.task is None or ev.task.labels != "reconstruction":
        return None
    images, labels = ev.task.select(ev.data.heldout_x, ev.data.heldout_y)
    params = ev.params()
    x = ev.task.features(images)
    recon = ev.task.forward(params, x[:MAX_IMAGES])
    latent = ev.task.forward(params, x[:300], 0, 3)
    return {
        "originals": (x[:MAX_IMAGES] * 255).clip(0, 255).astype(int).tolist(),
        "reconstructions": (recon * 255).clip(0, 255).astype(int).tolist(),
        "latent": latent.tolist(),
        "labels": labels[:300].astype(int).tolist(),
    }
