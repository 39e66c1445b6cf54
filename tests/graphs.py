"""Student graphs written by hand, as the sandbox hands them back: a GraphDef built with the
protobuf classes the trusted side parses it with, with TensorFlow 1's node names and ops for
the lecture's code (`tf.placeholder`, `tf.Variable(tf.random_normal(...))`, `tf.matmul`,
`tf.add`, `tf.nn.sigmoid`, the loss functions as TensorFlow spells them), plus the variables'
values and the manifest's `graph` facts. No TensorFlow is imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorboard.compat.proto import graph_pb2, types_pb2

from grader.model.tfgraph import Graph
from grader.wire import GRAPH_DEF, GraphFacts, graph_value_key


class Builder:
    """A GraphDef written node by node."""

    def __init__(self):
        self.proto = graph_pb2.GraphDef()
        self.lines: dict[str, str] = {}
        self.inits: dict[str, str] = {}
        self.count = 0

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

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def placeholder(self, name, shape, line=""):
        return self.node(name, "Placeholder", shape=shape, line=line)

    def const(self, name, value):
        return self.node(name, "Const", value=np.asarray(value))

    def variable(self, name, shape, line="", stddev: float | None = 0.1, value=None):
        """A `tf.Variable(tf.random_normal(shape, stddev=...))` (zeros when stddev is None;
        `tf.Variable(value)` when a value is given)."""
        self.node(name, "VariableV2", shape=tuple(shape), line=line)
        dims = self.const(f"{name}/init/shape", np.array(shape, dtype=np.int32))
        if value is not None:
            self.const(f"{name}/init", np.asarray(value, dtype=np.float32))
        elif stddev is None:
            zero = self.const(f"{name}/init/zero", np.array(0.0, dtype=np.float32))
            self.node(f"{name}/init", "Fill", [dims, zero])
        else:
            draw = self.node(f"{name}/init/draw", "RandomStandardNormal", [dims])
            sd = self.const(f"{name}/init/stddev", np.array(stddev, dtype=np.float32))
            self.node(f"{name}/init", "Mul", [draw, sd])
        self.inits[name] = f"{name}/init:0"
        return self.node(f"{name}/read", "Identity", [name])

    def mean(self, value, axes, line=""):
        idx = self.const(self.fresh("Const"), np.array(axes, dtype=np.int32))
        return self.node(self.fresh("Mean"), "Mean", [value, idx], line)

    def parse(self, values=None, names=None) -> Graph:
        return Graph.parse(
            self.proto.SerializeToString(),
            lines=self.lines,
            values=values or {},
            names=names or {},
            inits=self.inits,
        )


ACTIVATION_OPS = {"sigmoid": "Sigmoid", "relu": "Relu", "tanh": "Tanh", "softmax": "Softmax"}


def sigmoid_ce(b: Builder, logits: str, labels: str, line: str) -> str:
    """tf.nn.sigmoid_cross_entropy_with_logits as TensorFlow writes it:
    select(z >= 0, z, 0) - z * y + log1p(exp(select(z >= 0, -z, z)))."""
    zeros = b.node(b.fresh("zeros_like"), "ZerosLike", [logits], line)
    cond = b.node(b.fresh("GreaterEqual"), "GreaterEqual", [logits, zeros], line)
    relu = b.node(b.fresh("Select"), "Select", [cond, logits, zeros], line)
    neg = b.node(b.fresh("Neg"), "Neg", [logits], line)
    neg_abs = b.node(b.fresh("Select"), "Select", [cond, neg, logits], line)
    times = b.node(b.fresh("mul"), "Mul", [logits, labels], line)
    sub = b.node(b.fresh("sub"), "Sub", [relu, times], line)
    exp = b.node(b.fresh("Exp"), "Exp", [neg_abs], line)
    log1p = b.node(b.fresh("Log1p"), "Log1p", [exp], line)
    return b.node(b.fresh("logistic_loss"), "AddV2", [sub, log1p], line)


def network(
    layers: list[dict[str, Any]],
    *,
    x_shape: tuple,
    y_shape: tuple | None = None,
    loss: str | None = None,
    names: dict[str, str] | None = None,
    untrained: bool = False,
    stddev: float | None = 0.1,
    input_name: str = "x",
    pred_name: str = "pred",
    label_name: str = "y",
    extra: list[tuple[str, str]] | None = None,
    written_in: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, facts) of a student's run whose graph is the chain of `layers` from the
    placeholder `x`, each {"weight": (name, value), "bias": (name, value) or None,
    "activation": "sigmoid", "op": "matmul" | "scale", "transposed": bool}; with `loss` one of
    "softmax_ce", "sigmoid_ce", "mse", "sum_softmax_ce", "half_sse" on `pred` and `y`. With
    `written_in`, each weight's initializer is its final value (`tf.Variable([[...]])`)."""
    b = Builder()
    values: dict[str, np.ndarray] = {}
    graph_names: dict[str, str] = {}
    line = 10
    x = b.placeholder("Placeholder", x_shape, f"line {line}")
    graph_names[input_name] = "Placeholder:0"
    y = None
    if y_shape is not None:
        y = b.placeholder("Placeholder_1", y_shape, f"line {line + 1}")
        graph_names[label_name] = "Placeholder_1:0"
    current = x
    for i, layer in enumerate(layers):
        line = 20 + 2 * i
        w_name, w_value = layer["weight"]
        stored = w_value.T.copy() if layer.get("transposed") else np.asarray(w_value, float)
        node = f"Variable_{2 * i}"
        read = b.variable(
            node, stored.shape, f"line {line - 10}", stddev, stored if written_in else None
        )
        values[node] = stored
        graph_names[w_name] = node
        if layer.get("transposed"):
            perm = b.const(b.fresh("perm"), np.array([1, 0], dtype=np.int32))
            read = b.node(b.fresh("transpose"), "Transpose", [read, perm], f"line {line}")
        op = layer.get("op", "matmul")
        if op == "scale":
            current = b.node(b.fresh("mul"), "Mul", [read, current], f"line {line}")
        else:
            current = b.node(b.fresh("MatMul"), "MatMul", [current, read], f"line {line}")
        if layer.get("bias") is not None:
            b_name, b_value = layer["bias"]
            bnode = f"Variable_{2 * i + 1}"
            bread = b.variable(bnode, np.shape(b_value), f"line {line - 9}", stddev)
            values[bnode] = np.asarray(b_value, float)
            graph_names[b_name] = bnode
            current = b.node(b.fresh("Add"), "AddV2", [current, bread], f"line {line}")
        activation = layer.get("activation", "linear")
        if activation != "linear":
            current = b.node(
                b.fresh(ACTIVATION_OPS[activation]),
                ACTIVATION_OPS[activation],
                [current],
                f"line {line + 1}",
            )
    graph_names[pred_name] = f"{current}:0"
    if loss is not None:
        assert y is not None, "a loss needs the labels' placeholder"
        line_s = "line 40"
        if loss in ("softmax_ce", "sum_softmax_ce"):
            ce = b.node("ce", "SoftmaxCrossEntropyWithLogits", [current, y], line_s)
            if loss == "softmax_ce":
                total = b.mean(ce, [0], "line 41")
            else:
                idx = b.const("sum_axes", np.array([0], dtype=np.int32))
                total = b.node("Sum", "Sum", [ce, idx], "line 41")
        elif loss == "sigmoid_ce":
            total = b.mean(sigmoid_ce(b, current, y, line_s), [0, 1], "line 41")
        elif loss in ("mse", "half_sse"):
            diff = b.node("sub_loss", "Sub", [current, y], line_s)
            sq = b.node("Square", "Square", [diff], line_s)
            axes = list(range(len(y_shape or (0,))))
            if loss == "mse":
                total = b.mean(sq, axes, "line 41")
            else:
                idx = b.const("sum_axes", np.array(axes, dtype=np.int32))
                summed = b.node("Sum", "Sum", [sq, idx], line_s)
                two_n = b.const("two_n", np.array(200.0, dtype=np.float32))
                total = b.node("truediv", "RealDiv", [summed, two_n], "line 41")
        else:
            raise ValueError(loss)
        graph_names["loss"] = f"{total}:0"
    for name, ref in extra or ():
        graph_names[name] = ref
    graph_names.update(names or {})
    arrays = {GRAPH_DEF: np.frombuffer(b.proto.SerializeToString(), dtype=np.uint8).copy()}
    if not untrained:
        arrays.update({graph_value_key(k): v for k, v in values.items()})
    facts = {
        GraphFacts.FIELD: {
            GraphFacts.NAMES: graph_names,
            GraphFacts.LINES: b.lines,
            GraphFacts.INITS: b.inits,
        }
    }
    return arrays, facts


def lecture_network(
    task, params: dict[str, np.ndarray], *, loss: bool = True, **kw
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The lecture's network of `task` (its layers and loss), with the weights `params` by
    the spec's names, as a student who followed the notes builds it."""
    layers = []
    for layer in task.layers:
        w = layer.weight.split("|")[0]
        bias = layer.bias.split("|")[0] if layer.bias else None
        layers.append(
            {
                "weight": (w, params[w]),
                "bias": None if bias is None else (bias, params[bias]),
                "activation": layer.activation,
                "op": str(layer.op),
            }
        )
    first = np.asarray(params[task.layers[0].weight.split("|")[0]])
    scale = str(task.layers[0].op) == "scale"
    x_shape = kw.pop("x_shape", (None,) if scale else (None, first.shape[0]))
    last = np.asarray(params[task.layers[-1].weight.split("|")[0]])
    y_shape = kw.pop("y_shape", (None,) if scale else (None, last.shape[-1]))
    kind = kw.pop("loss_kind", str(task.loss))
    return network(layers, x_shape=x_shape, y_shape=y_shape, loss=kind if loss else None, **kw)


def autoencoder_network(task, params: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """The lecture's autoencoder: `latent` = encoder(x) (the first three layers), `reconst` =
    decoder(latent_input) (the last three), `loss` = mean((x - decoder(encoder(x)))^2)."""
    b = Builder()
    values, names = {}, {}
    x = b.placeholder("x", (None, 784), "line 70")
    code = b.placeholder("latent_input", (None, 2), "line 120")
    names.update(x="x:0", latent_input="latent_input:0")

    def chain(current, layers):
        for layer in layers:
            w, bias = layer.weight, layer.bias
            node = w.replace(".", "_")
            read = b.variable(node, params[w].shape, "line 60")
            values[node] = params[w]
            names[w] = node
            current = b.node(b.fresh("MatMul"), "MatMul", [current, read], "line 80")
            bnode = bias.replace(".", "_")
            bread = b.variable(bnode, params[bias].shape, "line 65")
            values[bnode] = params[bias]
            names[bias] = bnode
            current = b.node(b.fresh("Add"), "AddV2", [current, bread], "line 80")
            if layer.activation != "linear":
                current = b.node(b.fresh("Tanh"), ACTIVATION_OPS[layer.activation], [current])
        return current

    latent = chain(x, task.layers[:3])
    names["latent"] = f"{latent}:0"
    names["reconst"] = f"{chain(code, task.layers[3:])}:0"
    arrays = {GRAPH_DEF: np.frombuffer(b.proto.SerializeToString(), dtype=np.uint8).copy()}
    arrays.update({graph_value_key(k): np.asarray(v, float) for k, v in values.items()})
    facts = {
        GraphFacts.FIELD: {
            GraphFacts.NAMES: names,
            GraphFacts.LINES: b.lines,
            GraphFacts.INITS: b.inits,
        }
    }
    return arrays, facts
