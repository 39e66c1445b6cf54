"""The operations a student's graph may use (`OPS`, the allow-list), each in NumPy (float64),
and the bounds every one of them respects: no array an op creates may exceed `MAX_ELEMENTS`,
and sizes are checked before anything is allocated. Random initializers draw from the
grader's own generator, never the student's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.model import engine

MAX_ELEMENTS = 20_000_000  # no array an operation creates may hold more (160 MB in float64)
MAX_PRODUCT = 4_000_000_000  # multiply-adds of one matrix product


class GraphRefused(ValueError):
    """The graph cannot be graded: an op outside the allow-list, too large, or malformed.
    The message names the node and the student's line."""


class GraphError(ValueError):
    """The graph could not be evaluated on the grader's inputs (shapes that do not fit, a
    placeholder the grader does not feed, ...). The message names the node and line."""


@dataclass(frozen=True)
class Node:
    """One node of the graph: its op, its inputs as (node, output index), its attributes."""

    name: str
    op: str
    inputs: tuple[tuple[str, int], ...]
    attrs: Mapping[str, Any]
    line: str = ""  # the student's label of the line that created it ("line 41")

    @property
    def where(self) -> str:
        return self.line or f"node {self.name}"


# Multiply-adds and elements one evaluation may cost, all ops summed (about 10-20 s of CPU at
# worst), and all evaluations of one graph together: the trusted side's time bound. The
# heaviest honest case, a 784-2048-10 network on 10,000 held-out images, costs 1.6e10 each.
MAX_WORK = 20_000_000_000
MAX_GRAPH_WORK = 80_000_000_000
NUMERIC = frozenset(
    np.dtype(t)
    for t in (
        np.float16,
        np.float32,
        np.float64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.bool_,
    )
)


@dataclass
class _Context:
    rng: np.random.Generator
    work: int = 0  # what this evaluation has cost so far
    before: int = 0  # what earlier evaluations of the same graph cost

    def spend(self, amount: int, what: str) -> None:
        """Count `amount` of work; refuse the graph past MAX_WORK for one evaluation or
        MAX_GRAPH_WORK for all of them (the trusted side's time bound)."""
        self.work += int(amount)
        if self.work > MAX_WORK or self.before + self.work > MAX_GRAPH_WORK:
            raise GraphRefused(
                f"{what}: evaluating your network would take more than "
                f"{min(MAX_WORK, MAX_GRAPH_WORK - self.before):,} operations"
            )


def _bound(size: int, what: str) -> None:
    if size > MAX_ELEMENTS:
        raise GraphRefused(f"{what} would hold {size:,} values (at most {MAX_ELEMENTS:,})")


# --- the allow-list ----------------------------------------------------------------------------

Op = Callable[[Node, list[np.ndarray], _Context], Any]

VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
PLACEHOLDER_OPS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
ALLOWED_SUMMARY = (
    "placeholders",
    "variables",
    "constants",
    "matmul",
    "add/bias_add",
    "sigmoid/relu/tanh/softmax",
    "the loss functions",
    "element-wise math",
    "reductions",
    "reshapes",
)


def _float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind == "f" or a.dtype.kind == "b" else a


def _cast_to(node: Node) -> np.dtype:
    """The numeric type a Cast makes (only the GraphDef's type enum counts: a string is refused)."""
    target = node.attrs.get("DstT")
    try:
        dtype = np.dtype(target) if target is not None and not isinstance(target, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype not in NUMERIC:
        raise GraphRefused("a cast to a type the grader does not evaluate")
    return dtype


def _as_float_if(node: Node, a: np.ndarray) -> np.ndarray:
    dtype = _cast_to(node)
    if dtype.kind == "f":
        return a.astype(np.float64)
    return a.astype(dtype)


def _placeholder(node: Node, args, ctx):
    if node.op == "PlaceholderWithDefault" and args:
        return args[0]
    raise GraphError("it is a placeholder the grader does not feed here")


def _elementwise(fn):
    def op(node, args, ctx):
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        _bound(math.prod(shape), f"the result of {node.op}")
        ctx.spend(math.prod(shape), node.op)
        return fn(*(_float(a) for a in args))

    return op


def _matmul(node: Node, args, ctx):
    a, b = (_float(x) for x in args)
    if a.ndim != 2 or b.ndim != 2:
        raise GraphError(
            f"a matrix product needs 2-D inputs; got {engine.fmt_shape(a.shape)} and "
            f"{engine.fmt_shape(b.shape)}"
        )
    if node.attrs.get("transpose_a"):
        a = a.T
    if node.attrs.get("transpose_b"):
        b = b.T
    if a.shape[1] != b.shape[0]:
        raise GraphError(
            f"the matrix product of {engine.fmt_shape(a.shape)} by {engine.fmt_shape(b.shape)}: "
            f"the inner sizes {a.shape[1]} and {b.shape[0]} differ"
        )
    _bound(a.shape[0] * b.shape[1], "a matrix product")
    if a.shape[0] * a.shape[1] * b.shape[1] > MAX_PRODUCT:
        raise GraphRefused("a matrix product larger than the grader evaluates")
    ctx.spend(a.shape[0] * a.shape[1] * b.shape[1], "MatMul")
    return a @ b


def _bias_add(node: Node, args, ctx):
    value, bias = (_float(x) for x in args)
    if bias.ndim != 1 or value.ndim < 1 or value.shape[-1] != bias.shape[0]:
        raise GraphError(
            f"bias_add of {engine.fmt_shape(bias.shape)} to {engine.fmt_shape(value.shape)}"
        )
    return value + bias


def _axes(arg: np.ndarray, rank: int) -> tuple[int, ...]:
    axes = np.asarray(arg).reshape(-1).astype(np.int64)
    return tuple(sorted({int(a) % rank for a in axes})) if rank else ()


def _reduce(fn):
    def op(node: Node, args, ctx):
        x, axes = _float(args[0]), args[1]
        if x.ndim == 0:
            return x
        kept = [d for i, d in enumerate(x.shape) if i not in _axes(axes, x.ndim)]
        _bound(math.prod(kept), f"the result of {node.op}")
        ctx.spend(max(x.size, math.prod(kept)), node.op)
        return fn(x, axis=_axes(axes, x.ndim), keepdims=bool(node.attrs.get("keep_dims")))

    return op


def _softmax_ce(node: Node, args, ctx):
    logits, labels = (_float(x) for x in args)
    if logits.shape != labels.shape or logits.ndim != 2:
        raise GraphError(
            f"softmax cross entropy of logits {engine.fmt_shape(logits.shape)} against labels "
            f"{engine.fmt_shape(labels.shape)}"
        )
    loss = engine.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return loss, engine.softmax(logits) - labels


def _sparse_softmax_ce(node: Node, args, ctx):
    logits, labels = _float(args[0]), np.asarray(args[1]).astype(np.int64)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise GraphError("sparse softmax cross entropy: labels must be one class per row")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise GraphError("sparse softmax cross entropy: a label outside the classes")
    onehot = np.eye(logits.shape[1])[labels]
    loss = engine.softmax_cross_entropy_with_logits(labels=onehot, logits=logits)
    return loss, engine.softmax(logits) - onehot


def _shape_of(node: Node, args, ctx):
    return np.array(np.shape(args[0]), dtype=np.int64)


def _new_shape(arg: np.ndarray, what: str) -> tuple[int, ...]:
    dims = np.asarray(arg).reshape(-1).astype(np.int64)
    if np.any(dims < 0):
        raise GraphError(f"{what}: a negative size")
    _bound(int(np.prod(dims)) if dims.size else 1, what)
    return tuple(int(d) for d in dims)


def _reshape(node: Node, args, ctx):
    x, shape = args[0], np.asarray(args[1]).reshape(-1).astype(np.int64)
    return np.reshape(x, tuple(int(d) for d in shape))


def _fill(node: Node, args, ctx):
    shape = _new_shape(args[0], "fill")
    ctx.spend(math.prod(shape), node.op)
    return np.full(shape, args[1])


def _random(kind: str):
    def op(node: Node, args, ctx):
        shape = _new_shape(args[0], "a random draw")
        if kind == "normal":
            return ctx.rng.standard_normal(shape)
        if kind == "truncated":
            draw = ctx.rng.standard_normal(shape)
            bad = np.abs(draw) > 2
            while np.any(bad):
                draw[bad] = ctx.rng.standard_normal(int(bad.sum()))
                bad = np.abs(draw) > 2
            return draw
        return ctx.rng.random(shape)

    return op


def _slice(node: Node, args, ctx):
    x = args[0]
    begin = np.asarray(args[1]).reshape(-1).astype(np.int64)
    size = np.asarray(args[2]).reshape(-1).astype(np.int64)
    index = tuple(
        slice(int(b), None if s < 0 else int(b + s)) for b, s in zip(begin, size, strict=False)
    )
    return x[index]


def _strided_slice(node: Node, args, ctx):
    x = args[0]
    begin, end, strides = (np.asarray(a).reshape(-1).astype(np.int64) for a in args[1:4])
    masks = {
        k: int(node.attrs.get(k, 0))
        for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
    }
    if masks["ellipsis_mask"] or masks["new_axis_mask"]:
        raise GraphRefused("strided slices with ... or new axes are not evaluated")
    index: list[Any] = []
    for i in range(len(begin)):
        if masks["shrink_axis_mask"] >> i & 1:
            index.append(int(begin[i]))
            continue
        b = None if masks["begin_mask"] >> i & 1 else int(begin[i])
        e = None if masks["end_mask"] >> i & 1 else int(end[i])
        index.append(slice(b, e, int(strides[i]) or 1))
    return np.asarray(x[tuple(index)])


def _pack(node: Node, args, ctx):
    _bound(sum(np.size(a) for a in args), f"the result of {node.op}")
    return np.stack(args, axis=int(node.attrs.get("axis", 0)))


def _concat(node: Node, args, ctx):
    *parts, axis = args
    _bound(sum(np.size(a) for a in parts), f"the result of {node.op}")
    return np.concatenate(parts, axis=int(np.asarray(axis)))


def _add_n(node: Node, args, ctx):
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    _bound(math.prod(shape) * max(len(args), 1), f"the result of {node.op}")
    ctx.spend(math.prod(shape) * len(args), node.op)
    return np.sum(np.broadcast_arrays(*map(_float, args)), axis=0)


def _transpose(node: Node, args, ctx):
    perm = np.asarray(args[1]).reshape(-1).astype(np.int64)
    return np.transpose(args[0], tuple(int(p) for p in perm))


def _expand_dims(node: Node, args, ctx):
    return np.expand_dims(args[0], int(np.asarray(args[1]).reshape(-1)[0]))


def _squeeze(node: Node, args, ctx):
    dims = node.attrs.get("squeeze_dims") or []
    return np.squeeze(args[0], axis=tuple(int(d) for d in dims) or None)


def _range(node: Node, args, ctx):
    start, limit, delta = (np.asarray(a).item() for a in args)
    if delta == 0:
        raise GraphError("range with step 0")
    _bound(int(abs((limit - start) / delta)) + 1, "a range")
    return np.arange(start, limit, delta)


def _tile(node: Node, args, ctx):
    reps = np.asarray(args[1]).reshape(-1).astype(np.int64)
    _bound(int(np.size(args[0]) * (np.prod(reps) if reps.size else 1)), "a tile")
    return np.tile(args[0], tuple(int(r) for r in reps))


def _broadcast_to(node: Node, args, ctx):
    return np.broadcast_to(args[0], _new_shape(args[1], "broadcast_to")).copy()


def _argmax(node: Node, args, ctx):
    return np.argmax(args[0], axis=int(np.asarray(args[1]).reshape(-1)[0]))


def _select(node: Node, args, ctx):
    cond, a, b = args
    if node.op == "Select" and cond.ndim == 1 and a.ndim > 1:
        cond = cond.reshape((-1,) + (1,) * (a.ndim - 1))
    return np.where(cond, _float(a), _float(b))


def _div_no_nan(a, b):
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


def _leaky_relu(node: Node, args, ctx):
    x = _float(args[0])
    return np.where(x > 0, x, float(node.attrs.get("alpha", 0.2)) * x)


def _log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _identity(node: Node, args, ctx):
    return args[0]


def _const(node: Node, args, ctx):
    return node.attrs["value"]


def _unary(fn):
    return _elementwise(fn)


OPS: dict[str, Op] = {
    # inputs, constants, variables, reads
    "Placeholder": _placeholder,
    "PlaceholderV2": _placeholder,
    "PlaceholderWithDefault": _placeholder,
    "Const": _const,
    "VariableV2": _identity,  # (handled before: a variable's value comes from `values`)
    "Variable": _identity,
    "VarHandleOp": _identity,
    "ReadVariableOp": _identity,
    "Identity": _identity,
    "IdentityN": lambda node, args, ctx: tuple(args),
    "StopGradient": _identity,
    "PreventGradient": _identity,
    "Snapshot": _identity,
    "Cast": lambda node, args, ctx: _as_float_if(node, args[0]),
    # the layers
    "MatMul": _matmul,
    "Add": _elementwise(np.add),
    "AddV2": _elementwise(np.add),
    "BiasAdd": _bias_add,
    "AddN": _add_n,
    "Sigmoid": _unary(engine.sigmoid),
    "Relu": _unary(engine.relu),
    "Relu6": _unary(lambda z: np.clip(z, 0.0, 6.0)),
    "LeakyRelu": _leaky_relu,
    "Elu": _unary(lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))),
    "Softplus": _unary(lambda z: np.logaddexp(0.0, z)),
    "Tanh": _unary(engine.tanh),
    "Softmax": _unary(engine.softmax),
    "LogSoftmax": _unary(_log_softmax),
    # element-wise math (the usual spellings of the losses)
    "Sub": _elementwise(np.subtract),
    "Mul": _elementwise(np.multiply),
    "RealDiv": _elementwise(np.divide),
    "Div": _elementwise(np.divide),
    "DivNoNan": _elementwise(_div_no_nan),
    "Neg": _unary(np.negative),
    "Square": _unary(np.square),
    "SquaredDifference": _elementwise(lambda a, b: (a - b) ** 2),
    "Sqrt": _unary(np.sqrt),
    "Rsqrt": _unary(lambda z: 1.0 / np.sqrt(z)),
    "Reciprocal": _unary(lambda z: 1.0 / z),
    "Inv": _unary(lambda z: 1.0 / z),
    "Pow": _elementwise(np.power),
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Log1p": _unary(np.log1p),
    "Abs": _unary(np.abs),
    "Sign": _unary(np.sign),
    "Maximum": _elementwise(np.maximum),
    "Minimum": _elementwise(np.minimum),
    "ClipByValue": _elementwise(lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)),
    "Greater": _elementwise(np.greater),
    "GreaterEqual": _elementwise(np.greater_equal),
    "Less": _elementwise(np.less),
    "LessEqual": _elementwise(np.less_equal),
    "Equal": _elementwise(np.equal),
    "NotEqual": _elementwise(np.not_equal),
    "LogicalAnd": _elementwise(np.logical_and),
    "Select": _select,
    "SelectV2": _select,
    "ZerosLike": lambda node, args, ctx: np.zeros_like(_float(args[0])),
    "OnesLike": lambda node, args, ctx: np.ones_like(_float(args[0])),
    # reductions
    "Mean": _reduce(np.mean),
    "Sum": _reduce(np.sum),
    "Max": _reduce(np.max),
    "Min": _reduce(np.min),
    "Prod": _reduce(np.prod),
    "ArgMax": _argmax,
    # the loss ops
    "SoftmaxCrossEntropyWithLogits": _softmax_ce,
    "SparseSoftmaxCrossEntropyWithLogits": _sparse_softmax_ce,
    # shapes
    "Shape": _shape_of,
    "Size": lambda node, args, ctx: np.array(np.size(args[0]), dtype=np.int64),
    "Rank": lambda node, args, ctx: np.array(np.ndim(args[0]), dtype=np.int64),
    "Reshape": _reshape,
    "Slice": _slice,
    "StridedSlice": _strided_slice,
    "Pack": _pack,
    "ConcatV2": _concat,
    "Transpose": _transpose,
    "ExpandDims": _expand_dims,
    "Squeeze": _squeeze,
    "Range": _range,
    "Tile": _tile,
    "BroadcastTo": _broadcast_to,
    "Fill": _fill,
    # the initializers (drawn by the grader's generator, never the student's)
    "RandomStandardNormal": _random("normal"),
    "TruncatedNormal": _random("truncated"),
    "RandomUniform": _random("uniform"),
}
