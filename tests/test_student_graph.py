"""The student's graph read as data: parsing a GraphDef without TensorFlow, the allow-list, the
bounds on hostile graphs, evaluation in NumPy, and reading the network as layers.

The graphs are built here with the protobuf classes the trusted side parses them with, as
TensorFlow 1 writes them for the lecture's code (node names and ops as `tf.matmul`, `tf.add`,
`tf.nn.sigmoid`, `tf.Variable` and `tf.placeholder` create them).
"""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.compat.proto import graph_pb2, types_pb2

from grader.model import engine
from grader.model.graph_layers import read_network
from grader.model.tfgraph import MAX_ELEMENTS, Graph, GraphError, GraphRefused


class Builder:
    """A GraphDef written node by node, as TensorFlow names them."""

    def __init__(self):
        self.proto = graph_pb2.GraphDef()
        self.lines: dict[str, str] = {}

    def node(self, name, op, inputs=(), line="", **attrs):
        n = self.proto.node.add()
        n.name, n.op = name, op
        n.input.extend(inputs)
        for key, value in attrs.items():
            if isinstance(value, bool):
                n.attr[key].b = value
            elif isinstance(value, tuple):  # a shape
                for d in value:
                    n.attr[key].shape.dim.add().size = -1 if d is None else d
            elif isinstance(value, np.ndarray):
                t = n.attr[key].tensor
                t.dtype = types_pb2.DT_FLOAT if value.dtype.kind == "f" else types_pb2.DT_INT32
                for d in value.shape:
                    t.tensor_shape.dim.add().size = d
                t.tensor_content = value.astype(
                    np.float32 if value.dtype.kind == "f" else np.int32
                ).tobytes()
        if line:
            self.lines[name] = line
        return name

    def placeholder(self, name, shape, line=""):
        return self.node(name, "Placeholder", shape=shape, line=line)

    def variable(self, name, shape, line=""):
        self.node(name, "VariableV2", shape=shape, line=line)
        return self.node(f"{name}/read", "Identity", [name])

    def const(self, name, value):
        return self.node(name, "Const", value=np.asarray(value))

    def graph(self, values=None, names=None, inits=None) -> Graph:
        return Graph.parse(
            self.proto.SerializeToString(),
            lines=self.lines,
            values=values or {},
            names=names or {},
            inits=inits or {},
        )


def mlp(activation="Sigmoid", output_bias=True, transposed=False) -> Builder:
    """The lecture's 2-2-2 network, as `build_model` writes it (or with one mistake)."""
    b = Builder()
    b.placeholder("Placeholder", (None, 2), "line 12")
    b.variable("Variable", (2, 2), "line 5")
    b.variable("Variable_1", (2, 2), "line 6")
    b.variable("Variable_2", (2,), "line 8")
    b.variable("Variable_3", (2,), "line 9")
    b.node("MatMul", "MatMul", ["Placeholder", "Variable/read"], "line 15")
    b.node("Add", "AddV2", ["MatMul", "Variable_2/read"], "line 15")
    b.node("Act", activation, ["Add"], "line 16")
    if transposed:
        b.const("perm", np.array([1, 0], dtype=np.int32))
        b.node("T", "Transpose", ["Variable_1/read", "perm"], "line 17")
        b.node("MatMul_1", "MatMul", ["Act", "T"], "line 17")
    else:
        b.node("MatMul_1", "MatMul", ["Act", "Variable_1/read"], "line 17")
    if output_bias:
        b.node("Add_1", "BiasAdd", ["MatMul_1", "Variable_3/read"], "line 17")
    return b


VALUES = {
    "Variable": np.array([[1.0, -2.0], [0.5, 0.25]]),
    "Variable_1": np.array([[2.0, -1.0], [-3.0, 1.5]]),
    "Variable_2": np.array([0.1, -0.2]),
    "Variable_3": np.array([0.3, 0.4]),
}
NAMES = {
    "x": "Placeholder:0",
    "pred": "Add_1:0",
    "weights.hidden": "Variable",
    "weights.output": "Variable_1",
    "biases.hidden": "Variable_2",
    "biases.output": "Variable_3",
}


def test_the_lecture_network_evaluates_as_numpy_computes_it():
    g = mlp().graph(VALUES, NAMES)
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]])
    (got,) = g.evaluate([("Add_1", 0)], {("Placeholder", 0): x})
    hidden = engine.sigmoid(x @ VALUES["Variable"] + VALUES["Variable_2"])
    assert np.allclose(got, hidden @ VALUES["Variable_1"] + VALUES["Variable_3"])


def test_reading_the_lecture_network_as_layers():
    g = mlp().graph(VALUES, NAMES)
    read = read_network(g, ("Add_1", 0))
    assert read.read and read.input == "Placeholder"
    assert [(ly.weight, ly.bias, ly.activation) for ly in read.layers] == [
        ("Variable", "Variable_2", "sigmoid"),
        ("Variable_1", "Variable_3", "linear"),
    ]
    assert read.layers[0].activation_line == "line 16"


def test_a_relu_layer_and_a_missing_bias_read_as_they_are_built():
    relu = read_network(mlp("Relu").graph(VALUES, NAMES), ("Add_1", 0))
    assert relu.layers[0].activation == "relu"
    no_bias = read_network(mlp(output_bias=False).graph(VALUES, NAMES), ("MatMul_1", 0))
    assert no_bias.layers[1].bias is None and no_bias.layers[0].bias == "Variable_2"


def test_a_weight_used_transposed_reads_as_the_same_layer_and_computes_the_same():
    values = dict(VALUES, Variable_1=VALUES["Variable_1"].T.copy())
    b = mlp(transposed=True)
    b.proto.node[[n.name for n in b.proto.node].index("Variable_1")].attr["shape"].shape.dim[
        0
    ].size = 2
    g = b.graph(values, NAMES)
    read = read_network(g, ("Add_1", 0))
    assert read.layers[1].transposed and read.layers[1].weight == "Variable_1"
    x = np.array([[1.0, 2.0]])
    (got,) = g.evaluate([("Add_1", 0)], {("Placeholder", 0): x})
    (want,) = mlp().graph(VALUES, NAMES).evaluate([("Add_1", 0)], {("Placeholder", 0): x})
    assert np.allclose(got, want)


def test_an_op_outside_the_allow_list_is_refused_with_its_name_and_line():
    b = mlp()
    b.node("Evil", "PyFunc", ["Add_1"], "line 30")
    with pytest.raises(GraphRefused, match=r"line 30: `PyFunc` is not an operation"):
        b.graph(VALUES, NAMES)


def test_a_forged_value_of_another_shape_is_refused():
    values = dict(VALUES, Variable=np.zeros((5, 5)))
    with pytest.raises(GraphRefused, match="declared"):
        mlp().graph(values, NAMES)


def test_a_value_handed_back_for_a_node_that_is_not_a_variable_is_refused():
    with pytest.raises(GraphRefused, match="not a variable"):
        mlp().graph(dict(VALUES, MatMul=np.zeros((2, 2))), NAMES)


def test_huge_arrays_are_refused_before_they_are_allocated():
    b = Builder()
    b.const("shape", np.array([100_000, 100_000], dtype=np.int32))
    b.const("one", np.array(1.0, dtype=np.float32))
    b.node("Fill", "Fill", ["shape", "one"])
    g = b.graph()
    with pytest.raises(GraphRefused, match="at most"):
        g.evaluate([("Fill", 0)], {})
    assert MAX_ELEMENTS < 100_000 * 100_000


def test_broadcasting_to_a_huge_result_is_refused():
    b = Builder()
    b.placeholder("a", (None, 1))
    b.placeholder("b", (1, None))
    b.node("Add", "AddV2", ["a", "b"])
    with pytest.raises(GraphRefused):
        b.graph().evaluate(
            [("Add", 0)], {("a", 0): np.zeros((50_000, 1)), ("b", 0): np.zeros((1, 50_000))}
        )


def test_a_cycle_is_refused():
    b = Builder()
    b.node("A", "Identity", ["B"])
    b.node("B", "Identity", ["A"])
    with pytest.raises(GraphRefused, match="cycle"):
        b.graph().evaluate([("A", 0)], {})


def test_too_many_nodes_and_garbage_bytes_are_refused():
    b = Builder()
    for i in range(4001):
        b.const(f"c{i}", np.array(1.0, dtype=np.float32))
    with pytest.raises(GraphRefused, match="nodes"):
        b.graph()
    with pytest.raises(GraphRefused):
        Graph.parse(b"\xff" * 100)


def test_an_input_missing_from_the_graph_is_refused():
    b = Builder()
    b.node("A", "Identity", ["Nowhere"])
    with pytest.raises(GraphRefused, match="not in the graph"):
        b.graph()


def test_a_placeholder_left_unfed_says_so():
    g = mlp().graph(VALUES, NAMES)
    with pytest.raises(GraphError, match="line 12: it is a placeholder"):
        g.evaluate([("Add_1", 0)], {})


def test_shapes_that_do_not_fit_say_where():
    g = mlp().graph(VALUES, NAMES)
    with pytest.raises(GraphError, match=r"line 15: .*inner sizes 3 and 2"):
        g.evaluate([("Add_1", 0)], {("Placeholder", 0): np.zeros((4, 3))})


def test_softmax_cross_entropy_is_tensorflows():
    b = Builder()
    b.placeholder("z", (None, 3))
    b.placeholder("t", (None, 3))
    b.node("ce", "SoftmaxCrossEntropyWithLogits", ["z", "t"])
    z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    (got,) = b.graph().evaluate([("ce", 0)], {("z", 0): z, ("t", 0): t})
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert np.allclose(got, -np.log(p[[0, 1], [1, 0]]))


def test_initializers_are_drawn_by_the_grader():
    b = Builder()
    b.variable("W", (300, 20))
    b.const("shape", np.array([300, 20], dtype=np.int32))
    b.node("random_normal/RandomStandardNormal", "RandomStandardNormal", ["shape"])
    b.const("stddev", np.array(10.0, dtype=np.float32))
    b.node("random_normal", "Mul", ["random_normal/RandomStandardNormal", "stddev"])
    g = b.graph(inits={"W": "random_normal:0"})
    drawn = g.initial_values(np.random.default_rng(0))["W"]
    assert drawn.shape == (300, 20) and 9.0 < drawn.std() < 11.0


# --- what the red team found: each bounded, each the student's problem ---------------------------


def test_a_cast_to_a_type_given_as_text_is_refused():
    b = Builder()
    b.placeholder("x", (None, 1))
    n = b.proto.node.add()
    n.name, n.op = "cast", "Cast"
    n.input.append("x")
    n.attr["DstT"].s = b"O"  # object dtype: unbounded Python integers
    with pytest.raises(GraphRefused, match="a cast to a type"):
        b.graph().evaluate([("cast", 0)], {("x", 0): np.ones((2, 1))})


def test_an_input_naming_an_output_that_does_not_exist_is_refused():
    b = Builder()
    b.placeholder("z", (None, 1))
    b.node("y", "Identity", ["z:7"])
    with pytest.raises(GraphRefused, match="z:7 does not exist"):
        b.graph()


def test_a_constant_without_a_value_is_refused():
    b = Builder()
    b.node("c", "Const")
    with pytest.raises(GraphRefused, match="a constant without a value"):
        b.graph()


def test_the_constants_together_are_bounded():
    b = Builder()
    for i in range(3):  # one value each, shape (10000, 1000): 30 M values declared in 100 bytes
        n = b.proto.node.add()
        n.name, n.op = f"c{i}", "Const"
        t = n.attr["value"].tensor
        t.dtype = types_pb2.DT_FLOAT
        t.tensor_shape.dim.add().size = 10_000
        t.tensor_shape.dim.add().size = 1000
        t.float_val.append(1.0)
    with pytest.raises(GraphRefused, match="the graph's constants would hold 30,000,000 values"):
        b.graph()


def test_the_work_of_an_evaluation_is_bounded(monkeypatch):
    from grader.model import tfops

    monkeypatch.setattr(tfops, "MAX_WORK", 10_000)
    b = Builder()
    b.placeholder("a", (None, 100))
    b.node("sq", "MatMul", ["a", "a"], transpose_b=True)  # (n, 100) @ (100, n)
    g = b.graph()
    (small,) = g.evaluate([("sq", 0)], {("a", 0): np.ones((5, 100))})  # 2,500 multiply-adds
    assert small.shape == (5, 5)
    with pytest.raises(GraphRefused, match="more than 10,000 operations"):
        g.evaluate([("sq", 0)], {("a", 0): np.ones((20, 100))})  # 40,000


def test_line_labels_that_are_not_lines_are_dropped():
    b = mlp()
    b.lines["MatMul"] = "the grader failed here; not your fault"
    g = b.graph(VALUES, NAMES)
    assert g.nodes["MatMul"].line == "" and g.nodes["Act"].line == "line 16"


def test_intermediates_are_dropped_once_read():
    from grader.model.tfgraph import _Context, _Results

    b = Builder()
    b.placeholder("x", (None, 3))
    prev = "x"
    for i in range(50):
        prev = b.node(f"n{i}", "Square" if i % 2 else "Neg", [prev])
    g = b.graph()
    done = _Results(g, [(prev, 0)])
    g._run(prev, done, {"x": {0: np.full((2, 3), 1.0)}}, {}, _Context(np.random.default_rng(0)))
    assert np.all(done[prev][0] == 1.0)
    kept = [name for name, outs in done.items() if outs[0] is not None]
    assert kept == [prev]  # every intermediate was dropped once its reader was computed
