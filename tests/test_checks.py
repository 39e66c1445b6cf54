"""Each check both ways, on hand-made evidence (no sandbox): a passing case and a broken one
whose message is matched. The corpus tests do the same through real student code."""

from __future__ import annotations

import numpy as np
import pytest

from grader import registry
from grader.checks import Evidence, Missing
from grader.pipeline import probe_inputs


def evidence(course, name, arrays=None, facts=None, inputs=None):
    a = course.assignment(name)
    return Evidence(
        a, dict(arrays or {}), dict(facts or {}), probe_inputs(a) if inputs is None else inputs
    )


def run(check, ev, **params):
    return registry.get(check)(ev, **params)


# A perceptron that agrees with 0.8*x1 + x2 - 3 = 0 exactly: logit = -3 + 0.8 x1 + x2.
GOOD_PERCEPTRON = np.array([[-3.0], [0.8], [1.0]]) * 5
MLP_W = {  # a 2-2-2 sigmoid network, arbitrary but fixed
    "weights.hidden": np.array([[0.5, -1.0], [2.0, 0.3]]),
    "biases.hidden": np.array([0.1, -0.2]),
    "weights.output": np.array([[1.0, -1.0], [-2.0, 0.5]]),
    "biases.output": np.array([0.0, 0.3]),
}


def mlp_forward(params, x):
    h = 1 / (1 + np.exp(-(x @ params["weights.hidden"] + params["biases.hidden"])))
    return h @ params["weights.output"] + params["biases.output"]


# The shapes of the lecture's 2-2-2 MLP, with the hidden size left open (as mlp_boundary's spec).
MLP_SHAPES = {
    "dims": {"n_input": 2, "n_hidden": [2, 64], "n_output": 2},
    "placeholders": {"x": ["batch", "n_input"], "y": ["batch", "n_output"]},
    "arrays": {
        "weights.hidden": ["n_input", "n_hidden"],
        "weights.output": ["n_hidden", "n_output"],
    },
}


class TestShapes:
    params = MLP_SHAPES
    ph = {
        "x": {"kind": "placeholder", "shape": [None, 2]},
        "y": {"kind": "placeholder", "shape": [None, 2]},
    }

    def test_right_shapes_and_open_hidden_size_pass(self, course):
        ev = evidence(
            course,
            "mlp_boundary",
            {"weights.hidden": np.zeros((2, 8)), "weights.output": np.zeros((8, 2))},
            {"placeholders": self.ph},
        )
        v = run("shapes", ev, **self.params)
        assert v.passed, v.message

    def test_hidden_size_must_be_consistent(self, course):
        ev = evidence(
            course,
            "mlp_boundary",
            {"weights.hidden": np.zeros((2, 8)), "weights.output": np.zeros((2, 2))},
            {"placeholders": self.ph},
        )
        v = run("shapes", ev, **self.params)
        assert v.score == pytest.approx(3 / 4)
        assert (
            "`weights['output']` has shape (2, 2); expected (n_hidden, n_output) = (8, 2)"
            in v.message
        )

    def test_wrong_placeholder_named_with_expected(self, course):
        ph = dict(self.ph, x={"kind": "placeholder", "shape": [None, 3]})
        ev = evidence(
            course,
            "mlp_boundary",
            {"weights.hidden": np.zeros((2, 2)), "weights.output": np.zeros((2, 2))},
            {"placeholders": ph},
        )
        v = run("shapes", ev, **self.params)
        assert (
            "placeholder `x` has shape (None, 3); expected (batch, n_input) = (None, 2)"
            in v.message
        )

    def test_declared_shape_counts_when_never_trained(self, course):
        ev = evidence(
            course,
            "mlp_boundary",
            {"weights.output": np.zeros((2, 2))},
            {"placeholders": self.ph, "declared_shapes": {"weights.hidden": [2, 2]}},
        )
        assert run("shapes", ev, **self.params).passed

    def test_not_a_placeholder(self, course):
        ph = dict(self.ph, x={"kind": "ndarray"})
        ev = evidence(course, "mlp_boundary", {}, {"placeholders": ph})
        v = run("shapes", ev, placeholders={"x": ["batch", "n_input"]}, dims={"n_input": 2})
        assert "`x` is a ndarray, not a tf.placeholder" in v.message


class TestWiring:
    def test_reference_network_reproduced(self, course):
        ev = evidence(course, "mlp_boundary", dict(MLP_W))
        ev.arrays["fetch:pred"] = mlp_forward(MLP_W, ev.inputs["probe_x"].astype(float))
        assert run("wiring", ev).passed

    def test_relu_network_is_caught(self, course):
        ev = evidence(course, "mlp_boundary", dict(MLP_W))
        x = ev.inputs["probe_x"].astype(float)
        h = np.maximum(x @ MLP_W["weights.hidden"] + MLP_W["biases.hidden"], 0)
        ev.arrays["fetch:pred"] = h @ MLP_W["weights.output"] + MLP_W["biases.output"]
        v = run("wiring", ev)
        assert not v.passed
        assert "hidden = sigmoid(x @ `weights['hidden']` + `biases['hidden']`)" in v.message
        assert "differs from the lecture's network" in v.message

    def test_fetch_error_is_reported(self, course):
        ev = evidence(course, "mlp_boundary", dict(MLP_W), {"fetch_errors": {"pred": "boom"}})
        assert run("wiring", ev).message == "could not evaluate `pred` on probe inputs: boom"


class TestLossFunction:
    def test_softmax_cross_entropy_passes_and_sigmoid_is_caught(self, course):
        ev = evidence(course, "softmax_classifier")
        logits = np.random.default_rng(0).normal(size=(len(ev.inputs["probe_x"]), 2))
        y = ev.inputs["probe_y"].astype(float)
        softmax = np.mean(np.log(np.exp(logits).sum(1)) - (y * logits).sum(1))
        ev.arrays.update({"fetch:pred": logits, "fetch:loss": np.array(softmax)})
        assert run("loss_function", ev).passed
        sigmoid = np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))
        ev.arrays["fetch:loss"] = np.array(sigmoid)
        v = run("loss_function", ev)
        assert not v.passed
        assert "This assignment needs tf.nn.softmax_cross_entropy_with_logits" in v.message


class TestLossDecrease:
    def test_trained_weights_pass(self, course):
        ev = evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON})
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.passed, v.message

    def test_untrained_weights_fail_with_hint(self, course):
        ev = evidence(course, "perceptron", {"weights.output": np.array([[0.01], [-0.02], [0.03]])})
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert not v.passed
        assert "Did the training loop run `optm`?" in v.message

    def test_nan_is_named_divergence(self, course):
        ev = evidence(course, "perceptron", {"weights.output": np.array([[np.nan], [1.0], [1.0]])})
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.message.startswith("training diverged: `weights['output']` contain NaN")


class TestParameters:
    def test_close_values_pass_far_values_fail(self, course):
        ev = evidence(
            course,
            "linear_regression",
            {"weights.w": np.array([1.97]), "biases.b": np.array([1.02])},
        )
        assert run("parameters", ev, expect={"weights.w": 2.0, "biases.b": 1.0}, atol=0.2).passed
        ev.arrays["weights.w"] = np.array([0.5])
        v = run("parameters", ev, expect={"weights.w": 2.0, "biases.b": 1.0}, atol=0.2)
        assert v.score == 0.5
        assert v.message == "`weights['w']` is 0.5; expected about 2 (within 0.2)"


class TestDecisionBoundary:
    def test_true_boundary_passes(self, course):
        ev = evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON})
        v = run("decision_boundary", ev, minimum=0.95)
        assert v.passed and "on 100.0% of 2000 held-out points" in v.message

    def test_wrong_boundary_fails_with_figures(self, course):
        ev = evidence(course, "perceptron", {"weights.output": np.array([[-3.0], [1.0], [-1.0]])})
        v = run("decision_boundary", ev, minimum=0.95)
        assert not v.passed
        assert "true boundary 0.8*x1 + x2 - 3 = 0" in v.message
        assert v.message.endswith("expected at least 95.0%")


class TestOneHot:
    def test_one_hot_passes_plain_labels_fail(self, course):
        rng = np.random.default_rng(1)
        pts = np.column_stack([8 * rng.random(100), 7 * rng.random(100) - 4])
        cls = (0.8 * pts[:, 0] + pts[:, 1] - 3 >= 0).astype(int)
        ev = evidence(course, "softmax_classifier", {"train_X": pts, "train_y": np.eye(2)[cls]})
        assert run("one_hot", ev).passed
        ev.arrays["train_y"] = cls[:, None].astype(float)
        v = run("one_hot", ev)
        assert (
            "`train_y` has shape (100, 1); expected one-hot labels of shape (m, n_output) = (100, 2)"
            in v.message
        )


class TestValues:
    cases = [
        {"of": "call:f", "expected": [1.0, 2.0], "shown": "f(1)"},
        {"of": "A", "expected": 3.0},
    ]

    def test_values_within_tolerance(self, course):
        ev = evidence(
            course, "intro_numpy", {"call:f": np.array([1.0, 2.0004]), "A": np.array(3.0)}
        )
        assert run("values", ev, cases=self.cases).passed

    def test_wrong_missing_and_raising(self, course):
        ev = evidence(
            course,
            "intro_numpy",
            {"call:f": np.array([1.0, 2.5])},
            {"missing": {"A": "not defined"}},
        )
        v = run("values", ev, cases=self.cases)
        assert v.score == 0
        assert "f(1) is [1, 2.5]; expected [1, 2] (within 0.001)" in v.message
        assert "`A` was not produced by your code: not defined" in v.message
        ev = evidence(
            course,
            "intro_numpy",
            {"A": np.array(3.0)},
            {"call_errors": {"f": "ZeroDivisionError: division by zero"}},
        )
        v = run("values", ev, cases=self.cases)
        assert v.score == 0.5 and "f(1) failed: ZeroDivisionError" in v.message


class TestCallCount:
    def test_linear_passes_capped_fails(self, course):
        good = {"mfib": [{"n": 10, "calls": 17}, {"n": 40, "calls": 77}]}
        ev = evidence(course, "recursion", facts={"call_counts": good})
        assert run("call_count", ev, function="mfib").passed
        bad = {"mfib": [{"n": 10, "calls": 109}, {"n": 40, "calls": 410, "capped": True}]}
        v = run(
            "call_count", evidence(course, "recursion", facts={"call_counts": bad}), function="mfib"
        )
        assert not v.passed
        assert "`mfib(10)` made 109 calls; expected at most 32 (linear in n)" in v.message
        assert "`mfib(40)` made more than 410 calls (stopped there)" in v.message


def test_missing_artifact_message(course):
    ev = evidence(course, "perceptron", facts={"missing": {"weights": "not defined"}})
    with pytest.raises(
        Missing, match=r"`weights\['output'\]` was not produced by your code: not defined"
    ):
        ev.array("weights.output")
