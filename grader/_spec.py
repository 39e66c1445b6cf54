"""Assignment specs: `assignments/<name>/assignment.toml`, validated at load.

A spec says what the sandbox collects (`[collect]`), what the trusted side knows of the
problem (`[task]`), the limits of a run (`[limits]`), and which checks run with which
parameters and points (`[[checks]]`). Unknown keys, checks or parameters are rejected with the
file and the key that is wrong.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import SpecError
from ._tasks import Task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
COLLECT_KEYS = {
    "placeholders",
    "params",
    "records",
    "arrays",
    "fetches",
    "calls",
    "call_counts",
    "keras_model",
}


@dataclass(frozen=True)
class CheckSpec:
    name: str
    check: str
    points: float
    params: dict[str, Any]
    visibility: str = "visible"


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 120.0
    memory_mb: int = 3072
    call_timeout_s: float = 10.0


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    source: str
    path: Path
    api: str  # "numpy" (no TensorFlow), "tf1" (TF1 graph code on TF 2.x), "keras" (TF 2 as is)
    seed: int
    grading_seed: int
    limits: Limits
    collect: dict[str, Any]
    task: Task | None
    checks: tuple[CheckSpec, ...]
    description: str = ""
    files: tuple[str, ...] = ()  # a multi-file submission: the files of its folder
    stages: tuple[dict[str, Any], ...] = ()  # the files that run, in order, and their prefixes

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)


def load_assignment(path: Path) -> Assignment:
    """Load and validate one spec file."""
    from ._checks import REGISTRY  # the registry is filled when the checks module is imported

    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"no spec at {path}; run 'grader list' to see assignments") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML: {exc}") from exc

    known = {
        "title",
        "source",
        "api",
        "description",
        "limits",
        "run",
        "collect",
        "task",
        "checks",
    }
    for key in ("limits", "run", "collect", "task"):
        if key in data and not isinstance(data[key], dict):
            raise SpecError(f"{where}: [{key}] must be a table, not {type(data[key]).__name__}")
    if not isinstance(data.get("checks", []), list) or not all(
        isinstance(c, dict) for c in data.get("checks", [])
    ):
        raise SpecError(f"{where}: 'checks' must be an array of tables ([[checks]])")
    for key in data:
        if key not in known:
            raise SpecError(f"{where}: unknown top-level key {key!r}; known: {sorted(known)}")
    for key in ("title", "source"):
        if not isinstance(data.get(key), str):
            raise SpecError(f"{where}: {key!r} is required (a string)")
    api = data.get("api", "numpy")
    if api not in ("numpy", "tf1", "keras"):
        raise SpecError(f"{where}: api = {api!r}; allowed: 'numpy', 'tf1', 'keras'")

    limits_data = data.get("limits", {})
    try:
        limits = Limits(**limits_data)
    except TypeError as exc:
        raise SpecError(f"{where}: [limits]: {exc}") from exc

    run = data.get("run", {})
    for key in run:
        if key not in ("seed", "grading_seed", "files", "stages"):
            raise SpecError(
                f"{where}: unknown key [run].{key}; known: ['files', 'grading_seed', 'seed', 'stages']"
            )
    files = tuple(run.get("files", ()))
    stages = tuple(dict(s) for s in run.get("stages", ()))
    for i, stage in enumerate(stages):
        if stage.get("file") not in files or set(stage) - {"file", "prefix", "collect"}:
            raise SpecError(
                f"{where}: [run].stages[{i}] needs a `file` among [run].files "
                f"(and optionally `prefix`, `collect`)"
            )

    collect = data.get("collect", {})
    for key in collect:
        if key not in COLLECT_KEYS:
            raise SpecError(f"{where}: unknown key [collect].{key}; known: {sorted(COLLECT_KEYS)}")
    _validate_collect(collect, where)

    task = Task.from_spec(data["task"], where) if "task" in data else None

    checks = []
    names = set()
    for i, raw in enumerate(data.get("checks", [])):
        at = f"{where}: [[checks]] #{i + 1}"
        for key in raw:
            if key not in ("name", "check", "points", "params", "visibility"):
                raise SpecError(f"{at}: unknown key {key!r}")
        check_name = raw.get("check")
        if check_name not in REGISTRY:
            raise SpecError(f"{at}: unknown check {check_name!r}; known: {sorted(REGISTRY)}")
        params = raw.get("params", {})
        if not isinstance(params, dict):
            raise SpecError(f"{at}: 'params' must be a table, not {type(params).__name__}")
        _validate_params(REGISTRY[check_name], params, f"{at} ({check_name})")
        visibility = raw.get("visibility", "visible")
        if visibility not in VISIBILITIES:
            raise SpecError(f"{at}: visibility {visibility!r}; allowed: {VISIBILITIES}")
        name = raw.get("name") or _default_name(check_name, params)
        if name in names:
            raise SpecError(f"{at}: duplicate check name {name!r}")
        names.add(name)
        points = raw.get("points")
        if not isinstance(points, (int, float)) or points < 0:
            raise SpecError(f"{at}: 'points' must be a non-negative number")
        checks.append(CheckSpec(name, check_name, float(points), params, visibility))
        if REGISTRY[check_name].needs_task and task is None:
            raise SpecError(f"{at}: check {check_name!r} needs a [task] table")
    if not checks:
        raise SpecError(f"{where}: no [[checks]]")

    return Assignment(
        name=path.parent.name,
        title=data["title"],
        source=data["source"],
        path=path,
        api=api,
        seed=int(run.get("seed", 0)),
        grading_seed=int(run.get("grading_seed", 12345)),
        limits=limits,
        collect=collect,
        task=task,
        checks=tuple(checks),
        description=data.get("description", ""),
        files=files,
        stages=stages,
    )


# What each entry of a [collect] list must hold: required keys, and the optional ones.
_COLLECT_ENTRIES = {
    "fetches": ({"name", "feeds"}, set()),
    "calls": ({"id", "function", "args"}, {"setup"}),
    "call_counts": ({"function", "n"}, {"setup", "cap_per_n"}),
}


def _validate_collect(collect: dict[str, Any], where: str) -> None:
    for key, value in collect.items():
        if key == "keras_model":
            if not isinstance(value, str):
                raise SpecError(f"{where}: [collect].keras_model must be a variable name")
            continue
        if not isinstance(value, list):
            raise SpecError(f"{where}: [collect].{key} must be an array")
        required, optional = _COLLECT_ENTRIES.get(key, (None, None))
        for i, entry in enumerate(value):
            at = f"{where}: [collect].{key}[{i}]"
            if required is None:
                if not isinstance(entry, str):
                    raise SpecError(f"{at} must be a variable name (a string)")
                continue
            if not isinstance(entry, dict):
                raise SpecError(f"{at} must be a table")
            if missing := required - set(entry):
                raise SpecError(f"{at}: missing {sorted(missing)}")
            if unknown := set(entry) - required - optional:
                raise SpecError(f"{at}: unknown {sorted(unknown)}")


def _validate_params(fn, params: dict[str, Any], at: str) -> None:
    sig = inspect.signature(fn)
    accepted = {
        name: p for name, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    for key in params:
        if key not in accepted:
            raise SpecError(f"{at}: unknown parameter {key!r}; accepted: {sorted(accepted)}")
    for name, p in accepted.items():
        if p.default is inspect.Parameter.empty and name not in params:
            raise SpecError(f"{at}: missing parameter {name!r}")


def _default_name(check: str, params: dict[str, Any]) -> str:
    """`accuracy(minimum=0.9)`: a check's name with its scalar parameters."""
    scalars = [f"{k}={v}" for k, v in params.items() if isinstance(v, (int, float, str))]
    return f"{check}({', '.join(scalars)})" if scalars else check
