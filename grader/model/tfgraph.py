"""A student's TensorFlow graph, read as data and evaluated in NumPy, without TensorFlow.

The sandbox hands back a serialized `GraphDef` (the nodes `pred` and `loss` are computed from),
the trained value of each variable, and the student's line of each node. Here it is parsed
with the protobuf classes the `tensorboard` package ships (the trusted process never imports
TensorFlow), checked against an allow-list of operations (`OPS`: anything else is refused with
its name and the student's line), and evaluated with the one NumPy engine's primitives, in
float64, on inputs the grader chooses.

The graph is hostile data: its size, its number of nodes and every array an operation would
create are bounded before anything is allocated, it is evaluated without recursion, and a
cycle is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.model import engine
from grader.model.tfops import (
    ALLOWED_SUMMARY,
    MAX_ELEMENTS,
    MAX_PRODUCT,
    OPS,
    PLACEHOLDER_OPS,
    VARIABLE_OPS,
    GraphError,
    GraphRefused,
    Node,
    _bound,
    _Context,
)

__all__ = [
    "MAX_ELEMENTS",
    "MAX_PRODUCT",
    "OPS",
    "PLACEHOLDER_OPS",
    "VARIABLE_OPS",
    "Graph",
    "GraphError",
    "GraphRefused",
    "Node",
    "tensor_name",
]

MAX_GRAPH_BYTES = 4 * 1024 * 1024
# The student's label of a line, as the child writes it ("line 41", "cell 5, line 3",
# "Test_NN.py, line 18"): anything else is dropped, never shown as if the grader said it.
LINE = re.compile(r"^([\w.\-]{1,60}, )?(cell \d{1,6}, )?line \d{1,7}$")
# Ops with more than one output (inputs may name output 1).
OUTPUTS = {"SoftmaxCrossEntropyWithLogits": 2, "SparseSoftmaxCrossEntropyWithLogits": 2}
MAX_NODES = 4000
# --- parsing -----------------------------------------------------------------------------------


def _dtypes() -> dict[int, Any]:
    from tensorboard.compat.proto import types_pb2 as t

    return {
        t.DT_FLOAT: np.float32,
        t.DT_DOUBLE: np.float64,
        t.DT_HALF: np.float16,
        t.DT_INT32: np.int32,
        t.DT_INT64: np.int64,
        t.DT_INT16: np.int16,
        t.DT_INT8: np.int8,
        t.DT_UINT8: np.uint8,
        t.DT_BOOL: np.bool_,
    }


def _shape(proto) -> tuple[int | None, ...] | None:
    """A TensorShapeProto as a tuple (None for an unknown dimension; None if rank unknown)."""
    if proto.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in proto.dim)


def _tensor(proto, dtypes: dict[int, Any]) -> np.ndarray:
    """A TensorProto (a constant) as an array; bounded before allocation."""
    if proto.dtype not in dtypes:
        raise GraphRefused(f"a constant of an unsupported type (enum {proto.dtype})")
    dtype = np.dtype(dtypes[proto.dtype])
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise GraphRefused("a constant of unknown shape")
    size = math.prod(shape)
    _bound(size, "a constant")
    if proto.tensor_content:
        if len(proto.tensor_content) != size * dtype.itemsize:
            raise GraphRefused("a constant whose data does not fit its shape")
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape).copy()
    values: Any = ()
    for attr in ("float_val", "double_val", "int_val", "int64_val", "bool_val", "half_val"):
        got = getattr(proto, attr)
        if len(got):
            values = got
            break
    if len(values) > size:
        raise GraphRefused("a constant with more values than its shape holds")
    if proto.dtype == 19 and len(values):  # DT_HALF: stored as the bits in int
        flat = np.array(list(values), dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(list(values), dtype=dtype)
    if len(flat) == size:
        return flat.reshape(shape)
    if len(flat) <= 1:  # one value for every element: a read-only view, no memory until used
        return np.broadcast_to(np.asarray(flat[-1] if len(flat) else 0, dtype=dtype), shape)
    out = np.full(shape, flat[-1], dtype=dtype)
    out.reshape(-1)[: len(flat)] = flat
    return out


def _attrs(node, dtypes: dict[int, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.attr.items():
        kind = value.WhichOneof("value")
        if kind == "tensor":
            out[key] = _tensor(value.tensor, dtypes)
        elif kind == "shape":
            out[key] = _shape(value.shape)
        elif kind == "type":
            out[key] = dtypes.get(value.type)
        elif kind == "list":
            out[key] = list(value.list.i) or list(value.list.f) or list(value.list.s)
        elif kind in ("i", "f", "b"):
            out[key] = getattr(value, kind)
        elif kind == "s":
            out[key] = value.s.decode("utf-8", "replace")
    return out


def _input(text: str) -> tuple[str, int]:
    name, _, index = text.partition(":")
    try:
        return name, int(index) if index else 0
    except ValueError:
        raise GraphRefused(f"a malformed input name {text[:80]!r}") from None


def tensor_name(text: str) -> tuple[str, int]:
    """`"Add_1:0"` -> ("Add_1", 0); a bare node name means its first output."""
    return _input(text)


class _Results(dict):
    """The outputs computed so far; an intermediate is dropped once every node that reads it
    has been computed (a forged graph of 4,000 nodes must not keep 4,000 arrays alive)."""

    def __init__(self, graph: Graph, fetches: list[tuple[str, int]]):
        super().__init__()
        self.keep = {name for name, _ in fetches}
        self.readers: dict[str, int] = {}
        seen: set[str] = set()
        stack = [name for name, _ in fetches]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            for src, _ in graph.nodes[name].inputs:
                self.readers[src] = self.readers.get(src, 0) + 1
                stack.append(src)

    def used(self, node: Node) -> None:
        for src, _ in node.inputs:
            self.readers[src] = self.readers.get(src, 1) - 1
            if self.readers[src] <= 0 and src not in self.keep and src in self:
                self[src] = [None]  # computed, and no longer needed


@dataclass
class Graph:
    """The student's graph: nodes by name, trained values of its variables, the student's
    names for some of its tensors (`pred`, `x`, `weights.hidden`), and each variable's
    initializer."""

    nodes: dict[str, Node]
    values: dict[str, np.ndarray] = field(default_factory=dict)  # variable node -> trained value
    names: dict[str, str] = field(default_factory=dict)  # student name -> "node:index" or node
    inits: dict[str, str] = field(default_factory=dict)  # variable node -> initializer tensor
    spent: int = 0  # the work all its evaluations have cost (bounded by MAX_GRAPH_WORK)

    @classmethod
    def parse(
        cls,
        data: bytes,
        *,
        lines: Mapping[str, str] | None = None,
        values: Mapping[str, np.ndarray] | None = None,
        names: Mapping[str, str] | None = None,
        inits: Mapping[str, str] | None = None,
    ) -> Graph:
        """Parse a serialized GraphDef. Raises GraphRefused if it is too large, malformed,
        or uses an op outside `OPS` (naming the op and the student's line)."""
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import graph_pb2

        if len(data) > MAX_GRAPH_BYTES:
            raise GraphRefused(f"the graph is larger than {MAX_GRAPH_BYTES // 2**20} MB")
        proto = graph_pb2.GraphDef()
        try:
            proto.ParseFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise GraphRefused(f"the graph cannot be read: {exc}") from None
        if len(proto.node) > MAX_NODES:
            raise GraphRefused(f"the graph has {len(proto.node)} nodes (at most {MAX_NODES})")
        dtypes = _dtypes()
        lines = {k: v for k, v in (lines or {}).items() if isinstance(v, str) and LINE.match(v)}
        nodes: dict[str, Node] = {}
        for raw in proto.node:
            line = str(lines.get(raw.name, ""))[:80]
            if raw.op not in OPS:
                where = line or f"node {raw.name[:80]}"
                raise GraphRefused(
                    f"{where}: `{raw.op[:60]}` is not an operation the grader evaluates "
                    f"(it reads networks built from {', '.join(ALLOWED_SUMMARY)})"
                )
            inputs = tuple(_input(i) for i in raw.input if not i.startswith("^"))
            try:
                attrs = _attrs(raw, dtypes)
            except GraphRefused as exc:
                raise GraphRefused(f"{line or raw.name[:80]}: {exc}") from None
            nodes[raw.name] = Node(raw.name, raw.op, inputs, attrs, line)
        constants = 0
        for node in nodes.values():
            for src, index in node.inputs:
                if src not in nodes:
                    raise GraphRefused(f"{node.where}: its input {src[:80]!r} is not in the graph")
                if index >= OUTPUTS.get(nodes[src].op, 1) and nodes[src].op != "IdentityN":
                    raise GraphRefused(f"{node.where}: its input {src[:80]}:{index} does not exist")
            if node.op == "Const":
                if not isinstance(node.attrs.get("value"), np.ndarray):
                    raise GraphRefused(f"{node.where}: a constant without a value")
                constants += int(np.asarray(node.attrs["value"]).size)
        _bound(constants, "the graph's constants")
        for ref in [*(names or {}).values(), *(inits or {}).values()]:
            tensor_name(str(ref))  # a malformed reference is refused here, as GraphRefused
        graph = cls(nodes, dict(values or {}), dict(names or {}), dict(inits or {}))
        for var, value in graph.values.items():
            if var not in nodes or nodes[var].op not in VARIABLE_OPS:
                raise GraphRefused(f"a value was handed back for {var[:80]!r}, not a variable")
            if value.dtype.kind not in "biuf":
                raise GraphRefused(f"the value of {var[:80]!r} is not numeric")
            declared = nodes[var].attrs.get("shape")
            if declared is not None and all(isinstance(d, int) for d in declared):
                if tuple(declared) != value.shape:
                    raise GraphRefused(
                        f"{nodes[var].where}: the value handed back has shape {value.shape}; "
                        f"the variable is declared {tuple(declared)}"
                    )
        return graph

    # -- what is where ---------------------------------------------------------------------

    def node_of(self, student_name: str) -> Node | None:
        """The node the student's name (`pred`, `x`, `weights.hidden`) refers to."""
        ref = self.names.get(student_name)
        if ref is None:
            return None
        return self.nodes.get(tensor_name(ref)[0])

    def tensor_of(self, student_name: str) -> tuple[str, int] | None:
        ref = self.names.get(student_name)
        if ref is None or tensor_name(ref)[0] not in self.nodes:
            return None
        return tensor_name(ref)

    def student_name(self, node: str) -> str | None:
        """The student's name of a node (a variable `weights.hidden`, a placeholder `x`)."""
        for name, ref in self.names.items():
            if tensor_name(ref)[0] == node:
                return name
        return None

    def variables(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.op in VARIABLE_OPS]

    def placeholders(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.op in PLACEHOLDER_OPS]

    def reads(self, tensor: tuple[str, int]) -> set[str]:
        """The names of the nodes `tensor` is computed from (itself included)."""
        seen: set[str] = set()
        stack = [tensor[0]]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(src for src, _ in self.nodes[name].inputs)
        return seen

    # -- evaluation ------------------------------------------------------------------------

    def initial_values(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Each variable's value as its own initializer draws it (random ops drawn with `rng`),
        for the variables whose initializer is in the graph."""
        out: dict[str, np.ndarray] = {}
        for var, init in self.inits.items():
            if var not in self.nodes:
                continue
            ref = tensor_name(init)
            if ref[0] not in self.nodes:
                continue
            (value,) = self.evaluate([ref], {}, values={}, rng=rng)
            out[var] = value
        return out

    def evaluate(
        self,
        fetches: list[tuple[str, int]],
        feeds: Mapping[tuple[str, int], np.ndarray],
        *,
        values: Mapping[str, np.ndarray] | None = None,
        rng: np.random.Generator | None = None,
    ) -> list[np.ndarray]:
        """The fetched tensors, with `feeds` given for any tensor (placeholders, or `pred` to
        evaluate a loss on chosen outputs) and the variables at `values` (default: trained).
        Raises GraphError naming the node and line where evaluation fails."""
        values = self.values if values is None else values
        ctx = _Context(rng or np.random.default_rng(0), before=self.spent)
        done: dict[str, list[np.ndarray]] = _Results(self, fetches)
        fed_nodes: dict[str, dict[int, np.ndarray]] = {}
        for (name, index), value in feeds.items():
            fed_nodes.setdefault(name, {})[index] = np.asarray(value)
        try:
            for target in fetches:
                self._run(target[0], done, fed_nodes, values, ctx)
        finally:
            self.spent += ctx.work
        out = []
        for name, index in fetches:
            got = done[name]
            if index >= len(got):
                raise GraphError(f"{self.nodes[name].where}: no output {index}")
            out.append(got[index])
        return out

    def _run(self, target, done, fed, values, ctx) -> None:
        """Evaluate `target` and what it needs, depth first without recursion."""
        stack: list[tuple[str, bool]] = [(target, False)]
        on_path: set[str] = set()
        while stack:
            name, expanded = stack.pop()
            if name in done:
                continue
            node = self.nodes[name]
            if name in fed and 0 in fed[name] and len(fed[name]) == 1:
                done[name] = [fed[name][0]]
                continue
            if expanded:
                on_path.discard(name)
                done[name] = self._compute(node, [done[s][i] for s, i in node.inputs], values, ctx)
                done.used(node)
                continue
            if name in on_path:
                raise GraphRefused(f"{node.where}: the graph has a cycle")
            on_path.add(name)
            stack.append((name, True))
            if node.op in VARIABLE_OPS or node.op in PLACEHOLDER_OPS and name in fed:
                continue
            for src, _ in node.inputs:
                if src not in done:
                    if src in on_path:
                        raise GraphRefused(f"{node.where}: the graph has a cycle")
                    stack.append((src, False))

    def _compute(self, node: Node, args: list[np.ndarray], values, ctx) -> list[np.ndarray]:
        if node.op in VARIABLE_OPS:
            if node.name not in values:
                raise GraphError(f"{node.where}: the variable has no value")
            return [np.asarray(values[node.name])]
        fn = OPS[node.op]
        try:
            with np.errstate(all="ignore"):
                got = fn(node, args, ctx)
        except (GraphError, GraphRefused) as exc:
            raise type(exc)(f"{node.where}: {exc}") from None
        except (ValueError, LookupError, TypeError, ArithmeticError, MemoryError) as exc:
            shapes = ", ".join(engine.fmt_shape(a.shape) for a in args)
            raise GraphError(
                f"{node.where}: {node.op} cannot be computed on inputs of shape {shapes}: "
                f"{str(exc)[:200]}"
            ) from None
        outs = list(got) if isinstance(got, tuple) else [got]
        for out in outs:
            _bound(np.size(out), f"the result of {node.op}")
        return [np.asarray(o) for o in outs]
