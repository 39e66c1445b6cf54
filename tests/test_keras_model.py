"""Reading a Keras model as data: allow-list, weights, numpy forward pass, structure diff.

The fixtures are real Keras 3 output (tests/fixtures/keras/make_fixtures.py, run in its own
process); this file never imports TensorFlow or Keras.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from grader.model.keras import (
    Architecture,
    ModelRefused,
    compare_structure,
    parse_architecture,
)
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "keras"


def text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def weights(name: str) -> list[np.ndarray]:
    a = arrays(name)
    return [a[k] for k in sorted(a) if k.startswith("weight_")]


def model(name: str, weights_of: str | None = None) -> Architecture:
    return parse_architecture(text(name), weights(weights_of or name))


def edited(name: str, edit) -> str:
    """The fixture's JSON with `edit(layers)` applied to its list of layers."""
    d = json.loads(text(name))
    edit(d["config"]["layers"])
    return json.dumps(d)


# --- the forward pass reproduces Keras' own predictions ---------------------------------------


@pytest.mark.parametrize("name", ["lecture_mnist", "mlp_dropout", "functional_chain", "no_flatten"])
def test_forward_reproduces_keras_predict(name):
    a = arrays(name)
    out = model(name).forward(a["probe"])
    assert out.dtype == np.float64
    assert out.shape == a["expected"].shape
    np.testing.assert_allclose(out, a["expected"], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("twin", "of"),
    [("mlp_dropout_args", "mlp_dropout"), ("functional_chain_seq", "functional_chain")],
)
def test_an_equivalent_spelling_computes_the_same(twin, of):
    a = arrays(of)
    out = model(twin, weights_of=of).forward(a["probe"])
    np.testing.assert_allclose(out, a["expected"], rtol=0, atol=1e-5)


def test_the_lecture_model_reads_as_flatten_then_softmax_dense():
    m = model("lecture_mnist")
    assert m.model_class == "Sequential"
    assert m.input_shape == (None, 28, 28)
    assert [(la.index, la.kind, la.output_shape, la.params) for la in m.layers] == [
        (1, "Flatten", (None, 784), 0),
        (2, "Dense", (None, 10), 7850),
    ]
    dense = m.layers[1]
    assert (dense.units, dense.activation, dense.use_bias, dense.name) == (
        10,
        "softmax",
        True,
        "dense",
    )
    assert m.params == 7850 and m.output_shape == (None, 10)
    probs = m.forward(arrays("lecture_mnist")["probe"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_summary_lists_layers_shapes_activations_and_params():
    s = model("mlp_dropout").summary()
    assert 'Model: "sequential" (Sequential), input shape (None, 784)' in s
    for line in ["dense (Dense)", "(None, 128)", "activation (Activation)", "sigmoid", "100,480"]:
        assert line in s
    assert s.rstrip().endswith("Total params: 101,770")


def test_functional_model_is_read_in_chain_order():
    m = model("functional_chain")
    assert m.model_class == "Functional" and m.name == "chain"
    assert [la.kind for la in m.layers] == [
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "ReLU",
        "Dense",
        "Softmax",
    ]
    assert m.layers[3].use_bias is False and m.layers[3].bias is None


def test_weights_are_read_only_copies():
    w = weights("lecture_mnist")
    m = parse_architecture(text("lecture_mnist"), w)
    w[0][0, 0] = 1e9
    assert m.layers[1].kernel[0, 0] != 1e9
    with pytest.raises(ValueError):
        m.layers[1].kernel[0, 0] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.layers = ()


def test_forward_names_a_wrong_input_shape():
    with pytest.raises(
        ValueError, match=r"inputs have shape \(3, 784\); the model takes \(None, 28, 28\)"
    ):
        model("lecture_mnist").forward(np.zeros((3, 784)))


def test_sigmoid_does_not_overflow():
    d = json.loads(text("mlp_dropout"))
    m = parse_architecture(json.dumps(d), [w * 1e4 for w in weights("mlp_dropout")])
    with np.errstate(over="raise", invalid="raise"):
        out = m.forward(np.ones((2, 784)))
    assert np.isfinite(out).all()


# --- input shapes: every Keras spelling is the same ---------------------------------------------


def keras2_lecture(first_config: dict) -> str:
    """The lecture model as Keras 2 wrote it: no InputLayer, the shape on the first layer."""
    layers = [
        {"class_name": "Flatten", "config": {"name": "flatten", **first_config}},
        {
            "class_name": "Dense",
            "config": {"name": "dense", "units": 10, "activation": "softmax", "use_bias": True},
        },
    ]
    return json.dumps(
        {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}
    )


@pytest.mark.parametrize(
    "first",
    [
        {"batch_input_shape": [None, 28, 28]},
        {"batch_shape": [32, 28, 28]},
        {"input_shape": [28, 28]},
    ],
)
def test_input_shape_spellings_are_equivalent(first):
    other = parse_architecture(keras2_lecture(first), weights("lecture_mnist"))
    assert other.input_shape == (None, 28, 28)
    assert compare_structure(other, model("lecture_mnist")) == []
    a = arrays("lecture_mnist")
    np.testing.assert_allclose(other.forward(a["probe"]), a["expected"], atol=1e-5)


def test_input_dim_on_the_first_layer_gives_the_input_shape():
    layers = [
        {"class_name": "Dense", "config": {"name": "d", "units": 3, "input_dim": 5}},
    ]
    js = json.dumps({"class_name": "Sequential", "config": {"layers": layers}})
    m = parse_architecture(js, [np.ones((5, 3)), np.zeros(3)])
    assert m.input_shape == (None, 5) and m.layers[0].activation == "linear"


# --- refusals, in the student's terms ------------------------------------------------------------


def test_lambda_is_refused_because_it_runs_code():
    with pytest.raises(
        ModelRefused,
        match=r"layer 1 \(`lambda`\) is a Lambda layer: it runs arbitrary code, so the grader "
        r"refuses it; use Dense/Flatten/Dropout/Activation layers",
    ):
        model("lambda")


def test_conv2d_is_refused_as_outside_the_allow_list():
    with pytest.raises(
        ModelRefused,
        match=r"layer 1 \(`conv2d`\) is a Conv2D layer, which the grader cannot compute",
    ):
        model("conv2d")


def test_unknown_activation_is_refused():
    with pytest.raises(
        ModelRefused,
        match=r"layer 1 \(`dense`\): activation `elu` is not one the grader can compute; "
        r"use one of linear, relu, sigmoid, tanh, softmax",
    ):
        model("elu")


def test_an_unbuilt_model_is_refused_with_the_fix():
    with pytest.raises(ModelRefused, match=r"no input shape: it was never built.*tf.keras.Input"):
        parse_architecture(text("unbuilt"), [])


def test_a_custom_activation_function_is_refused():
    def custom(layers):
        layers[1]["config"]["activation"] = {
            "module": "builtins",
            "class_name": "function",
            "config": "my_act",
            "registered_name": "function",
        }

    with pytest.raises(
        ModelRefused, match=r"layer 1 \(`dense`\) uses a custom activation function \(`my_act`\)"
    ):
        parse_architecture(edited("mlp_dropout", custom), weights("mlp_dropout"))


def test_a_custom_class_borrowing_a_builtin_name_is_refused():
    def custom(layers):
        layers[2]["module"] = "__main__"
        layers[2]["registered_name"] = "Custom>Activation"

    with pytest.raises(
        ModelRefused, match=r"layer 2 \(`activation`\) is a custom `Activation` class"
    ):
        parse_architecture(edited("mlp_dropout", custom), weights("mlp_dropout"))


def test_a_subclassed_model_is_refused():
    js = json.dumps({"module": "__main__", "class_name": "MyModel", "config": {}})
    with pytest.raises(
        ModelRefused, match=r"the model is a `MyModel`, not a Sequential or functional"
    ):
        parse_architecture(js, [])


def test_a_nested_model_is_refused():
    def nest(layers):
        layers[1] = {
            "module": "keras",
            "class_name": "Sequential",
            "config": {"name": "inner", "layers": []},
        }

    with pytest.raises(ModelRefused, match=r"layer 1 \(`inner`\) is a whole model used as a layer"):
        parse_architecture(edited("mlp_dropout", nest), weights("mlp_dropout"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_value": 6.0}, r"ReLU with max_value"),
        ({"negative_slope": 0.1}, r"ReLU with max_value, negative_slope or threshold"),
    ],
)
def test_a_relu_layer_with_options_is_refused(config, message):
    def edit(layers):
        layers[5]["config"].update(config)

    with pytest.raises(ModelRefused, match=rf"layer 5 \(`re_lu`\) is a {message}"):
        parse_architecture(edited("functional_chain", edit), weights("functional_chain"))


def test_a_softmax_over_another_axis_is_refused():
    def edit(layers):
        layers[7]["config"]["axis"] = 0

    with pytest.raises(ModelRefused, match=r"layer 7 \(`softmax`\) takes the softmax over axis 0"):
        parse_architecture(edited("functional_chain", edit), weights("functional_chain"))


def test_dropout_called_with_training_true_is_refused():
    def edit(layers):
        layers[3]["inbound_nodes"][0]["kwargs"]["training"] = True

    with pytest.raises(ModelRefused, match=r"`dropout` is called with training=True"):
        parse_architecture(edited("functional_chain", edit), weights("functional_chain"))


def test_a_functional_model_that_is_not_a_chain_is_refused():
    def branch(layers):
        # the second Dense reads the Flatten's output too: the Flatten feeds two layers
        layers[4]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["flatten", 0, 0]

    with pytest.raises(
        ModelRefused,
        match=r"`flatten` feeds both `dense` and `dense_1`; the grader reads only a chain",
    ):
        parse_architecture(edited("functional_chain", branch), weights("functional_chain"))


def test_weight_shapes_are_checked_per_layer():
    w = weights("mlp_dropout")
    w[2] = w[2][:64]  # the output kernel, (128, 10) -> (64, 10)
    with pytest.raises(
        ModelRefused,
        match=r"layer 4 \(`dense_1`\): kernel has shape \(64, 10\); expected \(128, 10\) = \(inputs, units\)",
    ):
        parse_architecture(text("mlp_dropout"), w)


def test_a_missing_bias_names_what_each_layer_needs():
    w = weights("mlp_dropout")
    del w[1]
    with pytest.raises(
        ModelRefused,
        match=r"got 3 weight arrays \(\(784, 128\), \(128, 10\), \(10,\)\); the layers need 4: "
        r"`dense` kernel \(784, 128\), `dense` bias \(128,\), `dense_1` kernel \(128, 10\), "
        r"`dense_1` bias \(10,\)",
    ):
        parse_architecture(text("mlp_dropout"), w)


def test_weights_that_are_not_numbers_are_refused():
    w = weights("lecture_mnist")
    w[1] = np.array(["a"] * 10)
    with pytest.raises(
        ModelRefused, match=r"layer 2 \(`dense`\): the bias is <U1, not an array of numbers"
    ):
        parse_architecture(text("lecture_mnist"), w)


def test_size_caps():
    with pytest.raises(
        ModelRefused, match=r"is 1,048,578 bytes; the grader reads at most 1,048,576"
    ):
        parse_architecture(" " * (1 << 20) + "{}", [])

    def many(layers):
        layers[3:4] = [copy.deepcopy(layers[3]) for _ in range(70)]

    with pytest.raises(ModelRefused, match=r"the model has 74 layers; the grader reads at most 64"):
        parse_architecture(edited("mlp_dropout", many), weights("mlp_dropout"))

    def huge(layers):
        layers[1]["config"]["units"] = 100_000

    with pytest.raises(
        ModelRefused, match=r"more than 50,000,000 parameters \(at layer 1 \(`dense`\)\)"
    ):
        parse_architecture(edited("mlp_dropout", huge), [])


@pytest.mark.parametrize(
    ("js", "message"),
    [
        ("{not json", r"not valid JSON"),
        ("[1, 2]", r"not a JSON object"),
        ("[" * 100_000 + "]" * 100_000, r"nested too deeply|not valid JSON"),
        ('{"class_name": "Sequential", "config": {}}', r"no list of layers"),
        ('{"class_name": "Sequential", "config": {"layers": [3]}}', r"entry 0 .* malformed"),
    ],
)
def test_malformed_descriptions_are_refused_not_crashed_on(js, message):
    with pytest.raises(ModelRefused, match=message):
        parse_architecture(js, [])


def test_an_unknown_input_dimension_is_refused():
    def edit(layers):
        layers[0]["config"]["batch_shape"] = [None, None]

    with pytest.raises(ModelRefused, match=r"every dimension but the batch must be known"):
        parse_architecture(edited("mlp_dropout", edit), weights("mlp_dropout"))


# --- compare_structure: equivalences -------------------------------------------------------------


def test_activation_as_argument_or_as_a_layer_is_the_same():
    # mlp_dropout: Dense(128) + Activation('sigmoid'); the twin: Dense(128, activation='sigmoid')
    assert compare_structure(model("mlp_dropout"), model("mlp_dropout_args", "mlp_dropout")) == []
    # ReLU() and Softmax() layers vs activation arguments, functional vs Sequential
    chain, seq = model("functional_chain"), model("functional_chain_seq", "functional_chain")
    assert compare_structure(chain, seq) == []
    assert compare_structure(seq, chain, dropout=True) == []


def test_dropout_is_ignored_unless_asked_for():
    def drop(layers):
        del layers[3]

    no_dropout = parse_architecture(edited("mlp_dropout", drop), weights("mlp_dropout"))
    reference = model("mlp_dropout")
    assert compare_structure(no_dropout, reference) == []
    assert compare_structure(no_dropout, reference, dropout=True) == [
        "missing after layer 2 (`activation`): the reference has Dropout(0.2) there"
    ]

    def rate(layers):
        layers[3]["config"]["rate"] = 0.5

    other = parse_architecture(edited("mlp_dropout", rate), weights("mlp_dropout"))
    assert compare_structure(other, reference) == []
    assert compare_structure(other, reference, dropout=True) == [
        "layer 3 (`dropout`): Dropout rate 0.5; the reference uses 0.2"
    ]


def test_an_activation_layer_after_a_nonlinear_dense_is_not_folded():
    def edit(layers):
        layers[1]["config"]["activation"] = "relu"

    js = edited("mlp_dropout", edit)
    m = parse_architecture(js, weights("mlp_dropout"))
    assert compare_structure(m, model("mlp_dropout")) == [
        "layer 1 (`dense`): activation is relu; the reference uses sigmoid",
        "layer 2 (`activation`): Activation(sigmoid) is extra; the reference has no such layer",
    ]


# --- compare_structure: differences, one message each -------------------------------------------


def test_hidden_units_differ():
    def edit(layers):
        layers[1]["config"]["units"] = 64

    shapes = [(784, 64), (64,), (64, 10), (10,)]
    student = parse_architecture(edited("mlp_dropout", edit), [np.zeros(s) for s in shapes])
    assert compare_structure(student, model("mlp_dropout")) == [
        "layer 1 (`dense`): Dense with 64 units; the reference has 128",
        "layer 4 (`dense_1`): 650 parameters; the reference has 1,290 (its input has 64 "
        "features; the reference's has 128)",
        "the model has 50,890 parameters; the reference has 101,770",
    ]


def test_output_activation_differs():
    def edit(layers):
        layers[4]["config"]["activation"] = "sigmoid"

    student = parse_architecture(edited("mlp_dropout", edit), weights("mlp_dropout"))
    assert compare_structure(student, model("mlp_dropout")) == [
        "layer 4 (`dense_1`): output activation is sigmoid; the reference uses softmax"
    ]


def test_hidden_activation_set_by_an_activation_layer_is_named_there():
    def edit(layers):
        layers[2]["config"]["activation"] = "relu"

    student = parse_architecture(edited("mlp_dropout", edit), weights("mlp_dropout"))
    assert compare_structure(student, model("mlp_dropout_args", "mlp_dropout")) == [
        "layer 2 (`activation`): activation is relu; the reference uses sigmoid"
    ]


def test_a_forgotten_flatten_is_named():
    assert compare_structure(model("no_flatten"), model("lecture_mnist")) == [
        "missing before layer 1 (`dense`): the reference has Flatten there",
        "layer 1 (`dense`): output shape (None, 28, 10); the reference has (None, 10)",
        "the model has 290 parameters; the reference has 7,850",
    ]


def test_a_different_input_and_an_extra_hidden_layer():
    # the lecture's one-layer model against the keras_mlp reference (784-128-10)
    assert compare_structure(model("lecture_mnist"), model("mlp_dropout")) == [
        "input shape is (None, 28, 28); the reference takes (None, 784)",
        "layer 1 (`flatten`): Flatten; the reference has Dense(128, sigmoid) here",
        "layer 2 (`dense`): 7,850 parameters; the reference has 1,290 (its input has 784 "
        "features; the reference's has 128)",
        "the model has 7,850 parameters; the reference has 101,770",
    ]


def test_a_missing_bias_is_listed():
    def edit(layers):
        layers[4]["config"]["use_bias"] = False

    js = edited("mlp_dropout", edit)
    student = parse_architecture(js, weights("mlp_dropout")[:3])
    assert compare_structure(student, model("mlp_dropout")) == [
        "layer 4 (`dense_1`): has no bias; the reference has one",
        "layer 4 (`dense_1`): 1,280 parameters; the reference has 1,290 (its input has 128 "
        "features; the reference's has 128)",
        "the model has 101,760 parameters; the reference has 101,770",
    ]


# --- the trust boundary ---------------------------------------------------------------------------


def test_importing_and_using_these_modules_never_imports_tensorflow():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from grader.model.keras import parse_architecture\n"
        "from grader.run.tb_events import read_scalars\n"
        f"f = Path({str(FIXTURES)!r})\n"
        "z = np.load(f / 'lecture_mnist.npz')\n"
        "w = [z[k] for k in sorted(z.files) if k.startswith('weight_')]\n"
        "parse_architecture((f / 'lecture_mnist.json').read_text(), w).forward(z['probe'])\n"
        "read_scalars(f / 'tb_logs')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tensorboard', 'tf_keras'))\n"
        "assert not bad, bad\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_more_hidden_layers_than_the_reference():
    def edit(layers):
        layers[1]["config"].update(units=64, activation="relu")
        del layers[2:4]  # the Activation and the Dropout
        extra = copy.deepcopy(layers[1])
        extra["config"].update(name="dense_extra", units=32)
        layers.insert(2, extra)

    shapes = [(784, 64), (64,), (64, 32), (32,), (32, 10), (10,)]
    student = parse_architecture(edited("mlp_dropout", edit), [np.zeros(s) for s in shapes])
    assert compare_structure(student, model("mlp_dropout")) == [
        "layer 1 (`dense`): Dense with 64 units; the reference has 128",
        "layer 1 (`dense`): activation is relu; the reference uses sigmoid",
        "layer 2 (`dense_extra`): Dense(32, relu) is extra; the reference has no such layer",
        "layer 3 (`dense_1`): 330 parameters; the reference has 1,290 (its input has 32 "
        "features; the reference's has 128)",
        "the model has 52,650 parameters; the reference has 101,770",
    ]


def test_a_keras2_functional_model_is_read():
    layers = [
        {
            "class_name": "InputLayer",
            "name": "x",
            "config": {"batch_input_shape": [None, 3], "name": "x"},
            "inbound_nodes": [],
        },
        {
            "class_name": "Dense",
            "name": "out",
            "config": {"name": "out", "units": 2, "activation": "softmax"},
            "inbound_nodes": [[["x", 0, 0, {}]]],
        },
    ]
    config = {
        "name": "model",
        "layers": layers,
        "input_layers": [["x", 0, 0]],
        "output_layers": [["out", 0, 0]],
    }
    kernel, bias = np.arange(6.0).reshape(3, 2) / 10, np.array([0.5, -0.5])
    m = parse_architecture(json.dumps({"class_name": "Model", "config": config}), [kernel, bias])
    x = np.array([[1.0, 2.0, 3.0]])
    z = x @ kernel + bias
    np.testing.assert_allclose(m.forward(x), np.exp(z) / np.exp(z).sum())
    assert m.model_class == "Functional" and m.input_shape == (None, 3)
