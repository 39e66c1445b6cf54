"""The sandbox contract: the one module both sides of the trust boundary import.

The trusted runner writes a `JobSpec` as `job.json`; the untrusted child reads it, runs the
student's code and writes a manifest (`manifest.json`) and arrays (`arrays.npz`) whose names,
version and fields are defined here. Everything crossing the boundary is declared once, typed,
and validated once: the spec loader builds `Limits` and `Collect` from the TOML (naming the file
and key that are wrong), the child rebuilds them from `job.json` with the same code.

Standard library only: the child imports this before anything else, and the trusted side never
imports the child.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import IntEnum
from typing import Any

__all__ = [
    "GRAPH_DEF",
    "GraphFacts",
    "graph_value_key",
    "ARRAYS_FILE",
    "JOB_FILE",
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "CallCount",
    "Collect",
    "ContractError",
    "Exit",
    "Fetch",
    "FunctionCall",
    "Isolation",
    "JobSpec",
    "Limits",
    "ManifestFields",
    "Stage",
    "Status",
]

MANIFEST_VERSION = 1
JOB_FILE = "job.json"
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"
INPUTS_FILE = "inputs.npz"
JOB_IN = "/job/in"  # the job's inputs inside the walls (read-only)
JOB_WORK = "/job/work"  # its working folder (a private, size-capped tmpfs)
READY = b"GRADER-READY\n"  # written by the child just before the student's code runs
RESULTS_MAGIC = b"GRADER-RESULTS-1\n"  # then two frames: 8-byte length + manifest, + arrays
# Written by the child right after READY once the student's code has run, when the job has
# drawn calls (`Isolation.calls_fd`): the runner answers on that pipe with the calls (a JSON
# list of `FunctionCall` mappings, never in job.json), then closes it.
ASK_CALLS = b"GRADER-CALLS?\n"
MAX_CALLS_BYTES = 1 << 20  # what the child reads of the answer
# What the child may report of its own timing (the runner measures the rest itself).
CHILD_TIMINGS = ("import_s", "legacy_import_s", "student_s", "collect_s", "child_total_s")


class Exit(IntEnum):
    """Exit codes of the child that mean something to the runner."""

    OK = 0
    SETUP_FAILED = 97  # the sandbox could not be set up: the grader's fault, not the student's


class Status:
    """What the student's code did, as the child reports it in the manifest (a log: the trusted
    side never scores on it, it only chooses the message)."""

    COMPLETED = "completed"
    EXCEPTION = "exception"
    EXIT = "exit"
    MEMORY = "memory"
    ALL = (COMPLETED, EXCEPTION, EXIT, MEMORY)


class ManifestFields:
    """The object-valued fields of a manifest (each a JSON object when present)."""

    MISSING = "missing"  # variable -> why it could not be collected
    PLACEHOLDERS = "placeholders"  # placeholder name -> {"kind", "shape", "dtype"}
    FETCH_ERRORS = "fetch_errors"
    CALL_ERRORS = "call_errors"
    CALL_COUNTS = "call_counts"
    DECLARED_SHAPES = "declared_shapes"  # variable -> static shape, even if never trained
    TIMING = "timing"
    ARRAYS = "arrays"  # array name -> {"shape", "dtype"}
    GRAPH = "graph"  # the student's graph: see GraphFacts
    # Facts an earlier stage of a multi-file run hands back under its prefix.
    PER_STAGE = (MISSING, DECLARED_SHAPES)
    # Facts that every stage collects afresh.
    COLLECTED = (MISSING, DECLARED_SHAPES, PLACEHOLDERS, FETCH_ERRORS, CALL_ERRORS, CALL_COUNTS)
    OBJECTS = (*COLLECTED, TIMING, ARRAYS, GRAPH)


class GraphFacts:
    """The manifest's `graph` object: what the child says of the student's TensorFlow graph,
    besides the GraphDef itself (array `GRAPH_DEF`) and the variables' values
    (`graph_value_key(node)`). All of it is data for the parent to check, never a verdict."""

    FIELD = ManifestFields.GRAPH
    NAMES = "names"  # student name (`pred`, `x`, `weights.hidden`) -> node or tensor name
    LINES = "lines"  # node name -> the student's label of the line that created it
    INITS = "inits"  # variable node -> the tensor its initializer computes
    ERRORS = "errors"  # student name -> why it could not be exported
    WHERE = "where"  # student name (`optm`) -> its line, for what is not in the GraphDef
    TRAINING_STEP = "optm"  # the lecture's name of the training step, located for feedback


GRAPH_DEF = "graph:def"  # the serialized GraphDef, as an array of bytes (uint8)
GRAPH_VALUE = "graph:value:"


def graph_value_key(node: str) -> str:
    """The array name of the trained value of the variable node `node` of the student's graph."""
    return GRAPH_VALUE + node


FETCH, CALL = "fetch:", "call:"  # the prefixes of evaluated tensors and function calls


def fetch_key(name: str) -> str:
    """The array name of a tensor the child evaluated on the probe inputs."""
    return FETCH + name


def call_key(call_id: str) -> str:
    """The array name of what a student function returned for a call of the spec."""
    return CALL + call_id


def param_key(variable: str, key: str | None = None) -> str:
    """The array name of a variable, or of one entry of a dict of variables (`weights.out`)."""
    return variable if key is None else f"{variable}.{key}"


class ContractError(ValueError):
    """A value does not fit the contract; the message names the key that is wrong."""


# --- limits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The limits of one run (spec table `[limits]`).

    Args:
        timeout_s: CPU time of the student's code (the wall clock is only a 3x backstop).
            Defaults to `120`.
        memory_mb: resident memory of the job's processes. Defaults to `3072`.
        call_timeout_s: CPU time of each function call the spec makes. Defaults to `10`.
        nproc: processes of the job. Defaults to `512`.
        file_size_mb: the largest file the job may write. Defaults to `512`.
    """

    timeout_s: float = 120.0
    memory_mb: int = 3072
    call_timeout_s: float = 10.0
    nproc: int = 512
    file_size_mb: int = 512

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str) -> Limits:
        return cls(**_fields_of(cls, data, where, positive=True))

    @property
    def address_space_mb(self) -> int:
        """The RLIMIT_AS backstop: generous, since TensorFlow maps far more than it touches."""
        return 2 * self.memory_mb + 4096


# --- what the child collects -------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """Evaluate tensor `name` with placeholders fed from the grader's inputs."""

    name: str
    feeds: dict[str, str]  # placeholder variable -> input array name


@dataclass(frozen=True)
class FunctionCall:
    """Call `function(*args)` after running `setup` in the student's namespace."""

    id: str
    function: str
    args: tuple[Any, ...]
    setup: str = ""


@dataclass(frozen=True)
class CallCount:
    """Count the calls of `function(n)` for each n (stopped past `cap_per_n * n + 10`)."""

    function: str
    n: tuple[int, ...]
    setup: str = ""
    cap_per_n: float = 10.0


@dataclass(frozen=True)
class Collect:
    """What the child hands back from the student's namespace (spec table `[collect]`)."""

    placeholders: tuple[str, ...] = ()
    params: tuple[str, ...] = ()  # variables, or dicts of variables (`weights`, `biases`)
    records: tuple[str, ...] = ()  # loss records: lists of numbers
    arrays: tuple[str, ...] = ()  # plain arrays (training data, labels)
    fetches: tuple[Fetch, ...] = ()
    calls: tuple[FunctionCall, ...] = ()
    call_counts: tuple[CallCount, ...] = ()
    keras_model: str = ""  # a variable, or `builder()` for a function that builds the model
    graph: tuple[str, ...] = ()  # tensors (`pred`, `loss`) whose graph is handed back as data

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str) -> Collect:
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ContractError(f"{where}: unknown key [collect].{key}; known: {sorted(known)}")
        out: dict[str, Any] = {}
        for key in ("placeholders", "params", "records", "arrays", "graph"):
            out[key] = _names(data.get(key, []), f"{where}: [collect].{key}")
        if not isinstance(data.get("keras_model", ""), str):
            raise ContractError(f"{where}: [collect].keras_model must be a variable name")
        out["keras_model"] = data.get("keras_model", "")
        out["fetches"] = _entries(data, "fetches", Fetch, where, lambda e: {**e})
        out["calls"] = _entries(data, "calls", FunctionCall, where, _tuple_of("args"))
        out["call_counts"] = _entries(data, "call_counts", CallCount, where, _tuple_of("n"))
        return cls(**out)

    def to_mapping(self) -> dict[str, Any]:
        return asdict(self)


def _tuple_of(key: str):
    def convert(entry: dict[str, Any]) -> dict[str, Any]:
        value = entry.get(key)
        return {**entry, key: tuple(value) if isinstance(value, list | tuple) else value}

    return convert


def _names(value: Any, at: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ContractError(f"{at} must be an array")
    for i, entry in enumerate(value):
        if not isinstance(entry, str):
            raise ContractError(f"{at}[{i}] must be a variable name (a string)")
    return tuple(value)


def _entries(data: dict[str, Any], key: str, kind: type, where: str, convert) -> tuple:
    value = data.get(key, [])
    if not isinstance(value, list | tuple):
        raise ContractError(f"{where}: [collect].{key} must be an array")
    required = {f.name for f in fields(kind) if _required(f)}
    allowed = {f.name for f in fields(kind)}
    out = []
    for i, entry in enumerate(value):
        at = f"{where}: [collect].{key}[{i}]"
        if not isinstance(entry, dict):
            raise ContractError(f"{at} must be a table")
        if missing := required - set(entry):
            raise ContractError(f"{at}: missing {sorted(missing)}")
        if unknown := set(entry) - allowed:
            raise ContractError(f"{at}: unknown {sorted(unknown)}")
        out.append(kind(**convert(entry)))
    return tuple(out)


def _required(f) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


# --- a multi-file run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One file of a multi-file submission, run in a fresh namespace and graph; what it collects
    comes back under `prefix` (`train:w`)."""

    file: str
    prefix: str = ""
    collect: Collect | None = None  # None: the assignment's own [collect]


# --- the job -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Isolation:
    """What the child is told of its walls, and the limits it sets on itself before the
    student's code runs (the walls themselves are put up from outside, by bubblewrap)."""

    cpu_s: float = (
        120.0  # CPU time of the student's code, counted once the grader's start-up is over
    )
    address_space_mb: int = 0
    nproc: int = 512
    file_size_mb: int = 512
    result_fd: int = -1  # where the child writes its results (a pipe the parent reads)
    calls_fd: int = -1  # where the child reads the drawn calls after asking (ASK_CALLS); -1: none


@dataclass(frozen=True)
class JobSpec:
    """Everything the child is told (`job.json`); nothing secret is in it."""

    display_name: str
    files: dict[str, tuple[str, ...]]  # file name -> the student's label of each line
    seed: int
    api: str  # "numpy", "tf1" or "keras"
    tensorflow: bool  # prepare TensorFlow (the TF1 layer for "tf1", TF 2 as is for "keras")
    collect: Collect
    isolation: Isolation
    stages: tuple[Stage, ...] = ()
    run_as_main: bool = True  # False: load as a module (its `__main__` part does not run)
    call_timeout_s: float = 10.0
    datasets: dict[str, str] = field(default_factory=dict)  # data set -> file in the job folder

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        try:
            collect = Collect.from_mapping(data.pop("collect"), JOB_FILE)
            stages = tuple(
                Stage(
                    s["file"],
                    s.get("prefix", ""),
                    None if s.get("collect") is None else Collect.from_mapping(s["collect"], ""),
                )
                for s in data.pop("stages")
            )
            isolation = Isolation(**data.pop("isolation"))
            files = {k: tuple(v) for k, v in data.pop("files").items()}
            return cls(collect=collect, stages=stages, isolation=isolation, files=files, **data)
        except (KeyError, TypeError) as exc:
            raise ContractError(f"{JOB_FILE} does not fit the contract: {exc}") from exc


def _fields_of(kind: type, data: dict[str, Any], where: str, *, positive: bool) -> dict[str, Any]:
    """`data` checked against the dataclass `kind`: known keys, numbers of the right type."""
    known = {f.name: f for f in fields(kind)}
    table = f"[{kind.__name__.lower()}]"
    out = {}
    for key, value in data.items():
        if key not in known:
            raise ContractError(f"{where}: {table}: unknown key {key!r}; known: {sorted(known)}")
        want = float if known[key].type in ("float", float) else int
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContractError(f"{where}: {table}.{key} must be a number")
        if want is int and not isinstance(value, int):
            raise ContractError(f"{where}: {table}.{key} must be a whole number")
        if positive and value <= 0:
            raise ContractError(f"{where}: {table}.{key} must be positive")
        out[key] = want(value)
    return out
