"""The trusted side's work is bounded by what the spec allows, not by what a submission hands
back (fast: hand-made artifacts, no sandbox)."""

from __future__ import annotations

import tracemalloc

import numpy as np

from grader.checks import Evidence
from grader.pipeline import _capped_records, _run_check, probe_inputs
from grader.report import figures
from tests import graphs

MB = 1024 * 1024


def grade_artifacts(course, name, params, extra=None):
    """Every check of the spec and every figure, on the artifacts of a run whose graph is the
    lecture's network with weights `params` (plus `extra` arrays): (results, peak bytes)."""
    spec = course.assignment(name)
    arrays, facts = graphs.lecture_network(spec.task, params)
    arrays.update(extra or {})
    notes: list[str] = []
    arrays = _capped_records(spec, arrays, notes)
    ev = Evidence(spec, arrays, dict(facts or {}), probe_inputs(spec))
    tracemalloc.start()
    try:
        results = {c.name: _run_check(c, ev) for c in spec.checks}
        drawn = figures.collect(ev)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return results, drawn, notes, peak


def test_a_weight_wider_than_the_spec_allows_is_never_evaluated(course):
    """A 96 KB weight of shape (3, 4000) once made the grader evaluate a 4000-wide layer on a
    200x200 grid (1.3 GB). Now the shapes check names it and nothing evaluates it."""
    wide = np.random.default_rng(0).normal(size=(3, 4000))
    results, drawn, _, peak = grade_artifacts(
        course, "perceptron", {"weights.output": wide}, {"loss_record": np.linspace(1, 0.1, 50)}
    )
    assert peak < 64 * MB, f"{peak / MB:.0f} MB"
    assert results["shapes"].status == "failed"
    assert "(3, 4000)" in results["shapes"].message
    for name in ("decision boundary", "loss decrease"):
        assert results[name].status == "failed" and results[name].points == 0
        assert "more than this assignment allows ((3, 1))" in results[name].message
        assert "your network was not evaluated" in results[name].message
    assert "boundary" not in drawn


def test_a_weight_within_an_open_size_is_evaluated(course):
    """mlp_boundary leaves the hidden size open ([2, 64]): 8 hidden nodes are evaluated."""
    rng = np.random.default_rng(1)
    arrays = {
        "weights.hidden": rng.normal(size=(2, 8)),
        "biases.hidden": rng.normal(size=8),
        "weights.output": rng.normal(size=(8, 2)),
        "biases.output": rng.normal(size=2),
    }
    results, drawn, _, _ = grade_artifacts(course, "mlp_boundary", arrays)
    assert "more than this assignment allows" not in results["decision boundary"].message
    assert "boundary" in drawn


def test_a_loss_record_of_eight_million_entries_is_read_thinned(course):
    record = np.linspace(10.0, 0.01, 8_000_000)
    weights = np.array([[-3.0], [0.8], [1.0]]) * 5
    results, drawn, notes, peak = grade_artifacts(
        course, "perceptron", {"weights.output": weights}, {"loss_record": record}
    )
    assert peak < 200 * MB, f"{peak / MB:.0f} MB"
    assert len(drawn["loss_curve"]["loss_record"]) == 100_000
    assert drawn["loss_curve"]["loss_record"][0] == 10.0
    assert drawn["loss_curve"]["loss_record"][-1] == 0.01
    assert any("8,000,000 entries" in n for n in notes)
    assert results["decision boundary"].status == "passed"
