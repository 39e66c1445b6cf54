"""Measures of the student's own network: their TensorFlow graph, handed back as data by the
sandbox and evaluated here by the trusted engine (`grader.model.tfgraph`) on data the child
never saw.

`student_network(ev)` parses and validates the graph once per run (cached in the evidence);
the measures feed it the grader's own inputs, adapted to the student's placeholders where a
known mistake changes their width (no bias column, a label column instead of one-hot), so that
one mistake is named once, by the check it belongs to, and the others still judge what the
student's network does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from grader.checks.base import Evidence, Missing, show
from grader.checks.measures.network import (
    HELDOUT_SEED,
    INIT_SEED,
    LOSS_DATA_SEED,
    LOSS_FUNCTION_SEED,
    Accuracy,
    Agreement,
)
from grader.course.tasks import InputKind, LabelKind, Task
from grader.model.graph_layers import ACTIVATION_OPS, PASS_THROUGH, NetworkRead, read_network
from grader.model.tfgraph import Graph, GraphError, GraphRefused, tensor_name
from grader.wire import GRAPH_DEF, GRAPH_VALUE, GraphFacts

Tensor = tuple[str, int]


@dataclass
class StudentNetwork:
    """The student's graph and what the spec names in it."""

    graph: Graph
    tensors: dict[str, Tensor]  # student name (`pred`, `loss`, `x`) -> tensor
    untrained: list[str] = field(default_factory=list)  # variable nodes without a trained value
    pred_name: str = "pred"  # the spec's first tensor: the network's output
    where: dict[str, str] = field(default_factory=dict)  # `optm` -> its line (not in the graph)
    errors: dict[str, str] = field(default_factory=dict)  # `pred` -> why it was not exported
    stopped: bool = False  # the student's code raised or exited before its end
    _initial: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def tensor(self, name: str) -> Tensor:
        if name not in self.tensors:
            raise Missing(f"`{name}` is not in the graph your code handed back")
        return self.tensors[name]

    def node(self, name: str):
        return self.graph.nodes[self.tensor(name)[0]]

    def line(self, name: str) -> str:
        """The student's line of a name (`pred`, `x`, `weights.hidden`, `optm`), or ""."""
        if name in self.where:
            return self.where[name]
        try:
            return self.node(name).line
        except Missing:
            return ""

    def width(self, placeholder: str) -> int | None:
        """The number of columns the placeholder declares (None: open or 1-D)."""
        shape = self.node(placeholder).attrs.get("shape")
        if not shape:
            return None
        return shape[-1] if len(shape) >= 2 else None

    def run(
        self,
        fetch: str,
        feeds: dict[str, np.ndarray],
        values: dict[str, np.ndarray] | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Tensor `fetch` with the named tensors fed; variables at `values` (default: the
        trained values, and each untrained variable at its initializer)."""
        if values is None:
            values = self.trained_values()
        got = self.graph.evaluate(
            [self.tensor(fetch)],
            {self.tensor(k): v for k, v in feeds.items()},
            values=values,
            rng=rng,
        )
        return np.asarray(got[0], dtype=np.float64)

    def trained_values(self) -> dict[str, np.ndarray]:
        values = dict(self.initial_values(0))
        values.update(self.graph.values)
        return values

    def initial_values(self, seed: int) -> dict[str, np.ndarray]:
        """The variables as their own initializers draw them (with a grader generator)."""
        if seed not in self._initial:
            self._initial[seed] = self.graph.initial_values(np.random.default_rng(seed))
        return self._initial[seed]

    def read(self, fetch: str = "pred") -> NetworkRead:
        return read_network(self.graph, self.tensor(fetch))

    def outputs_probabilities(self, fetch: str = "pred") -> bool:
        """The output passes through a sigmoid or softmax (a probability, not a logit)."""
        node = self.node(fetch)
        while node.op in PASS_THROUGH and node.inputs:
            node = self.graph.nodes[node.inputs[0][0]]
        return ACTIVATION_OPS.get(node.op) in ("sigmoid", "softmax")


def student_network(ev: Evidence) -> StudentNetwork:
    """The student's graph, parsed and checked (cached). Raises Missing when the run handed
    back no graph, saying why, and Missing with the refusal when the graph is refused."""
    if "student_network" in ev.cache:
        found = ev.cache["student_network"]
        if isinstance(found, Missing):
            raise found
        return found
    try:
        net = _load(ev)
    except Missing as exc:
        ev.cache["student_network"] = exc
        raise
    ev.cache["student_network"] = net
    return net


def _load(ev: Evidence) -> StudentNetwork:
    info = ev.facts.get(GraphFacts.FIELD)
    info = info if isinstance(info, dict) else {}
    got_errors = info.get(GraphFacts.ERRORS)
    errors: dict = got_errors if isinstance(got_errors, dict) else {}
    if GRAPH_DEF not in ev.arrays:
        wanted = ev.assignment.collect.graph
        reasons = [f"`{k}` {v}" for k, v in errors.items() if isinstance(v, str)]
        if not reasons:
            reasons = [
                f"`{n}` " + str(ev.facts.get("missing", {}).get(n, "was not defined"))
                for n in wanted
            ]
        raise Missing("your network could not be read: " + "; ".join(reasons)[:400])
    raw = ev.arrays[GRAPH_DEF]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise Missing("the graph handed back is not a byte string")

    def strings(key: str) -> dict[str, str]:
        got = info.get(key)
        if not isinstance(got, dict):
            return {}
        return {str(k): str(v) for k, v in got.items() if isinstance(v, str)}

    values = {
        k[len(GRAPH_VALUE) :]: np.asarray(v)
        for k, v in ev.arrays.items()
        if k.startswith(GRAPH_VALUE)
    }
    try:
        graph = Graph.parse(
            raw.tobytes(),
            lines=strings(GraphFacts.LINES),
            values=values,
            names=strings(GraphFacts.NAMES),
            inits=strings(GraphFacts.INITS),
        )
    except GraphRefused as exc:
        raise Missing(f"your network cannot be graded: {exc}") from None
    except MemoryError:
        raise Missing("your network cannot be graded: it is too large to read") from None
    tensors: dict[str, Tensor] = {}
    for name, ref in graph.names.items():
        node, index = tensor_name(ref)
        if node in graph.nodes:
            tensors[name] = (node, index)
    too_big = _larger_than_allowed(ev, graph, tensors)
    if too_big:
        raise Missing(too_big)
    untrained = [v.name for v in graph.variables() if v.name not in graph.values]
    wanted = ev.assignment.collect.graph
    where = {k: str(v)[:80] for k, v in strings(GraphFacts.WHERE).items()}
    why_not = {k: str(v)[:200] for k, v in errors.items() if isinstance(v, str)}
    pred = wanted[0] if wanted else "pred"
    stopped = bool(ev.facts.get("exception"))
    return StudentNetwork(graph, tensors, untrained, pred, where, why_not, stopped)


def _larger_than_allowed(ev: Evidence, graph: Graph, tensors: dict[str, Tensor]) -> str | None:
    """A variable larger than the spec's `shapes` check allows is never evaluated: a 96 KB
    weight of shape (3, 4000) must not make the grader evaluate a 4000-wide layer on a grid."""
    for name, limit in ev.bounds().items():
        if name not in tensors:
            continue
        node = graph.nodes[tensors[name][0]]
        shape = (
            graph.values[node.name].shape if node.name in graph.values else node.attrs.get("shape")
        )
        if not shape or len(shape) != len(limit):
            continue
        dims = sorted(shape) if len(shape) == 2 else list(shape)  # stored transposed or not
        bound = sorted(b or 0 for b in limit) if len(shape) == 2 else list(limit)
        if any(b and d is not None and d > b for d, b in zip(dims, bound, strict=True)):
            allowed = "(" + ", ".join("None" if b is None else str(b) for b in limit) + ")"
            got = "(" + ", ".join(str(d) for d in shape) + ")"
            return (
                f"{show(name)} has shape {got}, more than this assignment allows ({allowed}); "
                f"your network was not evaluated"
            )
    return None


# --- the grader's data, in the form the student's placeholders take ----------------------------


def adapt_inputs(task: Task, points: np.ndarray, width: int | None) -> np.ndarray:
    """The lecture's input for generator points, as the student's `x` takes it: with or
    without the bias column the lecture adds, when that is the difference in width."""
    x = task.features(points)
    if width is None or x.ndim != 2 or x.shape[1] == width:
        return x
    if task.input is InputKind.BIAS_COLUMN and width == x.shape[1] - 1:
        return x[:, 1:]
    if task.input is InputKind.RAW and width == x.shape[1] + 1:
        return np.column_stack([np.ones(len(x)), x])
    return x


def adapt_targets(task: Task, targets: np.ndarray, width: int | None) -> np.ndarray:
    """Labels as the student's `y` takes them: one column of classes, or one-hot."""
    if width is None or targets.ndim != 2 or targets.shape[1] == width:
        return targets
    if task.labels is LabelKind.ONEHOT and width == 1:
        return np.argmax(targets, axis=1)[:, None].astype(np.float64)
    if task.labels is LabelKind.BINARY and targets.shape[1] == 1 and width >= 2:
        return np.eye(width)[targets[:, 0].astype(np.int64)]
    return targets


def classes_of(outputs: np.ndarray, probabilities: bool) -> np.ndarray:
    """The class each output row predicts: the larger column (column 1 = C1), or for one
    column, above 0.5 (a probability) or above 0 (a logit)."""
    out = outputs.reshape(len(outputs), -1)
    if out.shape[1] >= 2:
        return np.argmax(out, axis=1)
    return (out[:, 0] > (0.5 if probabilities else 0.0)).astype(np.int64)


def at_initialization(ev: Evidence, net: StudentNetwork) -> dict[str, np.ndarray]:
    """Every variable at the student's own initialization (their graph's initializers, drawn
    by the grader): what the network gives before any training."""
    return {**net.trained_values(), **net.initial_values(ev.assignment.grading_seed + INIT_SEED)}


def predict(
    ev: Evidence,
    net: StudentNetwork,
    points: np.ndarray,
    fetch: str = "pred",
    x: str = "x",
    values: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The class the student's network predicts for each generator point (or image), with
    its trained values (or `values`)."""
    inputs = adapt_inputs(ev.task, points, net.width(x))
    out = net.run(fetch, {x: inputs}, values=values)
    if out.shape[:1] != (len(points),):
        raise GraphError(
            f"`{fetch}` gives {out.shape[0] if out.ndim else 1} rows for {len(points)} inputs"
        )
    return classes_of(out, net.outputs_probabilities(fetch))


def network_accuracy(
    ev: Evidence,
    net: StudentNetwork,
    pred: str = "pred",
    x: str = "x",
    values: dict[str, np.ndarray] | None = None,
) -> Accuracy:
    """Accuracy of the student's own network (trained, or at `values`) on the held-out images
    (never served to the sandbox). Raises GraphError (or ValueError) when it cannot be
    evaluated on them."""
    classes = predict(ev, net, ev.data.heldout_x, pred, x, values)
    acc = float(np.mean(classes == ev.data.heldout_y))
    return Accuracy(acc, classes, np.bincount(classes, minlength=ev.task.classes))


def network_boundary(
    ev: Evidence,
    net: StudentNetwork,
    grid: int,
    heldout: int,
    pred: str = "pred",
    x: str = "x",
    values: dict[str, np.ndarray] | None = None,
) -> Agreement:
    """Agreement of the student's network (trained, or at `values`) with the generator's true
    boundary, on a `grid` x `grid` grid over the lecture's domain and on `heldout` points
    drawn with a grader seed."""
    gen = ev.task.generator
    assert gen is not None, "a decision boundary needs the lecture's data generator"
    points = gen.grid(grid)
    held, _, _ = ev.task.dataset(heldout, ev.assignment.grading_seed + HELDOUT_SEED)
    on_grid = float(np.mean(predict(ev, net, points, pred, x, values) == gen.classes(points)))
    on_held = float(np.mean(predict(ev, net, held, pred, x, values) == gen.classes(held)))
    return Agreement(on_grid, on_held)


@dataclass(frozen=True)
class TrainingLoss:
    """The student's own loss on data the grader draws: at their own initialization (their
    graph's initializers, drawn by the grader), after training, and at the template's."""

    start: float
    final: float
    template: float
    starts: tuple[float, ...] = ()  # the loss at several draws of the student's initialization

    @property
    def grew(self) -> bool:
        """Training made the loss clearly worse than any draw of the initialization gives."""
        worst = max(self.starts or (self.start,))
        return bool(self.final > 1.5 * worst) or not np.isfinite(self.final)

    @property
    def unchanged(self) -> bool:
        """The final loss is within the spread of the initialization's draws."""
        lo, hi = min(self.starts or (self.start,)), max(self.starts or (self.start,))
        return bool(0.9 * lo <= self.final <= 1.1 * hi)

    @property
    def fell(self) -> bool:
        """Below every draw of the initialization."""
        return bool(self.final < min(self.starts or (self.start,)))

    @property
    def ratio(self) -> float:
        return self.final / self.start if self.start > 0 else float("inf")


def fresh_data(ev: Evidence, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw points or images, targets in the lecture's format) the sandbox never saw."""
    if ev.data is not None:
        images, labels = ev.task.select(ev.data.heldout_x, ev.data.heldout_y)
        return images[:n], ev.task.image_targets(images[:n], labels[:n])
    points, _, targets = ev.task.dataset(n, ev.assignment.grading_seed + LOSS_DATA_SEED)
    return points, targets


def template_values(ev: Evidence, net: StudentNetwork) -> dict[str, np.ndarray]:
    """Each variable drawn as the template initializes it: normal, `init_stddev`."""
    rng = np.random.default_rng(ev.assignment.grading_seed + INIT_SEED)
    out = {}
    for var in net.graph.variables():
        shape = (
            net.graph.values[var.name].shape
            if var.name in net.graph.values
            else var.attrs.get("shape")
        )
        if shape is not None and all(isinstance(d, int) for d in shape):
            out[var.name] = rng.normal(0.0, ev.task.init_stddev, size=tuple(shape))
    return out


def training_loss(
    ev: Evidence, net: StudentNetwork, n: int, loss: str = "loss", x: str = "x", y: str = "y"
) -> tuple[TrainingLoss, dict[str, np.ndarray]]:
    """The student's `loss` on `n` fresh points (or held-out images) at their initialization,
    after training and at the template's initialization; and the feeds it was evaluated on."""
    points, targets = fresh_data(ev, n)
    feeds = {x: adapt_inputs(ev.task, points, net.width(x))}
    if y in net.tensors and net.tensors[y][0] in net.graph.reads(net.tensor(loss)):
        feeds[y] = adapt_targets(ev.task, targets, net.width(y))
    trained = net.trained_values()
    own = net.initial_values(ev.assignment.grading_seed + INIT_SEED)

    def value(values: dict[str, np.ndarray]) -> float:
        return float(net.run(loss, feeds, values=values).reshape(-1)[0])

    starts = [value({**trained, **own})]
    for k in range(1, INIT_DRAWS):  # the spread of the student's own initialization
        seed = ev.assignment.grading_seed + INIT_SEED + 1000 * k
        starts.append(value({**trained, **net.initial_values(seed)}))
    figures = TrainingLoss(
        start=starts[0],
        final=value(trained),
        template=value({**trained, **template_values(ev, net)}),
        starts=tuple(starts),
    )
    return figures, feeds


INIT_DRAWS = 10  # draws of the student's initialization: how much the loss varies between them
LOSS_BATCHES = (37, 150)  # two batch sizes: a sum, or a mean over a fixed count, shows


@dataclass(frozen=True)
class LossCompared:
    """The student's loss and the lecture's, on `n` outputs the grader chose."""

    n: int
    got_array: np.ndarray
    want: float

    @property
    def size(self) -> int:
        return int(self.got_array.size)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.got_array.shape)

    @property
    def got(self) -> float:
        return float(self.got_array.reshape(-1)[0])

    def excess(self, rtol: float) -> float:
        """|got - want| - rtol |want| (infinite when the student's loss is not finite)."""
        if not np.isfinite(self.got):
            return float("inf")
        return abs(self.got - self.want) - rtol * abs(self.want)


def _loss_targets(task: Task, n: int, rng: np.random.Generator, width: int | None) -> np.ndarray:
    """Labels in the lecture's format for `n` outputs (random classes, or values)."""
    if task.labels is LabelKind.REGRESSION:
        return rng.normal(0.0, 1.0, n)
    if task.labels is LabelKind.RECONSTRUCTION:
        return rng.random((n, width or 1))
    labels = rng.integers(0, task.classes, n)
    if task.labels is LabelKind.BINARY:
        return labels[:, None].astype(np.float64)
    return np.eye(task.classes)[labels]


def loss_function_values(
    ev: Evidence,
    net: StudentNetwork,
    fetch: str = "loss",
    pred: str = "pred",
    labels: str = "y",
    input: str = "x",
) -> list[LossCompared]:
    """The student's `loss` next to the lecture's loss, in two batch sizes. When the loss reads
    `pred`, on outputs the grader draws (normal, not saturated) fed in place of `pred`; else on
    fresh inputs, against the lecture's loss of the student's own `pred`."""
    rng = np.random.default_rng(ev.assignment.grading_seed + LOSS_FUNCTION_SEED)
    reads_pred = net.tensor(pred)[0] in net.graph.reads(net.tensor(fetch))
    sample = None
    if input in net.tensors:
        probe = adapt_inputs(ev.task, fresh_data(ev, 3)[0], net.width(input))
        sample = net.run(pred, {input: probe})
    width = None if sample is None or sample.ndim < 2 else sample.shape[1]
    out = []
    for n in LOSS_BATCHES:
        targets = adapt_targets(ev.task, _loss_targets(ev.task, n, rng, width), width)
        feeds: dict[str, np.ndarray] = {}
        if labels in net.tensors:
            feeds[labels] = adapt_targets(ev.task, targets, net.width(labels))
        if reads_pred:
            outputs = rng.normal(0.0, 1.0, (n,) if width is None else (n, width))
            feeds[pred] = outputs
        else:
            points = ev.task.dataset(n, ev.assignment.grading_seed + LOSS_DATA_SEED)[0]
            feeds[input] = adapt_inputs(ev.task, points, net.width(input))
            outputs = net.run(pred, {input: feeds[input]})
        got = net.run(fetch, feeds)
        out.append(LossCompared(n, got, float(ev.task.loss_value(outputs, targets))))
    return out


__all__ = [
    "at_initialization",
    "LossCompared",
    "TrainingLoss",
    "fresh_data",
    "loss_function_values",
    "network_boundary",
    "template_values",
    "training_loss",
    "network_accuracy",
    "StudentNetwork",
    "adapt_inputs",
    "adapt_targets",
    "classes_of",
    "predict",
    "student_network",
]
