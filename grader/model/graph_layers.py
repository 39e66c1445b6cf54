"""A student's graph read as layers: from `pred` back to the input placeholder, each layer a
product with a weight variable, an optional bias variable and an activation.

Equivalent spellings read the same: `a + b`, `tf.add` and `tf.nn.bias_add`; `tf.sigmoid` and
`tf.nn.sigmoid`; a weight stored transposed and used with `tf.transpose` or `transpose_b=True`
(the layer's weight is then recorded as used, with `transposed=True`); reads and identities.
A graph that is not a chain of such layers is not read (`NetworkRead.problem` says where), and
the checks fall back to comparing what it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.model.tfgraph import PLACEHOLDER_OPS, VARIABLE_OPS, Graph, Node

PASS_THROUGH = frozenset(
    {"Identity", "ReadVariableOp", "StopGradient", "Snapshot", "Cast", "PreventGradient"}
)
ACTIVATION_OPS = {
    "Sigmoid": "sigmoid",
    "Relu": "relu",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "Relu6": "relu6",
    "LeakyRelu": "leaky_relu",
    "Elu": "elu",
    "Softplus": "softplus",
    "LogSoftmax": "log_softmax",
}
ADD_OPS = frozenset({"Add", "AddV2", "BiasAdd"})
MAX_LAYERS = 50


@dataclass(frozen=True)
class LayerRead:
    """One layer of the student's network, as built."""

    weight: str  # the variable node of the weight
    transposed: bool  # the weight is stored transposed and used transposed
    bias: str | None  # the variable node of the bias, or None
    activation: str  # "linear", "sigmoid", "relu", ...
    op: str  # "matmul", or "scale" for an element-wise w * x
    line: str  # where the product is built
    activation_line: str  # where the activation is applied ("" when linear)
    bias_line: str  # where the bias is added ("" when none)


@dataclass(frozen=True)
class NetworkRead:
    """The student's `pred` as a chain of layers from an input placeholder."""

    input: str | None  # the placeholder node the first layer reads
    layers: tuple[LayerRead, ...]
    problem: str | None = None  # why the graph could not be read as layers

    @property
    def read(self) -> bool:
        return self.problem is None


def _skip(graph: Graph, node: Node) -> Node:
    while node.op in PASS_THROUGH and node.inputs:
        node = graph.nodes[node.inputs[0][0]]
    return node


def _variable(graph: Graph, node: Node) -> tuple[str, bool] | None:
    """(variable node, transposed) if `node` is a variable read, possibly transposed."""
    node = _skip(graph, node)
    if node.op == "Transpose" and node.inputs:
        inner = _skip(graph, graph.nodes[node.inputs[0][0]])
        perm = _const(graph, graph.nodes[node.inputs[1][0]]) if len(node.inputs) > 1 else None
        if inner.op in VARIABLE_OPS and perm is not None and list(perm.ravel()) == [1, 0]:
            return inner.name, True
        return None
    if node.op in VARIABLE_OPS:
        return node.name, False
    return None


def _const(graph: Graph, node: Node) -> np.ndarray | None:
    node = _skip(graph, node)
    return node.attrs.get("value") if node.op == "Const" else None


def read_network(graph: Graph, pred: tuple[str, int]) -> NetworkRead:
    """Read the network computing `pred` as layers, from the output back to the input."""
    node = _skip(graph, graph.nodes[pred[0]])
    layers: list[LayerRead] = []
    while len(layers) <= MAX_LAYERS:
        if node.op in PLACEHOLDER_OPS:
            if not layers:
                return NetworkRead(node.name, (), f"{node.where}: `pred` is the input itself")
            return NetworkRead(node.name, tuple(reversed(layers)))
        activation, activation_line = "linear", ""
        if node.op in ACTIVATION_OPS and node.inputs:
            activation, activation_line = ACTIVATION_OPS[node.op], node.line
            node = _skip(graph, graph.nodes[node.inputs[0][0]])
        bias, bias_line = None, ""
        if node.op in ADD_OPS and len(node.inputs) == 2:
            a, b = (graph.nodes[i[0]] for i in node.inputs)
            va, vb = _variable(graph, a), _variable(graph, b)
            if vb is not None and va is None:
                bias, bias_line, node = vb[0], node.line, _skip(graph, a)
            elif va is not None and vb is None:
                bias, bias_line, node = va[0], node.line, _skip(graph, b)
            else:
                return NetworkRead(
                    None, (), f"{node.where}: an addition that is not a bias added to a layer"
                )
        if node.op == "MatMul" and len(node.inputs) == 2:
            a, b = (graph.nodes[i[0]] for i in node.inputs)
            vb = _variable(graph, b)
            if vb is None or node.attrs.get("transpose_a") or _variable(graph, a) is not None:
                return NetworkRead(
                    None, (), f"{node.where}: a matrix product that is not `inputs @ weight`"
                )
            transposed = vb[1] != bool(node.attrs.get("transpose_b"))
            layers.append(
                LayerRead(
                    vb[0],
                    transposed,
                    bias,
                    activation,
                    "matmul",
                    node.line,
                    activation_line,
                    bias_line,
                )
            )
            node = _skip(graph, a)
            continue
        if node.op == "Mul" and len(node.inputs) == 2:
            a, b = (graph.nodes[i[0]] for i in node.inputs)
            va, vb = _variable(graph, a), _variable(graph, b)
            if (va is None) == (vb is None):
                return NetworkRead(None, (), f"{node.where}: a product that is not `w * x`")
            weight, other = (va, b) if va is not None else (vb, a)
            assert weight is not None
            layers.append(
                LayerRead(
                    weight[0],
                    weight[1],
                    bias,
                    activation,
                    "scale",
                    node.line,
                    activation_line,
                    bias_line,
                )
            )
            node = _skip(graph, other)
            continue
        return NetworkRead(
            None,
            (),
            f"{node.where}: `{node.op}` where a layer's product with a weight was expected",
        )
    return NetworkRead(None, (), f"more than {MAX_LAYERS} layers")
