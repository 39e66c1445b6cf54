"""Each check both ways, on hand-made evidence (no sandbox): a passing case and a broken one
whose message is matched. The corpus tests do the same through real student code."""

from __future__ import annotations

import numpy as np
import pytest

from grader import registry
from grader.checks import Evidence, Missing
from grader.pipeline import probe_inputs
from grader.wire import GRAPH_DEF, graph_value_key
from tests import graphs


def evidence(course, name, arrays=None, facts=None, inputs=None):
    a = course.assignment(name)
    return Evidence(
        a, dict(arrays or {}), dict(facts or {}), probe_inputs(a) if inputs is None else inputs
    )


def run(check, ev, **params):
    return registry.get(check)(ev, **params)


# A perceptron that agrees with 0.8*x1 + x2 - 3 = 0 exactly: logit = -3 + 0.8 x1 + x2.
GOOD_PERCEPTRON = np.array([[-3.0], [0.8], [1.0]]) * 5
# The shapes of the lecture's 2-2-2 MLP, with the hidden size left open (as mlp_boundary's spec).
MLP_SHAPES = {
    "dims": {"n_input": 2, "n_hidden": [2, 64], "n_output": 2},
    "placeholders": {"x": ["batch", "n_input"], "y": ["batch", "n_output"]},
    "arrays": {
        "weights.hidden": ["n_input", "n_hidden"],
        "weights.output": ["n_hidden", "n_output"],
    },
}


def mlp_params(hidden: int = 2, output_rows: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(hidden)
    return {
        "weights.hidden": rng.normal(size=(2, hidden)),
        "biases.hidden": rng.normal(size=hidden),
        "weights.output": rng.normal(size=(output_rows or hidden, 2)),
        "biases.output": rng.normal(size=2),
    }


def graph_evidence(course, name, params, **kw):
    """Evidence of a run whose graph is the lecture's network of `name` with `params`."""
    a = course.assignment(name)
    arrays, facts = graphs.lecture_network(a.task, params, **kw)
    return evidence(course, name, arrays, facts)


def mlp_layers(params, activation="sigmoid", output_bias=True, transposed=False):
    return [
        {
            "weight": ("weights.hidden", params["weights.hidden"]),
            "bias": ("biases.hidden", params["biases.hidden"]),
            "activation": activation,
        },
        {
            "weight": ("weights.output", params["weights.output"]),
            "bias": ("biases.output", params["biases.output"]) if output_bias else None,
            "transposed": transposed,
        },
    ]


def mlp_evidence(course, params=None, **kw):
    params = params or mlp_params()
    arrays, facts = graphs.network(
        mlp_layers(params, **{k: kw.pop(k) for k in list(kw) if k in MLP_OPTIONS}),
        x_shape=kw.pop("x_shape", (None, 2)),
        y_shape=kw.pop("y_shape", (None, 2)),
        loss=kw.pop("loss", "softmax_ce"),
        **kw,
    )
    return evidence(course, "mlp_boundary", arrays, facts)


MLP_OPTIONS = ("activation", "output_bias", "transposed")


class TestShapes:
    params = MLP_SHAPES

    def test_right_shapes_and_open_hidden_size_pass(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(8))
        v = run("shapes", ev, **self.params)
        assert v.passed, v.message

    def test_hidden_size_must_be_consistent(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(8, output_rows=2))
        v = run("shapes", ev, **self.params)
        assert v.score == pytest.approx(3 / 4)
        assert (
            "line 12: `weights['output']` has shape (2, 2); expected (n_hidden, n_output) = (8, 2)"
            in v.message
        )

    def test_wrong_placeholder_named_with_expected_at_its_line(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(), x_shape=(None, 3))
        v = run("shapes", ev, **self.params)
        assert (
            "line 10: placeholder `x` has shape (None, 3); expected (batch, n_input) = (None, 2)"
            in v.message
        )

    def test_declared_shape_counts_when_never_trained(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(), untrained=True)
        assert run("shapes", ev, **self.params).passed

    def test_not_a_placeholder(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(), names={"x": "Variable_0"})
        v = run("shapes", ev, placeholders={"x": ["batch", "n_input"]}, dims={"n_input": 2})
        assert "`x` is a VariableV2, not a tf.placeholder" in v.message

    def test_a_weight_stored_transposed_and_used_transposed_is_right(self, course):
        ev = mlp_evidence(course, transposed=True)
        v = run("shapes", ev, **self.params)
        assert v.passed, v.message

    def test_a_missing_bias_column_is_named(self, course):
        a = course.assignment("perceptron")
        arrays, facts = graphs.network(
            [{"weight": ("weights.output", np.ones((2, 1)))}],
            x_shape=(None, 2),
            y_shape=(None, 1),
            loss="sigmoid_ce",
        )
        ev = evidence(course, "perceptron", arrays, facts)
        v = run("shapes", ev, **next(c.params for c in a.checks if c.check == "shapes"))
        assert "this assignment adds a bias column of ones (3 columns)" in v.message
        assert "the input has 2 columns" in v.message

    def test_no_graph_says_why_once(self, course):
        ev = evidence(course, "mlp_boundary", {}, {"missing": {"pred": "not defined"}})
        v = run("shapes", ev, **self.params)
        assert v.score == 0
        assert (
            v.message
            == "your network could not be read: `pred` not defined; `loss` was not defined"
        )


class TestWiring:
    def test_the_lectures_network_passes(self, course):
        v = run("wiring", mlp_evidence(course))
        assert v.passed and "is built as the lecture's network" in v.message

    def test_a_relu_hidden_layer_is_named_at_its_line(self, course):
        v = run("wiring", mlp_evidence(course, activation="relu"))
        assert not v.passed
        assert (
            v.message == "line 21: the hidden layer uses relu; the lecture's network uses sigmoid"
        )

    def test_a_missing_output_bias_is_named_at_its_line(self, course):
        v = run("wiring", mlp_evidence(course, output_bias=False))
        assert v.message == "line 22: no bias is added to the output layer"

    def test_equivalent_spellings_are_equal(self, course):
        v = run("wiring", mlp_evidence(course, transposed=True))
        assert v.passed, v.message
        assert "stored transposed and used transposed" in v.message

    def test_a_missing_layer_is_named(self, course):
        params = mlp_params()
        arrays, facts = graphs.network(mlp_layers(params)[1:], x_shape=(None, 2))
        v = run("wiring", evidence(course, "mlp_boundary", arrays, facts))
        assert "`pred` is computed by 1 layer(s)" in v.message
        assert "the lecture's network has 2" in v.message

    @staticmethod
    def perceptron_by_hand(spelling: str):
        """pred of the perceptron (3 inputs), not written as a chain of layers."""
        b = graphs.Builder()
        b.placeholder("Placeholder", (None, 3))
        w = b.variable("W", (3, 1))
        if spelling == "sum":  # tf.reduce_sum(x * tf.transpose(w), axis=1, keepdims=True)
            perm = b.const("perm", np.array([1, 0], dtype=np.int32))
            wt = b.node("transpose", "Transpose", [w, perm])
            prod = b.node("mul", "Mul", ["Placeholder", wt], "line 9")
            axis = b.const("axis", np.array([1], dtype=np.int32))
            b.node("pred", "Sum", [prod, axis], "line 9", keep_dims=True)
        else:  # 2 * (x @ w)
            mm = b.node("MatMul", "MatMul", ["Placeholder", w])
            two = b.const("two", np.array(2.0, dtype=np.float32))
            b.node("pred", "Mul", [two, mm], "line 9")
        arrays = {GRAPH_DEF: np.frombuffer(b.proto.SerializeToString(), np.uint8).copy()}
        arrays[graph_value_key("W")] = np.array([[0.5], [1.0], [-1.0]])
        names = {"x": "Placeholder:0", "pred": "pred:0", "weights.output": "W"}
        return arrays, {"graph": {"names": names, "lines": b.lines, "inits": b.inits}}

    def test_a_graph_that_is_no_chain_of_layers_is_compared_by_value(self, course):
        ev = evidence(course, "perceptron", *self.perceptron_by_hand("sum"))
        v = run("wiring", ev)
        assert v.passed and "written in another form" in v.message
        ev = evidence(course, "perceptron", *self.perceptron_by_hand("twice"))
        v = run("wiring", ev)
        assert not v.passed
        assert v.message.startswith("line 9: a product that is not `w * x`")
        assert "is not the lecture's network" in v.message


class TestLossFunction:
    def test_softmax_cross_entropy_passes_and_sigmoid_is_caught(self, course):
        ev = mlp_evidence(course)
        v = run("loss_function", ev)
        assert v.passed and "the mean of softmax cross entropy" in v.message
        v = run("loss_function", mlp_evidence(course, loss="sigmoid_ce"))
        assert not v.passed
        assert v.message.startswith("line 41: `loss` is the mean of sigmoid cross entropy")
        assert "This assignment needs tf.nn.softmax_cross_entropy_with_logits" in v.message

    def test_a_sum_is_named_as_a_sum(self, course):
        v = run("loss_function", mlp_evidence(course, loss="sum_softmax_ce"))
        assert "It is summed over the batch: the lecture takes the mean" in v.message

    def test_a_mean_over_a_fixed_count_is_not_the_mean(self, course):
        # sum((pred - y)**2) / (2 * 100): the mean only for 200 points, which it is not here
        params = {"weights.w": np.array([2.0]), "biases.b": np.array([1.0])}
        ev = graph_evidence(course, "linear_regression", params, loss_kind="half_sse")
        v = run("loss_function", ev)
        assert not v.passed and "a squared error" in v.message
        ev = graph_evidence(course, "linear_regression", params)
        assert run("loss_function", ev).passed


class TestLossDecrease:
    def test_trained_weights_pass(self, course):
        ev = graph_evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON})
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.passed, v.message
        assert "at your initialization" in v.message

    def test_untrained_weights_fail_with_hint(self, course):
        weights = {"weights.output": np.array([[0.01], [-0.02], [0.03]])}
        ev = graph_evidence(course, "perceptron", weights)
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert not v.passed
        assert "Your network was never trained, or learned nothing" in v.message
        assert "Did the training loop run `optm`, on labels that match the inputs" in v.message

    def test_a_network_without_trained_values_was_never_trained(self, course):
        ev = graph_evidence(
            course, "perceptron", {"weights.output": GOOD_PERCEPTRON}, untrained=True
        )
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.message.startswith("your network was never trained")

    def test_nan_is_named_divergence(self, course):
        weights = {"weights.output": np.array([[np.nan], [1.0], [1.0]])}
        ev = graph_evidence(course, "perceptron", weights)
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.message.startswith("training diverged: `weights['output']` contain NaN")

    def test_a_loss_that_grew_is_divergence(self, course):
        # a constant logit of 20: every point called C1, with all confidence
        ev = graph_evidence(course, "perceptron", {"weights.output": np.array([[20.0], [0], [0]])})
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.message.startswith("the loss grew")
        assert "try a smaller learning rate" in v.message

    def test_judged_against_the_students_own_initialization(self, course):
        # their own init (stddev 10) gives a large loss; training brought it far down
        ev = graph_evidence(
            course, "perceptron", {"weights.output": GOOD_PERCEPTRON / 5}, stddev=10.0
        )
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.passed, v.message

    def test_a_loss_that_does_not_depend_on_the_weights(self, course):
        # 2-2-1: softmax cross entropy over one output column is 0 whatever the weights
        params = mlp_params()
        params["weights.output"] = params["weights.output"][:, :1]
        params["biases.output"] = params["biases.output"][:1]
        ev = mlp_evidence(course, params, y_shape=(None, 1))
        v = run("loss_decrease", ev)
        assert "is 0 whatever the weights" in v.message and not v.passed

    def test_swapped_feeds_are_named(self, course):
        # Trained with feed_dict={x: train_y, y: train_X}: it predicts x = (y - 1) / 2.
        params = {"weights.w": np.array([0.48]), "biases.b": np.array([-0.5])}
        ev = graph_evidence(course, "linear_regression", params)
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert not v.passed
        assert "Your network learned to predict `x` from `y`" in v.message
        assert "the loss grew" not in v.message


class TestReversedClasses:
    def test_a_network_that_learned_the_classes_the_other_way_round(self, course):
        # labels built with C1 in column 0: the network learned -GOOD; training did happen
        ev = graph_evidence(course, "perceptron", {"weights.output": -GOOD_PERCEPTRON})
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.passed and "for the two classes the other way round" in v.message
        v = run("decision_boundary", ev, minimum=0.95)
        assert not v.passed and "predicts the two classes the other way round" in v.message


class TestDecisionBoundary:
    def test_true_boundary_passes(self, course):
        ev = graph_evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON})
        v = run("decision_boundary", ev, minimum=0.95)
        assert v.passed and "on 100.0% of 2000 held-out points" in v.message

    def test_wrong_boundary_fails_with_figures(self, course):
        weights = {"weights.output": np.array([[-3.0], [1.0], [-1.0]])}
        ev = graph_evidence(course, "perceptron", weights)
        v = run("decision_boundary", ev, minimum=0.95)
        assert not v.passed
        assert "true boundary 0.8*x1 + x2 - 3 = 0" in v.message
        assert v.message.endswith(
            "expected at least 95.0% (your network's output `pred` is built at line 20)"
        )

    def test_weights_written_into_the_initializers_learned_nothing(self, course):
        ev = graph_evidence(
            course, "perceptron", {"weights.output": GOOD_PERCEPTRON}, written_in=True
        )
        v = run("decision_boundary", ev, minimum=0.95)
        assert not v.passed
        assert "already at its initial values (your initializers)" in v.message
        assert not run("loss_decrease", ev, max_ratio=0.5).passed

    def test_the_students_own_network_is_judged_without_a_bias_column(self, course):
        # No bias column: the shapes check names it; the boundary judges what this network
        # does on the two coordinates (a line through the origin cannot follow 0.8x1+x2=3).
        arrays, facts = graphs.network(
            [{"weight": ("weights.output", np.array([[0.8], [1.0]]))}],
            x_shape=(None, 2),
            y_shape=(None, 1),
            loss="sigmoid_ce",
        )
        v = run("decision_boundary", evidence(course, "perceptron", arrays, facts), minimum=0.95)
        assert not v.passed and "your network agrees with the true boundary" in v.message


class TestParameters:
    def test_close_values_pass_far_values_fail(self, course):
        params = {"weights.w": np.array([1.97]), "biases.b": np.array([1.02])}
        ev = graph_evidence(course, "linear_regression", params)
        assert run("parameters", ev, expect={"weights.w": 2.0, "biases.b": 1.0}, atol=0.2).passed
        params["weights.w"] = np.array([0.5])
        ev = graph_evidence(course, "linear_regression", params)
        v = run("parameters", ev, expect={"weights.w": 2.0, "biases.b": 1.0}, atol=0.2)
        assert v.score == 0.5
        assert v.message == "`weights['w']` is 0.5; expected about 2 (within 0.2)"


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
