"""The one NumPy engine: activations, steps, the forward pass and the losses, against hand
computations; the lecture's networks (Task) and Keras models (Architecture) both run on it.

Run with `-W error::RuntimeWarning`: nothing here may overflow. The tests that feed huge values
also turn NumPy's overflow into an exception themselves, so they fail without the flag too.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from grader.course.tasks import InputKind, LabelKind, LossKind, ModelKind, Op, Task
from grader.errors import SpecError
from grader.model import engine
from grader.model.keras import parse_architecture
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "keras"
HUGE = np.array([-1e308, -1e5, -800.0, -745.0, -40.0, 0.0, 40.0, 745.0, 800.0, 1e5, 1e308])


def strict():
    """NumPy overflow, invalid values and divisions by zero raise (underflow to 0 is fine)."""
    return np.errstate(over="raise", invalid="raise", divide="raise")


# --- activations ---------------------------------------------------------------------------------


def test_sigmoid_hand_values():
    z = np.array([-2.0, 0.0, 2.0])
    want = [1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-2.0))]
    np.testing.assert_allclose(engine.sigmoid(z), want, rtol=1e-12, atol=0)


def test_sigmoid_of_huge_values_is_exact_and_silent():
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        s = engine.sigmoid(HUGE)
    assert s.dtype == np.float64
    assert s[0] == 0.0 and s[1] == 0.0 and s[2] == 0.0  # e^-800 is below the smallest float
    assert s[-1] == 1.0 and s[-2] == 1.0 and s[-3] == 1.0
    assert s[5] == 0.5
    # e^-40 / (1 + e^-40): full relative precision on the small side, not 1 - (1 - tiny)
    np.testing.assert_allclose(s[4], math.exp(-40.0) / (1 + math.exp(-40.0)), rtol=1e-12)
    np.testing.assert_allclose(s + engine.sigmoid(-HUGE), 1.0, rtol=0, atol=1e-15)


def test_sigmoid_equals_the_textbook_form_where_that_does_not_overflow():
    z = np.linspace(-30, 30, 1201)
    np.testing.assert_allclose(engine.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=0, atol=1e-12)


def test_relu_tanh_linear_hand_values():
    z = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(engine.relu(z), [[0.0, 0.0, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(
        engine.tanh(z), [[math.tanh(v) for v in z[0]]], rtol=1e-12, atol=1e-300
    )
    np.testing.assert_array_equal(engine.linear(z), z)
    with strict():
        np.testing.assert_array_equal(engine.tanh(HUGE)[[0, -1]], [-1.0, 1.0])
        np.testing.assert_array_equal(engine.relu(HUGE), np.maximum(HUGE, 0))


def test_softmax_hand_values_and_huge_logits():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    total = math.exp(1) + math.exp(2) + math.exp(3)
    want = [[math.exp(1) / total, math.exp(2) / total, math.exp(3) / total], [1 / 3] * 3]
    np.testing.assert_allclose(engine.softmax(z), want, rtol=1e-12)
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        big = engine.softmax(np.array([[1000.0, 1000.0], [-1000.0, 0.0], [1e300, -1e300]]))
    np.testing.assert_array_equal(big, [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])


def test_activations_are_float64_for_integer_input():
    for name, fn in engine.ACTIVATIONS.items():
        assert fn(np.array([[1, 2]])).dtype == np.float64, name


# --- steps and the forward pass --------------------------------------------------------------------

W1 = np.array([[1.0, -1.0], [0.5, 2.0]])
B1 = np.array([0.0, 1.0])
W2 = np.array([[1.0], [-1.0]])
B2 = np.array([0.5])


def test_forward_equals_a_hand_computation():
    x = np.array([[1.0, 2.0], [0.0, -1.0]])
    # row 1: [1 + 1, -1 + 4] + [0, 1] = [2, 4] -> relu [2, 4] -> 2 - 4 + 0.5 = -1.5
    # row 2: [-0.5, -2] + [0, 1] = [-0.5, -1] -> relu [0, 0] -> 0.5
    want = [[1 / (1 + math.exp(1.5))], [1 / (1 + math.exp(-0.5))]]
    steps = [engine.Dense(W1, B1, "relu"), engine.Dense(W2, B2, "sigmoid")]
    out = engine.forward(steps, x)
    assert out.dtype == np.float64 and out.shape == (2, 1)
    np.testing.assert_allclose(out, want, rtol=1e-12)
    chain = engine.Chain(tuple(steps))
    np.testing.assert_array_equal(chain(x), out)
    np.testing.assert_array_equal(chain[:1](x), [[2.0, 4.0], [0.0, 0.0]])
    assert len(chain[1:]) == 1


def test_scale_op_and_float32_input():
    x = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    step = engine.Dense(np.array([2.0]), np.array([1.0]), op="scale")
    np.testing.assert_array_equal(engine.forward([step], x), [3.0, -3.0, 2.0])
    assert engine.forward([step], x).dtype == np.float64


def test_flatten_identity_and_a_plain_function_are_steps():
    x = np.arange(12.0).reshape(2, 2, 3)  # (batch, channels, width) when channels come first
    np.testing.assert_array_equal(engine.Flatten()(x), x.reshape(2, 6))
    np.testing.assert_array_equal(
        engine.Flatten(channels_first=True)(x), np.transpose(x, (0, 2, 1)).reshape(2, 6)
    )
    out = engine.forward([engine.identity, lambda h: h * 2, engine.Activation("relu")], -x)
    np.testing.assert_array_equal(out, np.zeros_like(x))


# --- losses ----------------------------------------------------------------------------------------


def test_sigmoid_cross_entropy_hand_values():
    z = np.array([[0.0], [2.0], [-3.0]])
    t = np.array([1.0, 1.0, 0.0])  # (m,) labels for (m, 1) logits: the same labels
    per = [math.log(2.0), math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(-3.0))]
    np.testing.assert_allclose(
        engine.sigmoid_cross_entropy_with_logits(t, z).ravel(), per, rtol=1e-12
    )
    assert engine.sigmoid_cross_entropy(z, t) == pytest.approx(sum(per) / 3, rel=1e-12)


def test_sigmoid_cross_entropy_of_huge_logits_is_finite():
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = engine.sigmoid_cross_entropy_with_logits(
            np.array([1.0, 0.0, 1.0]), np.array([-1000.0, 1000.0, 1000.0])
        )
    np.testing.assert_allclose(loss, [1000.0, 1000.0, 0.0], rtol=1e-12)


def test_softmax_cross_entropy_hand_values():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    t = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    per = [math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3.0, math.log(3.0)]
    np.testing.assert_allclose(engine.softmax_cross_entropy_with_logits(t, z), per, rtol=1e-12)
    assert engine.softmax_cross_entropy(z, t) == pytest.approx(sum(per) / 2, rel=1e-12)
    with strict():
        huge = engine.softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert huge == 1000.0


def test_mean_squared_error_hand_values():
    assert engine.mean_squared_error(np.array([1.0, 2.0]), np.array([0.0, 4.0])) == 2.5
    assert engine.mean_squared_error(np.array([[1.0], [2.0]]), np.array([0.0, 4.0])) == 2.5


# --- shape errors ----------------------------------------------------------------------------------


def test_shape_mismatches_raise_value_errors_naming_the_shapes():
    x = np.ones((4, 3))
    with pytest.raises(
        ValueError,
        match=r"^layer 2: inputs of shape \(4, 3\) cannot be multiplied by a weight of shape "
        r"\(2, 1\): the inputs' last axis \(3\) must equal the weight's first axis \(2\)$",
    ):
        engine.forward([engine.Dense(np.ones((2, 1)), where="layer 2")], x)
    with pytest.raises(ValueError, match=r"a bias of shape \(2,\) does not fit inputs of shape"):
        engine.forward([engine.Dense(np.ones((3, 5)), np.ones(2))], x)
    with pytest.raises(ValueError, match=r"element-wise weight of shape \(2,\) does not fit"):
        engine.scale(x, np.ones(2))
    with pytest.raises(ValueError, match=r"not scalars"):
        engine.matmul(x, np.float64(2.0))
    with pytest.raises(ValueError, match=r"labels have shape \(3,\) \(3 values\); the outputs"):
        engine.mean_squared_error(np.ones((4, 1)), np.ones(3))
    with pytest.raises(ValueError, match=r"sigmoid cross entropy: the labels have shape"):
        engine.sigmoid_cross_entropy(np.ones((4, 1)), np.ones(3))
    with pytest.raises(ValueError, match=r"logits have shape \(4,\); expected \(batch, classes\)"):
        engine.softmax_cross_entropy(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match=r"the labels have shape \(4, 3\); the logits have"):
        engine.softmax_cross_entropy(np.ones((4, 2)), np.ones((4, 3)))


def test_unknown_activations_and_ops_are_refused_when_the_step_is_made():
    with pytest.raises(ValueError, match=r"activation 'softplus' is not one the engine computes"):
        engine.Dense(W1, activation="softplus")
    with pytest.raises(ValueError, match=r"op 'conv'"):
        engine.Dense(W1, op="conv")
    with pytest.raises(ValueError, match=r"activation 'elu'"):
        engine.Activation("elu")


# --- the lecture's network and a Keras model are the same engine -----------------------------------


def mlp_task(hidden: str, output: str) -> Task:
    layers = [
        {"weight": "weights.hidden", "bias": "biases.hidden", "activation": hidden},
        {"weight": "weights.output", "bias": "biases.output", "activation": output},
    ]
    spec = {"generator": "quadratic", "labels": "onehot", "loss": "softmax_ce", "layers": layers}
    return Task.from_spec(spec, "test")


def keras_dense_stack(kernel1, bias1, kernel2, bias2, hidden: str, output: str):
    layers = [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 2]}},
        {"class_name": "Dense", "config": {"name": "h", "units": 3, "activation": hidden}},
        {"class_name": "Dense", "config": {"name": "o", "units": 2, "activation": output}},
    ]
    text = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": layers}})
    return parse_architecture(text, [kernel1, bias1, kernel2, bias2])


@pytest.mark.parametrize(("hidden", "output"), [("sigmoid", "softmax"), ("tanh", "linear")])
def test_keras_and_the_lecture_network_agree_on_the_same_dense_stack(hidden, output):
    rng = np.random.default_rng(3)
    k1, b1 = rng.normal(0, 50, (2, 3)), rng.normal(0, 50, 3)  # large: saturating activations
    k2, b2 = rng.normal(0, 50, (3, 2)), rng.normal(0, 50, 2)
    x = rng.normal(0, 3, (64, 2))
    params = {"weights.hidden": k1, "biases.hidden": b1, "weights.output": k2, "biases.output": b2}
    with strict():
        lecture = mlp_task(hidden, output).forward(params, x)
        keras = keras_dense_stack(k1, b1, k2, b2, hidden, output).forward(x)
    act = engine.ACTIVATIONS
    by_hand = act[output](act[hidden](x @ k1 + b1) @ k2 + b2)
    np.testing.assert_array_equal(lecture, keras)
    np.testing.assert_allclose(lecture, by_hand, rtol=1e-12, atol=1e-12)


def test_the_lecture_network_reproduces_keras_predict():
    """The fixture's Dense(128) + sigmoid + Dropout + Dense(10, softmax), rebuilt as a lecture
    task, gives Keras' own predictions, as the Keras reading does."""
    with np.load(FIXTURES / "mlp_dropout.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    arch = parse_architecture((FIXTURES / "mlp_dropout.json").read_text(), weights_of(a))
    assert [la.kind for la in arch.layers] == ["Dense", "Activation", "Dropout", "Dense"]
    dense = [la for la in arch.layers if la.kind == "Dense"]
    params = {"weights.hidden": dense[0].kernel, "biases.hidden": dense[0].bias}
    params |= {"weights.output": dense[1].kernel, "biases.output": dense[1].bias}
    task = mlp_task("sigmoid", "softmax")
    out = task.forward(params, a["probe"].reshape(len(a["probe"]), -1))
    np.testing.assert_allclose(out, a["expected"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out, arch.forward(a["probe"]), rtol=0, atol=1e-12)


def weights_of(a: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [a[k] for k in sorted(a) if k.startswith("weight_")]


def test_lecture_forward_names_the_layer_whose_weights_do_not_fit():
    task = mlp_task("sigmoid", "linear")
    params = {
        "weights.hidden": np.ones((3, 4)),
        "biases.hidden": np.ones(4),
        "weights.output": np.ones((4, 2)),
        "biases.output": np.ones(2),
    }
    with pytest.raises(ValueError, match=r"^`weights\['hidden'\]`: inputs of shape \(5, 2\)"):
        task.forward(params, np.ones((5, 2)))


# --- typed tasks -----------------------------------------------------------------------------------


def test_task_choices_are_typed_and_still_read_as_strings():
    task = mlp_task("sigmoid", "linear")
    assert task.input is InputKind.RAW and task.labels is LabelKind.ONEHOT
    assert task.loss is LossKind.SOFTMAX_CE and task.model is ModelKind.GRAPH
    assert task.layers[0].op is Op.MATMUL
    assert task.labels == "onehot" and task.loss != "mse"
    assert f"{task.loss}" == "softmax_ce" and str(task.model) == "graph"
    assert {"softmax_ce": 1}[task.loss] == 1
    assert json.dumps([task.input]) == '["raw"]'


@pytest.mark.parametrize(
    ("loss", "fn"),
    [
        ("mse", engine.mean_squared_error),
        ("sigmoid_ce", engine.sigmoid_cross_entropy),
        ("softmax_ce", engine.softmax_cross_entropy),
    ],
)
def test_each_loss_kind_computes_its_engine_loss(loss, fn):
    task = Task.from_spec({"generator": "halfplane", "loss": loss}, "test")
    rng = np.random.default_rng(0)
    z, t = rng.normal(size=(6, 2)), np.eye(2)[rng.integers(0, 2, 6)]
    assert task.loss_value(z, t) == fn(z, t)


def test_features_and_targets_follow_input_and_labels():
    points = np.array([[0.5, 1.0], [-0.25, 2.0]])
    line = Task.from_spec({"generator": "line", "labels": "regression", "loss": "mse"}, "t")
    np.testing.assert_array_equal(line.features(points), [0.5, -0.25])
    rng = np.random.default_rng(1)
    noise = 0.3 * np.random.default_rng(1).standard_normal(2)
    np.testing.assert_allclose(line.targets(points, rng), [2.0, 0.5] + noise, rtol=1e-12)
    perceptron = Task.from_spec({"generator": "halfplane", "input": "bias_column"}, "t")
    np.testing.assert_array_equal(perceptron.features(points), [[1, 0.5, 1], [1, -0.25, 2]])
    # halfplane: 0.8*x1 + x2 - 3 >= 0 -> C1
    halfplane = np.array([[5.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(perceptron.targets(halfplane, rng), [[1.0], [0.0]])
    onehot = Task.from_spec({"generator": "halfplane", "labels": "onehot"}, "t")
    np.testing.assert_array_equal(onehot.targets(halfplane, rng), [[0, 1], [1, 0]])
    images = np.full((2, 28, 28), 255, dtype=np.uint8)
    auto = Task.from_spec({"data": "mnist", "input": "pixels", "labels": "reconstruction"}, "t")
    assert auto.features(images).shape == (2, 784)
    np.testing.assert_array_equal(auto.image_targets(images, np.array([1, 5])), np.ones((2, 784)))
    keras = Task.from_spec({"data": "mnist", "input": "images", "model": "keras"}, "t")
    np.testing.assert_array_equal(keras.features(images), np.ones((2, 28, 28)))
    np.testing.assert_array_equal(
        keras.image_targets(images, np.array([3, 0]))[:, [0, 3]], np.eye(2)[::-1]
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"loss": "hinge"}, "[task].loss = 'hinge'; allowed: ('sigmoid_ce', 'softmax_ce', 'mse')"),
        (
            {"input": "rgb"},
            "[task].input = 'rgb'; allowed: ('raw', 'bias_column', 'pixels', 'images')",
        ),
        ({"model": "torch"}, "[task].model = 'torch'; allowed: 'graph', 'keras'"),
        (
            {"layers": [{"weight": "w", "op": "conv"}]},
            "[task].layers[0].op must be 'matmul' or 'scale'",
        ),
        (
            {"layers": [{"weight": "w", "activation": "elu", "op": "conv"}]},
            "[task].layers[0].activation = 'elu'; allowed: ['linear', 'relu', 'sigmoid', 'softmax', 'tanh']",
        ),
    ],
)
def test_bad_choices_are_spec_errors(edit, message):
    with pytest.raises(SpecError) as info:
        Task.from_spec({"generator": "halfplane", **edit}, "spec.toml")
    assert str(info.value) == f"spec.toml: {message}"
