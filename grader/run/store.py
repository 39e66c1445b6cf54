"""The result store: every graded submission's whole result, kept under `OUT/.grader/results/`,
one entry per student and assignment, valid while its key matches.

The key of a result is a content hash of everything the result depends on (`result_key`):
the submission's bytes (and its files' names), the spec, the reference solution, the data set
it was graded on, the grader itself and how it ran. A re-grade asks the store first and runs
only what changed; a result is stored the moment it is made, so a killed batch resumes where
it stopped. The store is also the record the gradebook and the pages are rebuilt from, so
nothing graded earlier into the same output folder is lost.

Entries are written atomically (`write_atomic`): a `kill -9` leaves each one whole or absent.
Trusted side: it reads results, never anything a child wrote.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from grader.course.data import splits_for
from grader.course.spec import Assignment
from grader.results import SubmissionResult, write_atomic

FORMAT = "result-store-1"  # what an entry holds; an entry of another format is not read
ENV_CACHE = "GRADER_CACHE"
PACKAGE = Path(__file__).resolve().parent.parent  # the grader package's own source folder
NOT_KEPT = ("missing", "refused")  # results that never replace a graded one (no file now)
NOT_REUSED = ("grader_error", "sandbox_error")  # the grader's own failures: tried again


def user_cache() -> Path:
    """The per-user cache folder: `$GRADER_CACHE`, else `$XDG_CACHE_HOME/grader`, else
    `~/.cache/grader`."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grader"


@functools.lru_cache(maxsize=1)
def grader_fingerprint() -> str:
    """The grader's version and a hash of its own source files. The version alone is not
    enough: a development checkout keeps version 0.1.0 while its code changes, and a result
    graded by other code must not be taken for this code's."""
    try:
        v = version("grader")
    except PackageNotFoundError:  # run from a source tree that was never installed
        v = "unknown"
    h = hashlib.sha256(v.encode())
    files = [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(files):
        h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return f"{v}+{h.hexdigest()[:16]}"


def _tree_digest(path: Path) -> str:
    """sha256 over a file (its name and bytes) or every file of a folder (relative names and
    bytes, in order; a link counts as its target's text, never followed)."""
    h = hashlib.sha256()
    if not path.is_dir():
        h.update(f"file {path.name}\0".encode())
        h.update(path.read_bytes())
        return h.hexdigest()
    entries = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in files + [d for d in dirs if Path(folder, d).is_symlink()]:
            entries.append(Path(folder, name))
    for entry in sorted(entries):
        rel = entry.relative_to(path).as_posix()
        if entry.is_symlink():
            h.update(f"link {rel}\0{os.readlink(entry)}\0".encode())
        else:
            h.update(f"file {rel}\0{entry.stat().st_size}\0".encode())
            h.update(entry.read_bytes())
    return h.hexdigest()


def data_digest(assignment: Assignment) -> str:
    """What the data set of an assignment is on this machine (its description, with the
    sha256 of its arrays), or "none" (no data set, or not on this machine)."""
    task = assignment.task
    if task is None or task.data is None:
        return "none"
    splits = splits_for(task.data)
    if splits is None:
        return f"{task.data}: absent"
    return json.dumps(splits.describe(), sort_keys=True)


def result_key(
    assignment: Assignment,
    path: Path,
    *,
    visible_only: bool = False,
    salt: Mapping[str, str] | None = None,
) -> str:
    """The content hash a result of `path` graded for `assignment` is stored under.

    Args:
        assignment: the spec; its file, its reference solution and its data set count.
        path: the submission (a file, or the folder of a multi-file assignment).
        visible_only: a self-check (public checks only). Defaults to `False`.
        salt: anything else the result depends on, e.g. `{"sandbox": "none"}`: a result
            graded without the walls is never taken for one graded behind them.

    Raises OSError when a file cannot be read.
    """
    parts = {
        "submission": _tree_digest(path),
        "spec": hashlib.sha256(assignment.path.read_bytes()).hexdigest(),
        "reference": _tree_digest(assignment.reference)
        if assignment.reference.exists()
        else "none",
        "data": data_digest(assignment),
        "grader": grader_fingerprint(),
        "visible_only": str(bool(visible_only)),
        "salt": json.dumps(dict(salt or {}), sort_keys=True),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One stored result and the key it is valid for ("" for one never reused)."""

    key: str
    result: SubmissionResult


class ResultStore:
    """The stored results of one output folder (`ResultStore.under(OUT)`).

    Args:
        root: the folder of the entries.
        salt: what every key of this store also depends on (see `result_key`).
    """

    def __init__(self, root: Path, *, salt: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        self.salt = dict(salt or {})

    @classmethod
    def under(cls, out: Path, *, salt: Mapping[str, str] | None = None) -> ResultStore:
        """The store of the output folder `out`: `out/.grader/results/`."""
        return cls(Path(out) / ".grader" / "results", salt=salt)

    def key(self, assignment: Assignment, path: Path, *, visible_only: bool = False) -> str:
        return result_key(assignment, path, visible_only=visible_only, salt=self.salt)

    def _path(self, student: str, assignment: str) -> Path:
        # A hash, not the names: a student's name need not be a safe file name.
        digest = hashlib.sha256(f"{student}\0{assignment}".encode()).hexdigest()[:32]
        return self.root / f"{digest}.json"

    def entry(self, student: str, assignment: str) -> Entry | None:
        """The stored entry of a student's assignment, or None."""
        return _read(self._path(student, assignment))

    def get(self, student: str, assignment: str, key: str) -> SubmissionResult | None:
        """The stored result when it was made from exactly this content (`key`), or None."""
        found = self.entry(student, assignment)
        if found is None or not key or found.key != key:
            return None
        return found.result

    def put(self, result: SubmissionResult, key: str) -> None:
        """Store a result, atomically, replacing the student's earlier one. A result the
        grader itself failed to make is stored (the gradebook lists it) but never reused; a
        "missing" or "refused" one (no file) never replaces a graded result."""
        path = self._path(result.student, result.assignment)
        if result.run_status in NOT_KEPT:
            old = _read(path)
            if old is not None and old.result.run_status not in NOT_KEPT:
                return
            key = ""
        if result.run_status in NOT_REUSED:
            key = ""
        data = {"format": FORMAT, "key": key, "result": result.to_dict()}
        write_atomic(path, json.dumps(data, allow_nan=True) + "\n")

    def latest(self) -> list[SubmissionResult]:
        """Every stored result (one per student and assignment), by student then assignment."""
        if not self.root.is_dir():
            return []
        # Names starting with "." are write_atomic's temporary files (a run killed mid-write).
        found = [_read(p) for p in sorted(self.root.glob("[!.]*.json"))]
        results = [e.result for e in found if e is not None]
        return sorted(results, key=lambda r: (r.student, r.assignment))

    def prune(self, assignments: Iterable[str], keep: set[tuple[str, str]]) -> int:
        """Forget the stored results of these assignments whose (student, assignment) is not
        in `keep`; returns how many were forgotten."""
        names = set(assignments)
        gone = 0
        for r in self.latest():
            if r.assignment in names and (r.student, r.assignment) not in keep:
                self._path(r.student, r.assignment).unlink(missing_ok=True)
                gone += 1
        return gone


def _read(path: Path) -> Entry | None:
    """The entry in `path`; None when there is none, or it is of another format (an entry
    written by another version of the store: graded again when its file is still there)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            return None
        return Entry(str(data["key"]), SubmissionResult.from_dict(data["result"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None


__all__ = ["Entry", "ResultStore", "grader_fingerprint", "result_key", "user_cache"]
