"""Every check as a measure and a judge, on hand-made evidence (no sandbox).

For each registered check: its measure gives the figure an independent hand computation gives
on small arrays, and its judge passes just inside the spec's threshold and fails just outside
it, with the message matched. `test_every_check_has_a_measure_and_a_judge_test` keeps the list
complete when a check is added.
"""

from __future__ import annotations

import inspect
import json
import math
import sys

import numpy as np
import pytest

from grader import registry
from grader.checks import Missing, measures
from grader.checks.autoencoder import codes_and_images
from grader.checks.base import DrawnRun
from grader.checks.measures import student
from grader.checks.training import learned_values
from grader.course.data import Dataset, Splits
from grader.report import figures
from grader.wire import FunctionCall
from tests import graphs
from tests.conftest import ROOT
from tests.test_checks import (
    GOOD_PERCEPTRON,
    MLP_SHAPES,
    evidence,
    graph_evidence,
    mlp_evidence,
    mlp_params,
    run,
)

# --- hand-made data ----------------------------------------------------------------------------


def splits(images: np.ndarray, labels: np.ndarray, key: str = "mnist-embedded") -> Splits:
    """A data set whose held-out split is `images`/`labels` (the served splits are empty)."""
    empty_x, empty_y = images[:0], labels[:0]
    ds = Dataset(key, "MNIST (hand-made)", "tests", empty_x, empty_y, images, labels)
    return Splits(ds, empty_x, empty_y, empty_x, empty_y, images, labels)


def flat_images(values: list[int]) -> np.ndarray:
    """28x28 uint8 images, each of one grey value."""
    return np.stack([np.full((28, 28), v, dtype=np.uint8) for v in values])


def keras_facts(layers: list[dict], weights: list[np.ndarray], **extra) -> tuple[dict, dict]:
    """(facts, arrays) as the sandbox hands back a Sequential model on 28x28 inputs."""
    config = [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 28, 28]}}]
    config += [
        {"class_name": kind, "config": {"name": f"l{i}", **cfg}}
        for i, (kind, cfg) in enumerate((d["class_name"], d["config"]) for d in layers)
    ]
    text = json.dumps({"class_name": "Sequential", "config": {"name": "m", "layers": config}})
    info = {"json": text, "n_weights": len(weights), **extra}
    return {"keras": info}, {f"keras.w{i}": w for i, w in enumerate(weights)}


FLATTEN = {"class_name": "Flatten", "config": {}}


def dense(units: int, activation: str) -> dict:
    return {"class_name": "Dense", "config": {"units": units, "activation": activation}}


def softmax_weights(favourite: int) -> list[np.ndarray]:
    """A 784-10 softmax layer that predicts `favourite` for every image."""
    bias = np.zeros(10)
    bias[favourite] = 5.0
    return [np.zeros((784, 10)), bias]


# --- the list stays complete ---------------------------------------------------------------------


def builtin_checks() -> list[str]:
    return [n for n in registry.names() if registry.get(n).__module__.startswith("grader.checks.")]


def test_every_check_has_a_measure_and_a_judge_test():
    module = sys.modules[__name__]
    covered = {}
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__name__.startswith("Test") and hasattr(cls, "check"):
            covered[cls.check] = [m for m in dir(cls) if m.startswith("test_")]
    assert sorted(covered) == sorted(builtin_checks())
    for name, tests in covered.items():
        assert any(t.startswith("test_measure") for t in tests), f"{name}: no measure test"
        assert any(t.startswith("test_judge") for t in tests), f"{name}: no judge test"


# --- max_difference: np.allclose's rule as one figure ----------------------------------------------


def test_max_difference_is_the_smallest_atol_allclose_accepts():
    assert measures.max_difference([1.0, 2.0], [1.0, 2.5]) == 0.5
    assert measures.max_difference([1.0, np.inf], [1.0, np.inf]) == 0.0  # equal infinities
    assert measures.max_difference([1.0, np.nan], [1.0, np.nan]) == math.inf
    assert measures.max_difference([1.0, np.nan], [1.0, np.nan], equal_nan=True) == 0.0
    assert measures.max_difference([2.0], [100.0], rtol=0.01) == pytest.approx(97.0)
    rng = np.random.default_rng(0)
    special = np.array([np.nan, np.inf, -np.inf, 0.0])
    for _ in range(300):
        a, b = rng.normal(size=4), rng.normal(size=4)
        a[rng.random(4) < 0.2] = rng.choice(special)
        b[rng.random(4) < 0.2] = rng.choice(special)
        atol = float(rng.uniform(0, 3))
        for equal_nan in (False, True):
            figure = measures.max_difference(a, b, equal_nan=equal_nan)
            assert (figure <= atol) == np.allclose(a, b, atol=atol, rtol=0, equal_nan=equal_nan)


# --- shapes ------------------------------------------------------------------------------------


class TestShapes:
    check = "shapes"
    params = MLP_SHAPES

    def test_measure_reads_shapes_from_the_graph(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(8), untrained=True)
        net = student.student_network(ev)
        assert net.width("x") == 2 and net.node("x").attrs["shape"] == (None, 2)
        assert net.node("weights.hidden").attrs["shape"] == (2, 8)
        assert net.untrained  # no trained values: the declared shapes are what is there

    def test_judge_binds_the_open_size_and_counts_each_shape(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(8))
        v = run("shapes", ev, **self.params)
        assert v.passed and v.message == "all 4 shapes are right"
        ev = graph_evidence(course, "mlp_boundary", mlp_params(8, output_rows=9))
        v = run("shapes", ev, **self.params)
        assert v.score == pytest.approx(3 / 4)
        assert v.message == (
            "line 12: `weights['output']` has shape (9, 2); expected (n_hidden, n_output) = (8, 2)"
        )

    def test_judge_names_a_variable_that_is_not_a_placeholder(self, course):
        ev = graph_evidence(course, "mlp_boundary", mlp_params(), names={"y": "Variable_0"})
        v = run("shapes", ev, placeholders={"y": ["batch", "n_output"]}, dims={"n_output": 2})
        assert v.score == 0 and v.message == "line 10: `y` is a VariableV2, not a tf.placeholder"


# --- wiring ------------------------------------------------------------------------------------


class TestWiring:
    check = "wiring"

    def test_measure_reads_the_layers_as_built(self, course):
        net = student.student_network(mlp_evidence(course, activation="tanh", transposed=True))
        read = net.read("pred")
        assert [(ly.activation, ly.transposed, ly.bias is not None) for ly in read.layers] == [
            ("tanh", False, True),
            ("linear", True, True),
        ]
        assert read.input == "Placeholder"

    def test_judge_names_each_difference_at_its_line(self, course):
        v = run("wiring", mlp_evidence(course, activation="tanh", output_bias=False))
        assert v.message == (
            "line 21: the hidden layer uses tanh; the lecture's network uses sigmoid\n"
            "line 22: no bias is added to the output layer"
        )
        assert run("wiring", mlp_evidence(course)).passed

    def test_judge_slices_an_autoencoder(self, course):
        a = course.assignment("autoencoder")
        arrays, facts = graphs.autoencoder_network(a.task, tiny_autoencoder(0.5))
        ev = evidence(course, "autoencoder", arrays, facts)
        v = run("wiring", ev, fetch="latent", input="x", probe="probe_x", layers=[0, 3])
        assert v.passed, v.message
        v = run("wiring", ev, fetch="reconst", input="latent_input", probe="probe_z", layers=[3, 6])
        assert v.passed, v.message
        v = run("wiring", ev, fetch="reconst", input="x", probe="probe_x", layers=[3, 6])
        assert (
            "`reconst` is computed from `latent_input`; the lecture's network starts from "
            "`x`" in v.message
        )


# --- loss_function ----------------------------------------------------------------------------


class TestLossFunction:
    check = "loss_function"

    def test_measure_is_the_lectures_loss_by_hand(self, course):
        ev = mlp_evidence(course)
        compared = student.loss_function_values(ev, student.student_network(ev))
        assert [c.n for c in compared] == [37, 150]
        for c in compared:  # the student's softmax CE graph gives the lecture's loss exactly
            assert c.got == pytest.approx(c.want, rel=1e-9)
            assert 0.3 < c.want < 3  # outputs drawn N(0, 1): not saturated

    def test_measure_sigmoid_cross_entropy_by_hand(self, course):
        ev = graph_evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON})
        net = student.student_network(ev)
        z, y = np.array([[0.0], [3.0]]), np.array([[1.0], [0.0]])
        by_hand = (math.log(2) + (3 + math.log(1 + math.exp(-3)))) / 2
        got = net.run("loss", {"pred": z, "y": y})
        assert float(got) == pytest.approx(by_hand)

    @pytest.mark.parametrize("loss, passed", [("softmax_ce", True), ("mse", False)])
    def test_judge_either_side(self, course, loss, passed):
        v = run("loss_function", mlp_evidence(course, loss=loss), atol=1e-3)
        name = "tf.nn.softmax_cross_entropy_with_logits (mean), for one-hot labels"
        if passed:
            assert v.passed and v.message == (
                f"`loss` is {name} (the mean of softmax cross entropy, as your graph computes it)"
            )
        else:
            assert v.message.startswith("line 41: `loss` is the mean of a squared error: on 37 ")
            assert v.message.endswith(f"This assignment needs {name}.")


# --- loss_decrease ----------------------------------------------------------------------------


def sigmoid_ce(z: np.ndarray, y: np.ndarray) -> float:
    """Mean sigmoid cross entropy of logits z, by its definition -y log p - (1-y) log(1-p)."""
    p = 1 / (1 + np.exp(-z))
    return float(np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p)))


class TestLossDecrease:
    check = "loss_decrease"

    def test_measure_final_and_initial_loss_by_hand(self, course):
        ev = graph_evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON / 5})
        net = student.student_network(ev)
        loss, feeds = student.training_loss(ev, net, 500)
        x, y = feeds["x"], feeds["y"]
        assert np.all(x[:, 0] == 1)  # the perceptron's bias column
        points = x[:, 1:]
        assert np.array_equal(y[:, 0], (0.8 * points[:, 0] + points[:, 1] - 3 >= 0).astype(float))
        assert loss.final == pytest.approx(sigmoid_ce(x @ (GOOD_PERCEPTRON / 5), y))
        # their own initializer (random_normal, stddev 0.1), drawn by the grader
        seed = ev.assignment.grading_seed + measures.INIT_SEED
        init = np.random.default_rng(seed).standard_normal((3, 1)) * np.float32(0.1)
        assert loss.start == pytest.approx(sigmoid_ce(x @ init, y), rel=1e-6)
        assert loss.ratio == pytest.approx(loss.final / loss.start)

    def test_measure_compares_an_autoencoder_with_its_own_inputs(self, course):
        # The loss targets of an autoencoder are its inputs, on the assignment's digits only.
        ev = evidence(course, "autoencoder", inputs={})
        ev.data = splits(flat_images([0, 255, 51, 255]), np.array([1, 2, 5, 6]))
        x, y = student.fresh_data(ev, 10)
        assert x.shape == (3, 28, 28) and np.array_equal(ev.task.features(x), y)
        assert sorted(np.unique(y)) == [0.0, 0.2, 1.0]  # digit 2 left out

    def test_measure_of_the_training_record(self, course):
        ev = evidence(course, "mlp_boundary", {"loss_record": np.array([4.0, np.nan, 1.0])})
        rec = measures.training_record(ev)
        assert (rec.name, rec.first, rec.last, rec.peak) == ("loss_record", 4.0, 1.0, 4.0)

    def test_judge_either_side_of_max_ratio(self, course):
        ev = graph_evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON})
        loss, _ = student.training_loss(ev, student.student_network(ev), 2000)
        ratio = loss.ratio
        v = run("loss_decrease", ev, max_ratio=ratio * 1.001)
        assert v.passed and v.message.startswith("the loss fell: on 2000 fresh points, your ")
        v = run("loss_decrease", ev, max_ratio=ratio * 0.999)
        assert not v.passed
        assert v.message.startswith("the loss did not fall enough: on 2000 fresh points")
        assert f"expected at most {ratio * 0.999:g} x {loss.start:.4g}" in v.message

    def test_judge_shows_the_own_record_as_feedback_only(self, course):
        ev = graph_evidence(course, "perceptron", {"weights.output": GOOD_PERCEPTRON})
        ev.arrays["loss_record"] = np.array([0.7, 50.0, 80.0])  # says it grew: not believed
        v = run("loss_decrease", ev, max_ratio=0.5)
        assert v.passed and v.message.endswith("(your `loss_record` went from 0.7 to 80)")


# --- parameters -------------------------------------------------------------------------------


class TestParameters:
    check = "parameters"

    def test_measure_reads_the_trained_and_initial_values(self, course):
        params = {"weights.w": np.array([1.5]), "biases.b": np.array([0.5])}
        ev = graph_evidence(course, "linear_regression", params, stddev=None)  # tf.zeros
        got = learned_values(ev, student.student_network(ev), ["weights.w"])
        assert got["weights.w"][0].tolist() == [1.5] and got["weights.w"][1].tolist() == [0.0]
        with pytest.raises(Missing):
            learned_values(ev, student.student_network(ev), ["biases.nope"])

    @pytest.mark.parametrize("atol, passed", [(0.2, True), (0.1, False)])
    def test_judge_either_side_of_atol(self, course, atol, passed):
        params = {"weights.w": np.array([2.15]), "biases.b": np.array([1.0])}
        ev = graph_evidence(course, "linear_regression", params)
        v = run("parameters", ev, expect={"weights.w": 2.0}, atol=atol)
        if passed:
            assert v.message == (
                "`weights['w']` = 2.15 (close to the values used to generate the data)"
            )
        else:
            assert v.message == "`weights['w']` is 2.15; expected about 2 (within 0.1)"

    def test_judge_refuses_an_answer_written_into_the_initializer(self, course):
        b = graphs.Builder()
        b.placeholder("Placeholder", (None,))
        b.node("w", "VariableV2", shape=(1,))
        b.const("two", np.array([2.0], dtype=np.float32))
        b.inits["w"] = "two:0"
        b.node("pred", "Mul", ["w", "Placeholder"], "line 4")
        arrays = {
            graphs.GRAPH_DEF: np.frombuffer(b.proto.SerializeToString(), np.uint8).copy(),
            graphs.graph_value_key("w"): np.array([2.0]),
        }
        facts = {
            "graph": {
                "names": {"weights.w": "w", "pred": "pred:0", "x": "Placeholder:0"},
                "lines": {"w": "line 3"},
                "inits": b.inits,
            }
        }
        ev = evidence(course, "linear_regression", arrays, facts)
        v = run("parameters", ev, expect={"weights.w": 2.0})
        assert v.message == (
            "line 3: `weights['w']` starts at 2, the answer itself: it must be learned from the "
            "data, not written in"
        )


# --- decision_boundary ------------------------------------------------------------------------


class TestDecisionBoundary:
    check = "decision_boundary"
    # logit = x1 - 4: the vertical line x1 = 4, against the true 0.8*x1 + x2 - 3 = 0
    VERTICAL = np.array([[-4.0], [1.0], [0.0]])
    # Over [0, 8] x [-4, 3] (area 56) the two disagree on 8.8 (x1 > 4, below the line) plus
    # 6.4 (x1 <= 4, above it): they agree on 40.8 / 56 of the domain.
    AREA_SHARE = 40.8 / 56

    def vertical(self, course):
        # initialized with tf.zeros: at its initial values it predicts C0 everywhere
        return graph_evidence(course, "perceptron", {"weights.output": self.VERTICAL}, stddev=None)

    def test_measure_matches_the_area_computed_by_hand(self, course):
        ev = self.vertical(course)
        a = student.network_boundary(ev, student.student_network(ev), 200, 2000)
        assert a.on_grid == pytest.approx(self.AREA_SHARE, abs=0.01)
        assert a.on_held == pytest.approx(self.AREA_SHARE, abs=0.035)  # 3.5 sd of 2000 draws
        assert a.lowest == min(a.on_grid, a.on_held)

    def test_measure_on_a_hand_made_grid_and_the_graders_points(self, course):
        ev = self.vertical(course)
        x1, x2 = np.meshgrid(np.linspace(0, 8, 50), np.linspace(-4, 3, 50))
        on_grid = np.mean((x1 > 4) == (0.8 * x1 + x2 - 3 >= 0))
        seed = ev.assignment.grading_seed + measures.HELDOUT_SEED
        held, _, _ = ev.task.dataset(10, seed)  # never shown to the sandbox
        on_held = np.mean((held[:, 0] > 4) == (0.8 * held[:, 0] + held[:, 1] - 3 >= 0))
        a = student.network_boundary(ev, student.student_network(ev), 50, 10)
        assert (a.on_grid, a.on_held) == (pytest.approx(on_grid), pytest.approx(on_held))

    def test_judge_either_side_of_minimum(self, course):
        ev = self.vertical(course)
        lowest = student.network_boundary(ev, student.student_network(ev), 200, 2000).lowest
        assert run("decision_boundary", ev, minimum=lowest - 0.001).passed
        v = run("decision_boundary", ev, minimum=lowest + 0.001)
        assert not v.passed and v.got == f"{lowest:.1%}"
        assert v.message.endswith(
            f"held-out points; expected at least {lowest + 0.001:.1%} (your network's output "
            f"`pred` is built at line 20)"
        )

    def test_judge_names_divergence(self, course):
        weights = {"weights.output": np.array([[np.inf], [1], [1]])}
        v = run("decision_boundary", graph_evidence(course, "perceptron", weights), minimum=0.5)
        assert v.message == "training diverged: `weights['output']` contain NaN or infinity"


# --- checkpoint_restore -----------------------------------------------------------------------


def softmax_regression(course, w, b, **arrays):
    """mnist_softmax's test file: y = softmax(x_train @ w + b), restored values w, b."""
    a = course.assignment("mnist_softmax")
    got, facts = graphs.lecture_network(
        a.task,
        {"w": w, "b": b},
        loss=False,
        input_name="x_train",
        pred_name="y",
        label_name="y_train",
    )
    return evidence(course, "mnist_softmax", {**got, **arrays}, facts, inputs={})


class TestCheckpointRestore:
    check = "checkpoint_restore"
    NAMES = dict(names=["w", "b"], pred="y", x="x_train")

    def test_measure_pairs_and_differences(self, course):
        ev = evidence(
            course,
            "mnist_softmax",
            {"train:w": np.array([1.0, 2.0, np.nan]), "w": np.array([1.0, 2.5, np.nan])},
            inputs={},
        )
        w, b = measures.restore_pairs(ev, ["w", "b"], "train:")
        assert w.difference == 0.5  # NaN where both are NaN counts as equal
        assert math.isnan(w.max_abs)
        assert (b.trained, b.restored) == (None, None)

    @pytest.mark.parametrize("gap, passed", [(0.5e-6, True), (2e-6, False)])
    def test_judge_either_side_of_atol(self, course, gap, passed):
        w, b = softmax_weights(3)
        ev = softmax_regression(course, w, b + gap, **{"train:w": w, "train:b": b})
        ev.data = splits(flat_images([0, 0, 0, 0]), np.array([3, 3, 1, 2]))
        v = run("checkpoint_restore", ev, atol=1e-6, **self.NAMES)
        if passed:
            assert v.message == (
                "Test_NN.py restored exactly what Train_NN.py trained (`w`, `b`): held-out "
                "accuracy 50.0% with the restored weights"
            )
        else:
            assert v.message == (
                "Test_NN.py used a `b` that differs from the one Train_NN.py trained, by up to "
                "2e-06: was the checkpoint saved after training, and restored rather than "
                "initialized again?"
            )

    def test_judge_refuses_a_restore_of_an_untrained_network(self, course):
        w, b = np.zeros((784, 10)), np.zeros(10)
        ev = softmax_regression(course, w, b, **{"train:w": w, "train:b": b})
        ev.data = splits(flat_images([0, 0, 0, 0]), np.array([3, 3, 1, 2]))
        v = run("checkpoint_restore", ev, **self.NAMES)
        assert not v.passed
        assert "what was saved and restored was not a trained network" in v.message


# --- accuracy ---------------------------------------------------------------------------------


class TestAccuracy:
    check = "accuracy"
    labels = np.array([3, 3, 1, 2])  # a model that always says 3 is right on half of them

    def test_measure_of_the_students_own_network(self, course):
        ev = softmax_regression(course, *softmax_weights(3))
        ev.data = splits(flat_images([0, 10, 20, 30]), self.labels)
        acc = student.network_accuracy(ev, student.student_network(ev), "y", "x_train")
        assert acc.accuracy == 0.5 and acc.predictions.tolist() == [3, 3, 3, 3]
        assert (acc.images, acc.top_class, acc.top_count) == (4, 3, 4)

    def test_measure_of_a_keras_model(self, course):
        facts, arrays = keras_facts([FLATTEN, dense(10, "softmax")], softmax_weights(2))
        ev = evidence(course, "keras_mnist", arrays, facts, inputs={})
        ev.data = splits(flat_images([0, 10, 20, 30]), self.labels)
        acc = measures.heldout_accuracy(ev)
        assert acc.accuracy == 0.25 and acc.predictions.tolist() == [2, 2, 2, 2]

    @pytest.mark.parametrize("minimum, passed", [(0.49, True), (0.51, False)])
    def test_judge_either_side_of_minimum(self, course, minimum, passed):
        ev = softmax_regression(course, *softmax_weights(3))
        ev.data = splits(flat_images([0, 10, 20, 30]), self.labels)
        v = run("accuracy", ev, minimum={"mnist-embedded": minimum}, pred="y", x="x_train")
        text = "accuracy 50.0% on 4 held-out images of MNIST (hand-made)"
        if passed:
            assert v.passed and v.message == text
        else:
            assert v.message == (
                f"{text}; expected at least 51.0%; it predicts 3 for 100% of the images (your "
                f"network's output `y` is built at line 21)"
            )

    def test_judge_skips_without_data_or_threshold(self, course):
        ev = evidence(course, "mnist_softmax", {}, inputs={})
        v = run("accuracy", ev, minimum={"mnist": 0.9})
        assert v.skipped and v.message.startswith("MNIST not available")
        ev.data = splits(flat_images([0]), np.array([1]), key="fashion-mnist")
        v = run("accuracy", ev, minimum={"mnist": 0.9})
        assert v.skipped and v.message == "no accuracy threshold is set for MNIST (hand-made)"


# --- one_hot ----------------------------------------------------------------------------------


class TestOneHot:
    check = "one_hot"

    def labelled(self, wrong: int) -> tuple[np.ndarray, np.ndarray]:
        pts = np.column_stack([np.linspace(0, 8, 100), np.full(100, 0.0)])
        cls = (0.8 * pts[:, 0] - 3 >= 0).astype(int)
        cls[:wrong] = 1 - cls[:wrong]
        return pts, np.eye(2)[cls]

    def test_measure_by_hand(self, course):
        ev = evidence(course, "softmax_classifier")
        assert measures.is_one_hot(np.array([[0, 1], [1, 0]]))
        assert not measures.is_one_hot(np.array([[1, 1], [1, 0]]))
        assert not measures.is_one_hot(np.array([[0.5, 0.5]]))
        pts, y = self.labelled(wrong=3)
        assert measures.label_agreement(ev.task, y, pts) == pytest.approx(0.97)

    @pytest.mark.parametrize("wrong, passed", [(1, True), (2, False)])
    def test_judge_either_side_of_99_percent(self, course, wrong, passed):
        pts, y = self.labelled(wrong)
        ev = evidence(course, "softmax_classifier", {"train_X": pts, "train_y": y})
        v = run("one_hot", ev)
        if passed:
            assert v.message == "`train_y` is one-hot, 100 rows, matching the data"
        else:
            assert v.message.startswith(
                "`train_y` does not match the classes of `train_X` (98.0% agree)"
            )


# --- Keras ------------------------------------------------------------------------------------


class TestModelStructure:
    check = "model_structure"
    layers = [
        {"class_name": "Flatten"},
        {"class_name": "Dense", "units": 10, "activation": "softmax"},
    ]

    def test_measure_lists_the_differences(self, course):
        facts, arrays = keras_facts([FLATTEN, dense(10, "sigmoid")], softmax_weights(0))
        ev = evidence(course, "keras_mnist", arrays, facts, inputs={})
        model = measures.student_model(ev)
        assert model.params == 784 * 10 + 10
        reference, diffs = measures.structure_differences(model, [28, 28], self.layers, False)
        assert reference.params == 7850
        assert len(diffs) == 1 and "sigmoid; the reference uses softmax" in diffs[0]

    @pytest.mark.parametrize("activation", ["softmax", "relu"])
    def test_judge_pass_and_fail(self, course, activation):
        facts, arrays = keras_facts([FLATTEN, dense(10, activation)], softmax_weights(0))
        ev = evidence(course, "keras_mnist", arrays, facts, inputs={})
        v = run("model_structure", ev, input_shape=[28, 28], layers=self.layers)
        if activation == "softmax":
            assert v.message == "the model matches the reference: 7,850 parameters"
        else:
            assert not v.passed and "relu; the reference uses softmax" in v.message

    def test_judge_a_missing_model(self, course):
        ev = evidence(course, "keras_mnist", {}, {"missing": {"model": "not defined"}}, inputs={})
        v = run("model_structure", ev, input_shape=[28, 28], layers=[])
        assert v.message == "no Keras model `model` in your code: not defined"


class TestCompileConfig:
    check = "compile_config"
    compile = {
        "loss": "Sparse_Categorical_Crossentropy",
        "optimizer": {"class_name": "Adam", "config": {"name": "adam"}},
        "metrics": ["accuracy"],
    }

    def test_measure_names_strings_and_objects_alike(self, course):
        ev = evidence(course, "keras_mnist", {}, {"keras": {"compile": self.compile}}, inputs={})
        assert measures.compiled_with(ev) == measures.Compiled(
            "sparse_categorical_crossentropy", "adam", ["accuracy"]
        )
        for cls, name in [("SGD", "sgd"), ("LossScaleOptimizer", "loss_scale_optimizer")]:
            facts = {"keras": {"compile": self.compile, "optimizer": {"class": cls}}}
            ev = evidence(course, "keras_mnist", {}, facts, inputs={})
            assert measures.compiled_with(ev).optimizer == name
        assert measures.compiled_with(evidence(course, "keras_mnist", inputs={})) is None

    def test_judge_pass_and_fail(self, course):
        ev = evidence(course, "keras_mnist", {}, {"keras": {"compile": self.compile}}, inputs={})
        params = {"loss": ["sparse_categorical_crossentropy"], "metrics": ["accuracy"]}
        v = run("compile_config", ev, optimizer=["adam"], **params)
        assert v.message == (
            "compiled with loss 'sparse_categorical_crossentropy', optimizer 'adam', metrics "
            "['accuracy']"
        )
        v = run("compile_config", ev, optimizer=["sgd"], **params)
        assert v.message == "optimizer is 'adam'; this assignment uses 'sgd'"


class TestSaveLoad:
    check = "save_load"

    def test_measure_lists_the_saved_files(self, course):
        saved = [{"file": "MINST.h5", "max_diff": 0.0}]
        ev = evidence(course, "keras_mnist", {}, {"keras": {"saved": saved}}, inputs={})
        assert measures.saved_models(ev) == saved
        assert measures.saved_models(evidence(course, "keras_mnist", inputs={})) == []

    @pytest.mark.parametrize("diff, passed", [(5e-6, True), (2e-5, False)])
    def test_judge_either_side_of_atol(self, course, diff, passed):
        saved = [{"file": "MINST.h5", "max_diff": diff}]
        ev = evidence(course, "keras_mnist", {}, {"keras": {"saved": saved}}, inputs={})
        v = run("save_load", ev, atol=1e-5)
        if passed:
            assert v.message == "MINST.h5 loads back and predicts the same"
        else:
            assert v.message == (
                "MINST.h5 loaded back predicts differently (up to 2e-05): was it saved before "
                "training finished?"
            )


class TestSchedule:
    check = "schedule"
    params = {"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.5}

    def test_measure_the_formula_by_hand(self):
        assert measures.decayed_rate(1000, 0.1, 1000, 0.5, False) == pytest.approx(0.05)
        assert measures.decayed_rate(1500, 0.1, 1000, 0.5, False) == pytest.approx(
            0.1 / math.sqrt(8)
        )
        assert measures.decayed_rate(1500, 0.1, 1000, 0.5, True) == pytest.approx(0.05)

    def test_measure_reads_the_sampled_rates(self, course):
        sched = {"class": "ExponentialDecay", "steps": [0, 1000], "values": [0.1, 0.05]}
        ev = evidence(course, "keras_mlp", {}, {"keras": {"schedule": sched}}, inputs={})
        rates = measures.learning_rates(ev)
        assert (rates.kind, rates.steps, rates.values) == (
            "ExponentialDecay",
            [0, 1000],
            [0.1, 0.05],
        )
        assert measures.learning_rates(evidence(course, "keras_mlp", inputs={})) is None

    @pytest.mark.parametrize("value, passed", [(0.050001, True), (0.0501, False)])
    def test_judge_either_side_of_the_tolerance(self, course, value, passed):
        sched = {"class": "ExponentialDecay", "steps": [0, 1000], "values": [0.1, value]}
        ev = evidence(course, "keras_mlp", {}, {"keras": {"schedule": sched}}, inputs={})
        v = run("schedule", ev, **self.params)
        if passed:
            assert v.message == "learning rate 0.1 x 0.5^(step/1000), as in the notes"
        else:
            assert v.message == (
                "at step 1000 the learning rate is 0.0501; expected 0.05 (your schedule: {})"
            )


class TestTensorboardLog:
    check = "tensorboard_log"
    logs = ROOT / "tests" / "fixtures" / "keras" / "tb_logs"

    def evidence_with_logs(self, course, files: dict[str, bytes]):
        facts = {"keras": {"event_files": list(files)}}
        arrays = {f"tb:{i}": np.frombuffer(b, dtype=np.uint8) for i, b in enumerate(files.values())}
        return evidence(course, "keras_mlp", arrays, facts, inputs={})

    def real_logs(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.logs)): p.read_bytes() for p in sorted(self.logs.rglob("*.v2"))
        }

    def test_measure_reads_the_losses_keras_reported(self, course):
        history = json.loads((self.logs.parent / "tb_history.json").read_text())
        scalars = measures.event_scalars(self.evidence_with_logs(course, self.real_logs()))
        name, points = measures.scalar_series(scalars, "epoch_loss", "train")
        assert name == "train/epoch_loss"
        assert [v for _, v in points] == pytest.approx(history["loss"], rel=1e-6)
        assert measures.scalar_series(scalars, "epoch_loss", "test") is None
        assert measures.event_scalars(evidence(course, "keras_mlp", inputs={})) is None

    def test_judge_a_decreasing_and_a_flat_loss(self, course):
        v = run("tensorboard_log", self.evidence_with_logs(course, self.real_logs()))
        assert v.message == "train/epoch_loss: 3 values, from 0.271 to 0.1663"
        from tests.test_tb_events import event, record, value

        flat = b"".join(record(event(s, value("epoch_loss", simple=0.5))) for s in (1, 2))
        v = run("tensorboard_log", self.evidence_with_logs(course, {"train/events.v2": flat}))
        assert v.message == "train/epoch_loss went from 0.5 to 0.5: it did not decrease"


# --- autoencoder ------------------------------------------------------------------------------


def tiny_autoencoder(bias: float) -> dict[str, np.ndarray]:
    """784-3-3-2-3-3-784 weights: zero everywhere, so that every output pixel is `bias`."""
    sizes = [784, 3, 3, 2, 3, 3, 784]
    names = ["encoder1", "encoder2", "latent", "decoder2", "decoder1", "reconst"]
    params = {}
    for name, (m, n) in zip(names, zip(sizes, sizes[1:], strict=False), strict=True):
        params[f"weights.{name}"] = np.zeros((m, n))
        params[f"biases.{name}"] = np.zeros(n)
    params["biases.reconst"][:] = bias
    return params


def autoencoder_evidence(course, params):
    arrays, facts = graphs.autoencoder_network(course.assignment("autoencoder").task, params)
    return evidence(course, "autoencoder", arrays, facts, inputs={})


class TestReconstruction:
    check = "reconstruction"
    images = flat_images([0, 255, 255, 0, 255])
    labels = np.array([1, 5, 6, 2, 7])  # digits 2 and 7 are not the assignment's

    def test_measure_by_hand(self, course):
        ev = autoencoder_evidence(course, tiny_autoencoder(0.5))
        x = ev.task.features(self.images)
        z, out = codes_and_images(
            student.student_network(ev),
            x,
            encoder="latent",
            decoder="reconst",
            code="latent_input",
            input="x",
        )
        assert z.shape == (5, 2) and np.all(out == 0.5)

    @pytest.mark.parametrize("maximum, passed", [(0.26, True), (0.24, False)])
    def test_judge_either_side_of_maximum(self, course, maximum, passed):
        ev = autoencoder_evidence(course, tiny_autoencoder(0.5))
        ev.data = splits(self.images, self.labels)
        v = run("reconstruction", ev, maximum={"mnist-embedded": maximum})
        text = "mean squared reconstruction error 0.2500 on 3 held-out images of digits 1/5/6"
        if passed:
            assert v.passed and v.message == text
        else:
            assert v.message == f"{text}; expected at most 0.24" and v.got == "0.2500"


class TestLatentSeparation:
    check = "latent_separation"

    def encoder(self) -> dict[str, np.ndarray]:
        """z = (2 tanh(tanh(mean pixel)), 0.5): the first unit averages the image."""
        params = tiny_autoencoder(0.0)
        params["weights.encoder1"][:, 0] = 1 / 784
        params["weights.encoder2"][:] = np.eye(3)
        params["weights.latent"][0, 0] = 2.0
        params["biases.latent"][1] = 0.5
        return params

    def test_measure_latent_codes_by_hand(self, course):
        ev = autoencoder_evidence(course, self.encoder())
        net = student.student_network(ev)
        z = net.run("latent", {"x": ev.task.features(flat_images([0, 51, 255]))})
        assert z.shape == (3, 2)
        assert z[:, 0] == pytest.approx(2 * np.tanh(np.tanh([0.0, 0.2, 1.0])))
        assert np.all(z[:, 1] == 0.5)

    def test_measure_knn_on_separated_and_mixed_codes(self):
        z = np.concatenate([np.zeros((10, 2)), np.full((10, 2), 10.0)])
        labels = np.repeat([1, 5], 10)
        assert measures.latent_separation(z, labels, 3) == 1.0
        # Every code the same: a neighbour vote cannot tell the digits apart (at best one class).
        assert measures.latent_separation(np.zeros((20, 2)), labels, 3) <= 0.5

    def test_judge_either_side_of_minimum(self, course):
        rng = np.random.default_rng(0)
        values = rng.integers(0, 256, 60)
        ev = autoencoder_evidence(course, self.encoder())
        ev.data = splits(flat_images(list(values)), np.resize([1, 5, 6], 60))
        z = student.student_network(ev).run("latent", {"x": ev.task.features(ev.data.heldout_x)})
        acc = measures.latent_separation(z, ev.data.heldout_y, 5)
        assert run("latent_separation", ev, minimum={"mnist-embedded": acc - 0.001}).passed
        v = run("latent_separation", ev, minimum={"mnist-embedded": acc + 0.001})
        assert v.message == (
            f"a 5-nearest-neighbour classifier tells digits 1/5/6 apart from their 2-D latent "
            f"codes with {acc:.1%} accuracy (60 held-out images, 5-fold); expected at least "
            f"{acc + 0.001:.1%}"
        )


# --- values -------------------------------------------------------------------------------------


class TestRecords:
    check = "records"

    def test_measure_lengths_and_finiteness(self, course):
        arrays = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([[1.0], [np.nan]])}
        ev = evidence(course, "mnist_mlp", arrays, inputs={})
        a, b, c = measures.record_lengths(ev, ["a", "b", "c"])
        assert (a.length, a.finite, b.length, b.finite) == (3, True, 2, False)
        assert isinstance(c.missing, Missing)

    @pytest.mark.parametrize("min_length, passed", [(3, True), (4, False)])
    def test_judge_either_side_of_min_length(self, course, min_length, passed):
        arrays = {"a": np.ones(3), "b": np.ones(3)}
        ev = evidence(course, "mnist_mlp", arrays, inputs={})
        v = run("records", ev, names=["a", "b"], min_length=min_length)
        if passed:
            assert v.message == "`a` and `b`: 3 entries each"
        else:
            assert v.message == (
                "`a` has 3 entries; expected at least 4\n`b` has 3 entries; expected at least 4"
            )


class TestValues:
    check = "values"

    def test_measure_deviation_by_hand(self, course):
        ev = evidence(course, "intro_numpy", {"A": np.array([[1.0, 2.0004]])})
        found = measures.computed_value(ev, "A", np.array([1.0, 2.0]))
        assert found.deviation == pytest.approx(0.0004)
        assert measures.computed_value(ev, "A", np.array([1.0])).got.size == 2
        ev.facts["call_errors"] = {"f": "boom"}
        assert measures.computed_value(ev, "call:f", np.array(1.0)).error == "boom"

    @pytest.mark.parametrize("atol, passed", [(5e-4, True), (3e-4, False)])
    def test_judge_either_side_of_atol(self, course, atol, passed):
        ev = evidence(course, "intro_numpy", {"A": np.array([1.0, 2.0004])})
        v = run("values", ev, cases=[{"of": "A", "expected": [1, 2], "atol": atol}])
        if passed:
            assert v.message == "all 1 values are right"
        else:
            assert v.message == "`A` is [1, 2]; expected [1, 2] (within 0.0003)"


class TestCallCount:
    check = "call_count"

    def test_measure_reads_the_counted_runs(self, course):
        facts = {
            "call_counts": {"mfib": [{"n": 10, "calls": 19}, {"n": 5, "calls": 9, "capped": True}]}
        }
        ev = evidence(course, "recursion", facts=facts)
        assert measures.call_counts(ev, "mfib") == [
            measures.CallRun(10, 19),
            measures.CallRun(5, 9, capped=True),
        ]
        assert measures.call_counts(ev, "fib") is None

    @pytest.mark.parametrize("per_n, passed", [(3.0, True), (2.9, False)])
    def test_judge_either_side_of_the_limit(self, course, per_n, passed):
        ev = evidence(
            course, "recursion", facts={"call_counts": {"mfib": [{"n": 10, "calls": 32}]}}
        )
        v = run("call_count", ev, function="mfib", per_n=per_n)
        if passed:
            assert v.message == "calls grow linearly with n (mfib(10): 32 calls)"
        else:
            assert v.message == (
                "`mfib(10)` made 32 calls; expected at most 31 (linear in n), as memoization gives"
            )


class TestDrawnValues:
    check = "drawn_values"
    FAC = FunctionCall("fac_a", "fac", (17,))
    FWD = FunctionCall("f_a", "forward", ([[1.0, 2.0]], [0.5, 0.25]))

    def ev(self, course, got, *, sent=True, expected=None, **extra):
        ev = evidence(course, "recursion", {"call:fac_a": np.asarray(got)}, **extra)
        expected = {"fac_a": np.asarray(355687428096000.0)} if expected is None else expected
        ev.drawn = DrawnRun({"fac_a": self.FAC, "f_a": self.FWD}, sent, expected)
        return ev

    def test_measure_the_smallest_atol_at_the_given_rtol(self, course):
        ev = self.ev(course, 355687428096000.0 * (1 + 2e-9))
        (found,) = measures.drawn_values(ev, ["fac_a"], rtol=1e-9)
        assert found.deviation == pytest.approx(355687428096000.0 * 1e-9, rel=1e-3)
        ev.facts["call_errors"] = {"fac_a": "RecursionError: too deep"}
        (found,) = measures.drawn_values(ev, ["fac_a"])
        assert found.error == "RecursionError: too deep" and found.got is None

    @pytest.mark.parametrize("rtol, passed", [(3e-15, True), (2e-15, False)])
    def test_judge_either_side_of_rtol(self, course, rtol, passed):
        ev = self.ev(course, 355687428096001.0)  # off by one in 3.6e14: 2.8e-15 relative
        v = run("drawn_values", ev, calls=["fac_a"], rtol=rtol, atol=0.0)
        if passed:
            assert v.message == "right on the numbers drawn for this run: `fac(17)`"
        else:
            assert v.message == (
                "`fac(17)` is 355687428096001; expected 355687428096000 (within 0 + 2e-15 x "
                "|expected|)"
            )

    def test_judge_nothing_counts_unless_the_runner_handed_the_calls_over(self, course):
        ev = self.ev(course, 355687428096000.0, sent=False)
        v = run("drawn_values", ev, calls=["fac_a"])
        assert v.score == 0 and "never asked for the grader's calls" in v.message

    def test_judge_without_a_reference_is_skipped_not_passed(self, course):
        ev = self.ev(course, 355687428096000.0)
        ev.drawn = DrawnRun(ev.drawn.calls, True, reference_missing=True)
        v = run("drawn_values", ev, calls=["fac_a"])
        assert v.skipped and v.score == 0

    def test_judge_a_slow_call_gets_the_hint_once(self, course):
        ev = self.ev(
            course, 0.0, facts={"call_errors": {"fac_a": "no result within 2 s of CPU time"}}
        )
        v = run("drawn_values", ev, calls=["fac_a"], slow_hint="Memoize.")
        assert v.message == "`fac(17)` failed: no result within 2 s of CPU time\nMemoize."


# --- the feedback figures are the measures' -------------------------------------------------------


def test_figures_plot_what_the_checks_measure(course):
    ev = softmax_regression(course, *softmax_weights(3))
    ev.data = splits(flat_images([0, 10, 20, 30]), np.array([3, 3, 1, 2]))
    made = figures.collect(ev)
    matrix = np.array(made["confusion"]["matrix"])
    assert matrix[3, 3] == 2 and matrix[1, 3] == matrix[2, 3] == 1 and matrix.sum() == 4

    ev = graph_evidence(course, "perceptron", {"weights.output": TestDecisionBoundary.VERTICAL})
    made = figures.collect(ev)["boundary"]
    predicted = np.array(made["predicted"])
    x1 = np.linspace(0, 8, figures.GRID)
    assert np.array_equal(predicted, np.tile(x1 > 4, (figures.GRID, 1)).astype(int))
