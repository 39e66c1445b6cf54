"""Checks of how the student's TensorFlow network is built: shapes, wiring, the loss function
(structural checks: a network passes them whether or not it was trained; `training` judges
what training achieved).

Each judges the student's own network: their graph, handed back by the sandbox as data
(`grader.checks.measures.student`), parsed and evaluated by the trusted engine on data the
child never saw. No point rests on a figure the student's process reports about itself; the
student's loss records are shown as feedback only. A mistake is named, at the student's
line, by the check it belongs to: the shapes check names a missing bias column, the wiring
check a wrong activation; the others judge what the student's network does anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.base import (
    Evidence,
    Missing,
    Verdict,
    _fmt_shape,
    show,
)
from grader.checks.measures.student import (
    StudentNetwork,
    loss_function_values,
    student_network,
)
from grader.course.tasks import InputKind
from grader.model.graph_layers import LayerRead
from grader.model.tfgraph import PLACEHOLDER_OPS, GraphError
from grader.registry import check

# --- the student's network ---------------------------------------------------------------------


def _network(ev: Evidence, *names: str, finite: bool = False) -> StudentNetwork | Verdict:
    """The student's graph, with the tensors `names` in it (and, with `finite`, trained values
    free of NaN and infinity), or the failing verdict that says why not."""
    try:
        net = student_network(ev)
    except Missing as exc:
        return Verdict(0.0, str(exc))
    for name in names:
        if (missing := _tensor(net, name)) is not None:
            return missing
    if finite:
        bad = [_name_of(net, k) for k, v in net.graph.values.items() if not np.all(np.isfinite(v))]
        if bad:
            return Verdict(0.0, f"training diverged: {', '.join(bad)} contain NaN or infinity")
    return net


def _at(line: str) -> str:
    return f"{line}: " if line else ""


def _tensor(net: StudentNetwork, name: str) -> Verdict | None:
    """None when the graph has tensor `name`, else the failing verdict."""
    if name in net.tensors:
        return None
    why = net.errors.get(name, "it was not defined as a tensor")
    if why == "not defined" and net.stopped:
        why = "your code stopped before it was built (see the problem above)"
    return Verdict(0.0, f"`{name}` is not in your network: {why}")


# --- shapes ------------------------------------------------------------------------------------


class _ShapeRule:
    """Matches found shapes against the spec's symbolic ones, binding each open dimension (a
    `[low, high]` range) to the size it first meets."""

    def __init__(self, dims: dict[str, Any]):
        self.dims = dims
        self.bound: dict[str, int] = {}

    def expected(self, spec: list) -> list[int | None]:
        """The sizes the spec asks for, as far as they are known (None: open)."""
        out: list[int | None] = []
        for sym in spec:
            rule = sym if isinstance(sym, int) else self.dims.get(sym)
            out.append(rule if isinstance(rule, int) else self.bound.get(sym))
        return out

    def problem(self, label: str, got: tuple, spec: list) -> str | None:
        """What is wrong with shape `got` of `label` against `spec`, or None."""
        expected_vals = []
        ok = len(got) == len(spec)
        for i, sym in enumerate(spec):
            g = got[i] if i < len(got) else "?"
            if sym == "batch":
                expected_vals.append("None")
                continue
            if isinstance(sym, int):
                expected_vals.append(str(sym))
                ok = ok and g == sym
                continue
            rule = self.dims.get(sym)
            if isinstance(rule, int):
                expected_vals.append(str(rule))
                ok = ok and g == rule
            elif sym in self.bound:
                expected_vals.append(str(self.bound[sym]))
                ok = ok and g == self.bound[sym]
            elif isinstance(rule, list) and len(rule) == 2:
                lo, hi = rule
                if isinstance(g, int) and lo <= g <= hi:
                    self.bound[sym] = g
                    expected_vals.append(str(g))
                else:
                    expected_vals.append(f"{lo}..{hi}")
                    ok = False
            else:
                expected_vals.append(sym)
        if ok:
            return None
        names = "(" + ", ".join(str(s) for s in spec) + ")"
        return (
            f"{label} has shape {_fmt_shape(got)}; expected {names} = "
            f"({', '.join(expected_vals)}{',' if len(expected_vals) == 1 else ''})"
        )


def _bias_column_hint(ev: Evidence, got: tuple, want: list[int | None]) -> str:
    if (
        ev.task.input is InputKind.BIAS_COLUMN
        and got
        and want
        and isinstance(want[-1], int)
        and got[-1] == want[-1] - 1
    ):
        return (
            f": the input has {got[-1]} columns; this assignment adds a bias column of ones "
            f"({want[-1]} columns)"
        )
    return ""


def _placeholder_problem(
    ev: Evidence, net: StudentNetwork, name: str, spec: list, rule: _ShapeRule
) -> str | None:
    if name not in net.tensors:
        reason = ev.facts.get("missing", {}).get(name, "not defined, or not used by your network")
        return f"placeholder `{name}` not found ({reason})"
    node = net.node(name)
    if node.op not in PLACEHOLDER_OPS:
        return f"{_at(node.line)}`{name}` is a {node.op}, not a tf.placeholder"
    shape = node.attrs.get("shape")
    if shape is None:
        return f"{_at(node.line)}placeholder `{name}` has no fixed rank; give it a shape like [None, ...]"
    want = rule.expected(spec)
    found = rule.problem(f"placeholder `{name}`", tuple(shape), spec)
    if found is None:
        return None
    return f"{_at(node.line)}{found}{_bias_column_hint(ev, tuple(shape), want)}"


def _used_transposed(net: StudentNetwork) -> set[str]:
    """The variable nodes the network uses transposed (stored [out, in], used as [in, out])."""
    try:
        read = net.read(net.pred_name)
    except Missing:
        return set()
    return {layer.weight for layer in read.layers if layer.transposed}


def _array_problem(
    net: StudentNetwork, name: str, spec: list, rule: _ShapeRule, transposed: set[str]
) -> str | None:
    alternatives = name.split("|")
    found = [a for a in alternatives if a in net.tensors]
    if not found:
        return None  # not in the network: the wiring check names what is missing, once
    node = net.node(found[0])
    shape = node.attrs.get("shape")
    if node.name in net.graph.values:
        shape = net.graph.values[node.name].shape
    if shape is None or any(d is None for d in shape):
        return f"{_at(node.line)}{show(found[0])} has no fixed shape"
    shape = tuple(shape)
    note = ""
    if node.name in transposed and len(shape) == 2:
        shape, note = shape[::-1], " (stored transposed and used transposed)"
    got = rule.problem(show(found[0]), shape, spec)
    return None if got is None else f"{_at(node.line)}{got}{note}"


@check("shapes", structural=True)
def check_shapes(
    ev: Evidence,
    *,
    placeholders: dict[str, list] | None = None,
    arrays: dict[str, list] | None = None,
    dims: dict[str, Any] | None = None,
) -> Verdict:
    """Placeholders and weight arrays of the student's graph have the shapes of the lecture's
    network (read from the graph's placeholders and variables, at the student's lines).

    Dimensions are numbers or names bound in `dims` (a number, or `[low, high]` for a size the
    assignment leaves open, bound by its first use); `batch` accepts `None` or any number. A
    weight stored transposed and used transposed counts in the shape it is used.
    """
    placeholders, arrays = placeholders or {}, arrays or {}
    total = len(placeholders) + len(arrays)
    if total == 0:
        return Verdict(0.0, "nothing to check (spec lists no shapes)")
    net = _network(ev)
    if isinstance(net, Verdict):
        return net
    rule = _ShapeRule(dict(dims or {}))
    found = [_placeholder_problem(ev, net, n, s, rule) for n, s in placeholders.items()]
    transposed = _used_transposed(net)  # the network read as layers once, for every array
    found += [_array_problem(net, n, s, rule, transposed) for n, s in arrays.items()]
    problems = [p for p in found if p is not None]
    if not problems:
        return Verdict(1.0, f"all {total} shapes are right")
    return Verdict((total - len(problems)) / total, "\n".join(problems))


# --- wiring ------------------------------------------------------------------------------------


def describe_model(task, layers: list[int] | None = None) -> str:
    """The reference network in the student's terms, one layer after the other."""
    steps = []
    start = (layers or [0])[0]
    src = task.layers[start - 1].weight.split("|")[0].split(".")[-1] if start else "x"
    for layer in task.layers[slice(*layers)] if layers else task.layers:
        op = "*" if layer.op == "scale" else "@"
        expr = f"{src} {op} {show(layer.weight)}"
        if layer.bias:
            expr += f" + {show(layer.bias)}"
        if layer.activation != "linear":
            expr = f"{layer.activation}({expr})"
        src = layer.weight.split("|")[0].split(".")[-1]
        steps.append(f"{src} = {expr}")
    return "; ".join(steps)


def _layer_name(weight: str, index: int, count: int) -> str:
    key = weight.split("|")[0]
    if "." in key:
        return f"{key.split('.', 1)[1]} layer"
    return "layer" if count == 1 else f"layer {index + 1}"


def _activation_words(name: str) -> str:
    return "no activation" if name == "linear" else name


def _name_of(net: StudentNetwork, node: str | None) -> str:
    if node is None:
        return "nothing"
    student = net.graph.student_name(node)
    return show(student) if student else f"a variable (node {node})"


def _layer_problems(
    ev: Evidence, net: StudentNetwork, got: LayerRead, want, i: int, count: int
) -> list[str]:
    name = _layer_name(want.weight, i, count)
    out = []
    if got.op != want.op:
        forms = {"matmul": "a matrix product (x @ w)", "scale": "an element-wise product (w * x)"}
        out.append(
            f"{_at(got.line)}the {name} computes {forms[got.op]}; the lecture's network uses "
            f"{forms[str(want.op)]}"
        )
    student_w = net.graph.student_name(got.weight)
    weights = {alt for layer in ev.task.layers for alt in layer.weight.split("|")}
    if student_w is not None and student_w in weights and student_w not in want.weight.split("|"):
        out.append(
            f"{_at(got.line)}the {name} multiplies by {show(student_w)}; the lecture's network "
            f"uses {show(want.weight)}"
        )
    if got.activation != want.activation:
        where = got.activation_line or got.bias_line or got.line
        out.append(
            f"{_at(where)}the {name} uses {_activation_words(got.activation)}; the lecture's "
            f"network uses {_activation_words(want.activation)}"
        )
    if want.bias and got.bias is None:
        out.append(f"{_at(got.line)}no bias is added to the {name}")
    elif got.bias is not None and not want.bias:
        why = (
            " (its bias is the column of ones in `x`)"
            if ev.task.input is InputKind.BIAS_COLUMN
            else ""
        )
        out.append(
            f"{_at(got.bias_line)}the {name} adds a bias {_name_of(net, got.bias)}; the "
            f"lecture's network has none{why}"
        )
    elif got.bias is not None and want.bias:
        student_b = net.graph.student_name(got.bias)
        biases = {alt for layer in ev.task.layers if layer.bias for alt in layer.bias.split("|")}
        if student_b is not None and student_b in biases and student_b not in want.bias.split("|"):
            out.append(
                f"{_at(got.bias_line)}the {name} adds {show(student_b)}; the lecture's network "
                f"adds {show(want.bias)}"
            )
    return out


def _describe_read(net: StudentNetwork, read) -> str:
    steps = []
    for layer in read.layers:
        op = "*" if layer.op == "scale" else "@"
        expr = f"{op} {_name_of(net, layer.weight)}"
        if layer.bias:
            expr += f" + {_name_of(net, layer.bias)}"
        steps.append(expr if layer.activation == "linear" else f"{layer.activation}({expr})")
    return ", then ".join(steps)


def _wiring_by_value(
    ev: Evidence,
    net: StudentNetwork,
    fetch: str,
    input: str,
    probe: str,
    layers: list[int] | None,
    problem: str,
    atol: float,
    rtol: float,
) -> Verdict:
    """A graph that is not a plain chain of layers: compare what it computes with the lecture's
    network fed the student's own weights (by the spec's names)."""
    values = net.trained_values()
    params = {}
    for layer in ev.task.layers:
        for name in (layer.weight, layer.bias):
            if not name:
                continue
            alt = next((a for a in name.split("|") if a in net.tensors), None)
            if alt is not None and net.tensors[alt][0] in values:
                params[name] = values[net.tensors[alt][0]]
    absent = [
        name
        for layer in (ev.task.layers[slice(*layers)] if layers else ev.task.layers)
        for name in (layer.weight, layer.bias)
        if name and name not in params
    ]
    if absent:
        return Verdict(
            0.0,
            f"{problem}; your network has no {', '.join(show(a) for a in absent)} "
            f"(the lecture's: {describe_model(ev.task, layers)})",
        )
    x = ev.inputs[probe]
    try:
        got = net.run(fetch, {input: x})
        want = ev.task.forward(params, x, *(layers or []))
    except (KeyError, ValueError) as exc:
        return Verdict(
            0.0,
            f"{problem}; and the network cannot be compared with the lecture's "
            f"({describe_model(ev.task, layers)}): {exc}",
        )
    if got.shape == want.shape and np.allclose(got, want, atol=atol, rtol=rtol):
        return Verdict(
            1.0,
            f"`{fetch}` computes the lecture's network "
            f"({describe_model(ev.task, layers)}), written in another form",
        )
    return Verdict(
        0.0,
        f"{problem}; `{fetch}` is not the lecture's network ({describe_model(ev.task, layers)})",
    )


@check("wiring", needs_task=True, structural=True)
def check_wiring(
    ev: Evidence,
    *,
    fetch: str = "pred",
    input: str = "x",
    probe: str = "probe_x",
    layers: list[int] | None = None,
    atol: float = 1e-3,
    rtol: float = 1e-3,
) -> Verdict:
    """The student's graph, read from `fetch` back to the placeholder `input`, is built as the
    lecture's network (`layers` = [start, stop] compares a slice: an autoencoder's encoder, or
    its decoder): the same layers, activations and biases, each difference named at the
    student's line. Equivalent spellings read the same; a graph that is not a chain of layers
    is compared by what it computes, fed its own weights."""
    net = _network(ev, fetch, input)
    if isinstance(net, Verdict):
        return net
    read = net.read(fetch)
    want = ev.task.layers[slice(*layers)] if layers else ev.task.layers
    if not read.read:
        return _wiring_by_value(ev, net, fetch, input, probe, layers, str(read.problem), atol, rtol)
    problems = []
    start = net.tensors[input][0]
    if read.input != start:
        problems.append(
            f"`{fetch}` is computed from {_name_of(net, read.input)}; the lecture's network "
            f"starts from `{input}`"
        )
    if len(read.layers) != len(want):
        problems.append(
            f"{_at(net.line(fetch))}`{fetch}` is computed by {len(read.layers)} layer(s) "
            f"({_describe_read(net, read)}); the lecture's network has {len(want)}: "
            f"{describe_model(ev.task, layers)}"
        )
    else:
        for i, (got, layer) in enumerate(zip(read.layers, want, strict=True)):
            problems += _layer_problems(ev, net, got, layer, i, len(want))
    if problems:
        return Verdict(0.0, "\n".join(problems))
    transposed = [_name_of(net, layer.weight) for layer in read.layers if layer.transposed]
    note = f" ({', '.join(transposed)} stored transposed and used transposed)" if transposed else ""
    return Verdict(
        1.0, f"`{fetch}` is built as the lecture's network: {describe_model(ev.task, layers)}{note}"
    )


# --- loss_function -----------------------------------------------------------------------------

LOSS_NAMES = {
    "sigmoid_ce": "tf.nn.sigmoid_cross_entropy_with_logits (mean)",
    "softmax_ce": "tf.nn.softmax_cross_entropy_with_logits (mean), for one-hot labels",
    "mse": "the mean squared error tf.reduce_mean(tf.square(y - pred))",
}
LOSS_RTOL = 1e-3  # relative tolerance of the loss comparison, besides the spec's `atol`


def describe_loss(net: StudentNetwork, loss: str, pred: str) -> str:
    """What the student's loss is, read from its graph: the reduction and the loss's ops."""
    graph = net.graph
    own = graph.reads(net.tensors[loss])
    if pred in net.tensors:
        own -= graph.reads(net.tensors[pred])
    ops = {graph.nodes[n].op for n in own}
    if "SoftmaxCrossEntropyWithLogits" in ops:
        kind = "softmax cross entropy"
    elif "SparseSoftmaxCrossEntropyWithLogits" in ops:
        kind = "sparse softmax cross entropy"
    elif {"Log1p", "Exp"} <= ops and ops & {"Select", "SelectV2", "Relu", "Maximum"}:
        kind = "sigmoid cross entropy"
    elif "Log" in ops and "Sigmoid" in ops:
        kind = "the cross entropy of a sigmoid, written out"
    elif "Log" in ops and "Softmax" in ops:
        kind = "the cross entropy of a softmax, written out"
    elif "Log" in ops:
        kind = "a cross entropy written out"
    elif ops & {"Square", "SquaredDifference"} or "Pow" in ops:
        kind = "a squared error"
    elif "Abs" in ops:
        kind = "an absolute error"
    else:
        kind = "a loss built from " + ", ".join(sorted(ops - {"Const", "Identity"}))[:120]
    top = graph.nodes[net.tensors[loss][0]]
    while top.op in ("Identity", "Cast") and top.inputs:
        top = graph.nodes[top.inputs[0][0]]
    scaled = ""
    if top.op in ("RealDiv", "Div", "Mul") and len(top.inputs) == 2:
        inner = [graph.nodes[i[0]] for i in top.inputs if graph.nodes[i[0]].op != "Const"]
        if len(inner) == 1:  # a reduction divided (or multiplied) by a constant
            scaled = ", divided by a constant" if top.op != "Mul" else ", times a constant"
            top = inner[0]
    reduction = {"Mean": "the mean of ", "Sum": "the sum of "}.get(top.op, "")
    return reduction + kind + scaled


@check("loss_function", needs_task=True, structural=True)
def check_loss_function(
    ev: Evidence,
    *,
    fetch: str = "loss",
    pred: str = "pred",
    labels: str = "y",
    input: str = "x",
    atol: float = 1e-3,
) -> Verdict:
    """The student's `loss`, read from their graph, is the lecture's loss of `pred`: named from
    its ops, and checked by value on outputs the grader chooses (not saturated, so the
    libraries' epsilons do not count), in two batch sizes (a sum, or a mean over a fixed count,
    differs from the mean)."""
    net = _network(ev, fetch, pred)
    if isinstance(net, Verdict):
        return net
    name = LOSS_NAMES[ev.task.loss]
    kind = describe_loss(net, fetch, pred)
    line = _at(net.line(fetch))
    try:
        compared = loss_function_values(ev, net, fetch, pred, labels, input)
    except (GraphError, ValueError) as exc:
        return Verdict(0.0, f"{line}`{fetch}` cannot be evaluated: {exc}")
    if any(c.size != 1 for c in compared):
        shape = next(c.shape for c in compared if c.size != 1)
        return Verdict(
            0.0,
            f"{line}`{fetch}` should be one number (reduce_mean); got shape {_fmt_shape(shape)}",
        )
    bad = [c for c in compared if not c.excess(LOSS_RTOL) <= atol]
    if not bad:
        return Verdict(1.0, f"`{fetch}` is {name} ({kind}, as your graph computes it)")
    n, g, w = bad[0].n, bad[0].got, bad[0].want
    hint = ""
    if w and abs(g / w - n) < 0.01 * n:
        hint = " It is summed over the batch: the lecture takes the mean (tf.reduce_mean)."
    elif w and abs(g / w - 0.5) < 0.01:
        hint = " It is half the lecture's loss."
    return Verdict(
        0.0,
        f"{line}`{fetch}` is {kind}: on {n} outputs the grader chose it gives {g:.4g}, where "
        f"{name} gives {w:.4g}. This assignment needs {name}.{hint}",
        expected=f"{w:.4g}",
        got=f"{g:.4g}",
    )
