"""Results are data: frozen dataclasses, and their Gradescope `results.json` view.

Statuses: `passed`, `failed` (the student's work is wrong, or their code crashed),
`skipped` (could not be checked here, e.g. data absent; never counted as passed) and
`error` (the grader itself broke: not the student's fault).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped", "error"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of one submission."""

    name: str
    check: str
    status: Status
    points: float
    max_points: float
    message: str = ""
    expected: str | None = None
    got: str | None = None
    visibility: str = "visible"


@dataclass(frozen=True)
class SubmissionResult:
    """Everything the grader found about one submission; reports are views of this."""

    assignment: str
    student: str
    file: str
    run_status: str
    checks: tuple[CheckResult, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    log: str = ""
    timing: dict[str, float] = field(default_factory=dict)
    isolation: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)  # which data set graded it: name, sizes, checksum
    # Plain numbers for the feedback page's plots (see _figures); not part of results.json.
    figures: dict = field(default_factory=dict, repr=False)
    # Taken from the result store (`grader.run.store`), not graded in this run. Not data of
    # the submission: never stored, never compared.
    reused: bool = field(default=False, compare=False)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 6)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 6)

    def to_gradescope(self) -> dict[str, Any]:
        """The Gradescope autograder `results.json` schema (extra detail under `extra_data`)."""
        lines = [f"{self.assignment}: {self.score:g} / {self.max_score:g}"]
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"note: {n}" for n in self.notes]
        if self.data:
            d = self.data
            lines.append(
                f"data: {d['name']} ({d['served_train']} training and {d['served_validation']} "
                f"validation images served; {d['heldout']} held out for grading; sha256 {d['sha256']})"
            )
        tests = []
        for c in self.checks:
            output = c.message
            if c.status in ("skipped", "error"):
                output = f"{c.status.upper()}: {c.message}"
            tests.append(
                {
                    "name": c.name,
                    "score": c.points,
                    "max_score": c.max_points,
                    # Gradescope knows only passed/failed; a skipped check is never "passed".
                    "status": "passed" if c.status == "passed" else "failed",
                    "output": output,
                    "visibility": c.visibility,
                    "extra_data": {
                        "check": c.check,
                        "outcome": c.status,
                        "expected": c.expected,
                        "got": c.got,
                    },
                }
            )
        return {
            "score": self.score,
            "execution_time": round(self.timing.get("total_s", 0.0), 3),
            "output": "\n".join(lines),
            "stdout_visibility": "hidden",
            "tests": tests,
            "extra_data": {
                "student": self.student,
                "file": self.file,
                "run_status": self.run_status,
                "timing": self.timing,
                "isolation": list(self.isolation),
                "data": self.data,
                "log": self.log,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything of the result as plain JSON data (`from_dict` gives it back whole,
        figures included); `reused` is left out: it says where a result came from, not what
        it is."""
        data = dataclasses.asdict(self)
        del data["reused"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        """The result `to_dict` wrote. Raises KeyError or TypeError for data of another shape."""
        names = {f.name for f in dataclasses.fields(cls)} - {"reused"}
        values = {k: v for k, v in data.items() if k in names}
        values["checks"] = tuple(CheckResult(**c) for c in data["checks"])
        for name in ("problems", "notes", "isolation"):
            values[name] = tuple(data.get(name, ()))
        return cls(**values)


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results_json(result: SubmissionResult, path: Path) -> None:
    write_atomic(path, json.dumps(result.to_gradescope(), indent=2, sort_keys=False) + "\n")
