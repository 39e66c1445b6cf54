"""Assignment specs: `assignments/<name>/assignment.toml`, validated at load.

A spec says what the sandbox collects (`[collect]`), what the trusted side knows of the
problem (`[task]`), the limits of a run (`[limits]`), and which checks run with which
parameters and points (`[[checks]]`). Unknown keys, checks or parameters are rejected with the
file and the key that is wrong.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import registry
from grader.course import draws
from grader.course.tasks import Task
from grader.errors import SpecError
from grader.wire import Collect, ContractError, Limits, Stage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


@dataclass(frozen=True)
class CheckSpec:
    name: str
    check: str
    points: float
    params: dict[str, Any]
    visibility: str = "visible"


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
    collect: Collect
    task: Task | None
    checks: tuple[CheckSpec, ...]
    description: str = ""
    files: tuple[str, ...] = ()  # a multi-file submission: the files of its folder
    stages: tuple[Stage, ...] = ()  # the files that run, in order, and their prefixes
    drawn_calls: tuple[draws.CallDraw, ...] = ()  # calls on arguments drawn afresh every run

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def reference(self) -> Path:
        """Where the course keeps the reference solution (`reference/<name>.py`, or a folder);
        absent from a Gradescope bundle and from a student's copy of the course."""
        folder = self.path.parent.parent.parent / "reference"
        return folder / self.name if (folder / self.name).is_dir() else folder / f"{self.name}.py"


def load_assignment(path: Path) -> Assignment:
    """Load and validate one spec file."""

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
        "untrained_max",
        "drawn_calls",
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

    try:
        limits = Limits.from_mapping(data.get("limits", {}), where)
        collect = Collect.from_mapping(data.get("collect", {}), where)
        files, stages = _files_and_stages(data.get("run", {}), where)
    except ContractError as exc:
        raise SpecError(str(exc)) from exc

    run = data.get("run", {})
    for key in run:
        if key not in ("seed", "grading_seed", "files", "stages"):
            raise SpecError(
                f"{where}: unknown key [run].{key}; known: ['files', 'grading_seed', 'seed', 'stages']"
            )
    task = Task.from_spec(data["task"], where) if "task" in data else None

    checks = _load_checks(data.get("checks", []), where, task)
    if not checks:
        raise SpecError(f"{where}: no [[checks]]")
    drawn = _rules(data, checks, task, where)

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
        drawn_calls=drawn,
    )


def _rules(data: dict[str, Any], checks: list[CheckSpec], task: Task | None, where: str):
    """The spec's rules across its checks: the points a never-trained network can reach, and
    the drawn calls its `drawn_values` checks name. Returns the drawn calls."""
    untrained_max = data.get("untrained_max", UNTRAINED_MAX)
    if isinstance(untrained_max, bool) or not isinstance(untrained_max, (int, float)):
        raise SpecError(f"{where}: untrained_max must be a number in [0, 1]")
    if task is not None:
        _structure_at_most(checks, float(untrained_max), where)
    drawn = draws.parse(data.get("drawn_calls", []), where)
    ids = {d.id for d in drawn}
    for c in checks:
        if c.check == "drawn_values" and (unknown := set(c.params.get("calls", ())) - ids):
            raise SpecError(
                f"{where}: check {c.name!r}: no [[drawn_calls]] with id {sorted(unknown)}; "
                f"known: {sorted(ids)}"
            )
    return drawn


UNTRAINED_MAX = 0.4  # the default share of points a never-trained network can reach


def _structure_at_most(checks: list[CheckSpec], share: float, where: str) -> None:
    """The rule every spec with a `[task]` states: the checks that a network passes whether or
    not it was trained (shapes, wiring, the loss function: `structural` checks) carry at most
    `share` of the points, so that a network that was never trained, or diverged, cannot
    reach more."""
    total = sum(c.points for c in checks)
    structural = [c for c in checks if getattr(registry.get(c.check), "structural", False)]
    points = sum(c.points for c in structural)
    if total and points > share * total + 1e-9:
        names = ", ".join(f"{c.name} ({c.points:g})" for c in structural)
        raise SpecError(
            f"{where}: the structural checks ({names}) carry {points:g} of {total:g} points; "
            f"a network that was never trained must score at most {share:.0%} "
            f"(untrained_max = {share:g}): give the checks of what training achieved more"
        )


def _load_checks(entries: list[dict[str, Any]], where: str, task: Task | None) -> list[CheckSpec]:
    """The spec's [[checks]], each validated against the registered check's signature."""
    checks = []
    names = set()
    for i, raw in enumerate(entries):
        at = f"{where}: [[checks]] #{i + 1}"
        for key in raw:
            if key not in ("name", "check", "points", "params", "visibility"):
                raise SpecError(f"{at}: unknown key {key!r}")
        check_name = raw.get("check")
        fn = registry.get(check_name) if isinstance(check_name, str) else None
        if fn is None or not isinstance(check_name, str):
            raise SpecError(f"{at}: unknown check {check_name!r}; known: {registry.names()}")
        params = raw.get("params", {})
        if not isinstance(params, dict):
            raise SpecError(f"{at}: 'params' must be a table, not {type(params).__name__}")
        for problem in registry.validate_params(fn, params):
            raise SpecError(f"{at} ({check_name}): {problem}")
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
        if getattr(fn, "needs_task", False) and task is None:
            raise SpecError(f"{at}: check {check_name!r} needs a [task] table")
    return checks


def _files_and_stages(run: dict[str, Any], where: str) -> tuple[tuple[str, ...], tuple[Stage, ...]]:
    """A multi-file submission: its files, and the ones that run, in order."""
    files = tuple(run.get("files", ()))
    stages = []
    for i, stage in enumerate(run.get("stages", ())):
        if (
            not isinstance(stage, dict)
            or stage.get("file") not in files
            or set(stage) - {"file", "prefix", "collect"}
        ):
            raise ContractError(
                f"{where}: [run].stages[{i}] needs a `file` among [run].files "
                f"(and optionally `prefix`, `collect`)"
            )
        own = stage.get("collect")
        collect = None if own is None else Collect.from_mapping(own, f"{where}: [run].stages[{i}]")
        stages.append(Stage(stage["file"], str(stage.get("prefix", "")), collect))
    return files, tuple(stages)


def _default_name(check: str, params: dict[str, Any]) -> str:
    """`accuracy(minimum=0.9)`: a check's name with its scalar parameters."""
    scalars = [f"{k}={v}" for k, v in params.items() if isinstance(v, (int, float, str))]
    return f"{check}({', '.join(scalars)})" if scalars else check
