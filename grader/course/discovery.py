"""Finding the course: the folder holding `assignments/`, `reference/` and `templates/`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grader.course.spec import Assignment, load_assignment
from grader.errors import GraderError

ENV_VAR = "GRADER_COURSE"
PACKAGE = Path(__file__).resolve().parent.parent  # the `grader` package folder


@dataclass(frozen=True)
class Course:
    root: Path

    @property
    def assignments_dir(self) -> Path:
        return self.root / "assignments"

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def examples_dir(self) -> Path:
        return self.root / "examples" / "class"

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.assignments_dir.glob("*/assignment.toml"))

    def assignment(self, name: str) -> Assignment:
        path = self.assignments_dir / name / "assignment.toml"
        if not path.is_file():
            known = ", ".join(self.names()) or "none"
            raise GraderError(
                f"no spec at {path}; run 'grader list' to see assignments (known: {known})"
            )
        return load_assignment(path)

    def all(self) -> list[Assignment]:
        return [self.assignment(n) for n in self.names()]

    def reference(self, name: str) -> Path:
        """`reference/<name>.py`, or the folder `reference/<name>/` of a multi-file assignment."""
        folder = self.reference_dir / name
        return folder if folder.is_dir() else self.reference_dir / f"{name}.py"


def find_course(explicit: str | Path | None = None) -> Course:
    """`--course`, else $GRADER_COURSE, else the nearest folder above the working directory with
    an `assignments/` folder, else the source checkout the package was installed from."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    else:
        cwd = Path.cwd().resolve()
        candidates.extend([cwd, *cwd.parents])
        candidates.append(PACKAGE.parent)
    for c in candidates:
        if (c / "assignments").is_dir():
            return Course(c.resolve())
    where = candidates[0] if explicit or os.environ.get(ENV_VAR) else Path.cwd()
    raise GraderError(
        f"no course found at {where}: expected an assignments/ folder. Run grader from the "
        f"course folder, or pass --course DIR (or set {ENV_VAR})"
    )
