"""The student's TensorFlow graph, handed back as data: a serialized GraphDef of the nodes that
`pred` and `loss` are computed from (and the initializers of the variables they read), the
trained value of each variable, and the student's line that created each node.

Nothing here is trusted: the parent parses the GraphDef without TensorFlow, refuses any op
outside its allow-list, and evaluates the network itself on data this process never sees.
A forged graph is only worth what the network it describes computes.
"""

from __future__ import annotations

import os

from grader.wire import GRAPH_DEF, GraphFacts, graph_value_key

MAX_NODES = 4000  # more is not a lecture network: the parent refuses it too


def export(names, tensors, ns, facts, arrays, tfc, np, wheres) -> None:
    """Export the graph of the student's tensors `tensors` (names in `ns`), naming the
    placeholders and variables `names` (student name -> the object in `ns`)."""
    out: dict = {
        GraphFacts.NAMES: {},
        GraphFacts.LINES: {},
        GraphFacts.INITS: {},
        GraphFacts.WHERE: {},
    }
    facts[GraphFacts.FIELD] = out
    v1 = tfc.v1()
    found = []
    for name in tensors:
        value = ns.get(name)
        if isinstance(value, v1.Tensor):
            found.append((name, value))
        elif value is None:
            out[GraphFacts.ERRORS] = out.get(GraphFacts.ERRORS, {}) | {name: "not defined"}
        else:
            what = type(value).__name__
            out[GraphFacts.ERRORS] = out.get(GraphFacts.ERRORS, {}) | {
                name: f"is a {what}, not a TensorFlow tensor"
            }
    # The graph of `pred`; when the code stopped before building it, the graph of the
    # placeholders and variables it did build (their shapes are still checked).
    anchors = [t for _, t in found] + [v for v in names.values() if hasattr(v, "graph")]
    if not anchors:
        return
    graph = anchors[0].graph
    for name, tensor in found:
        if tensor.graph is graph:
            out[GraphFacts.NAMES][name] = tensor.name
    variables = {v.op.name: v for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)}
    for student_name, value in names.items():
        if isinstance(value, v1.Tensor) and value.graph is graph:
            out[GraphFacts.NAMES][student_name] = value.name
        elif getattr(value, "op", None) is not None and value.op.name in variables:
            if value.graph is graph:
                out[GraphFacts.NAMES][student_name] = value.op.name

    whole = graph.as_graph_def()
    by_name = {node.name: node for node in whole.node}
    roots = [t.op.name for _, t in found if t.graph is graph]
    # The placeholders and variables the spec names, even where `pred`/`loss` do not read them:
    # their shapes are checked, and an unused one is named as such.
    roots += [ref.split(":")[0] for ref in out[GraphFacts.NAMES].values()]
    keep = _reachable(roots, by_name, variables, out[GraphFacts.INITS])
    sub = type(whole)()
    sub.versions.CopyFrom(whole.versions)
    for name in keep:
        node = sub.node.add()
        node.CopyFrom(by_name[name])
        del node.input[:]
        node.input.extend(i for i in by_name[name].input if not i.startswith("^"))
        line = _line_of(graph, name, wheres)
        if line:
            out[GraphFacts.LINES][name] = line
        var = variables.get(name)
        if var is not None:
            try:
                arrays[graph_value_key(name)] = np.asarray(tfc.value_of(var))
            except Exception:  # noqa: BLE001 - never trained: the parent uses its initializer
                pass
    arrays[GRAPH_DEF] = np.frombuffer(sub.SerializeToString(), dtype=np.uint8).copy()
    step = ns.get(GraphFacts.TRAINING_STEP)
    if getattr(step, "graph", None) is graph and getattr(step, "name", None):
        line = _line_of(graph, step.name, wheres)
        if line:
            out[GraphFacts.WHERE][GraphFacts.TRAINING_STEP] = line


def _reachable(roots: list[str], by_name: dict, variables: dict, inits: dict) -> list[str]:
    """The nodes the roots are computed from (data inputs only), with each variable's
    initializer (recorded in `inits`); at most MAX_NODES."""
    keep: list[str] = []
    seen: set[str] = set()
    stack = list(roots)
    while stack and len(seen) <= MAX_NODES:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        keep.append(name)
        stack.extend(i.split(":")[0] for i in by_name[name].input if not i.startswith("^"))
        var = variables.get(name)
        if var is not None:
            try:
                init = var.initial_value
                inits[name] = init.name
                stack.append(init.op.name)
            except Exception:  # noqa: BLE001 - no initializer to show: the parent says so
                pass
    return keep


def _line_of(graph, name: str, wheres: dict[str, list[str]]) -> str:
    """The student's label ("line 41", "cell 5, line 3") of the line that created node `name`."""
    try:
        frames = graph.get_operation_by_name(name).traceback
    except Exception:  # noqa: BLE001
        return ""
    for frame in reversed(list(frames)):
        where = wheres.get(os.path.abspath(frame.filename))
        if where is not None:
            n = frame.lineno
            return where[n - 1] if n and 0 < n <= len(where) else f"line {n}"
    return ""
