"""nbgrader interop: the exported course goes through the real `nbgrader generate_assignment`,
scores land in nbgrader's gradebook, and nbgrader's submitted layout is found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.authoring.templates import BLANK_RE
from grader.results import CheckResult, SubmissionResult

pytest.importorskip("nbgrader")

ROOT = Path(__file__).resolve().parent.parent


def _nbgrader(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs the `alembic` command to stamp a new gradebook: the venv's bin/ on PATH.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def released(course, tmp_path_factory):
    from grader.authoring.nbgrader_export import export_course

    root = tmp_path_factory.mktemp("nbgrader-course")
    written = export_course(course, root, ["recursion", "perceptron"])
    assert written == [
        root / "source" / "recursion" / "recursion.ipynb",
        root / "source" / "perceptron" / "perceptron.ipynb",
    ]
    assert (root / "nbgrader_config.py").is_file()
    for name in ("recursion", "perceptron"):
        proc = _nbgrader(root, "generate_assignment", name, "--force")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (root / "release" / name / f"{name}.ipynb").is_file()
    return root


def _solution_cells(cells) -> list[int]:
    return [i for i, c in enumerate(cells) if c["metadata"].get("nbgrader", {}).get("solution")]


@pytest.mark.parametrize("name", ["recursion", "perceptron"])
def test_released_notebook_matches_template(released, name):
    nb = json.loads((released / "release" / name / f"{name}.ipynb").read_text(encoding="utf-8"))
    template = json.loads((ROOT / "templates" / f"{name}.ipynb").read_text(encoding="utf-8"))
    cells, tcells = nb["cells"], template["cells"]
    assert len(cells) == len(tcells)
    assert [c["cell_type"] for c in cells] == [c["cell_type"] for c in tcells]
    assert _solution_cells(cells) == _solution_cells(tcells)
    assert _solution_cells(cells)
    for c, t in zip(cells, tcells, strict=True):
        if c["cell_type"] == "markdown":
            assert "".join(c["source"]) == "".join(t["source"])
    text = "\n".join("".join(c["source"]) for c in cells)
    assert "### BEGIN SOLUTION" not in text and "BLANK:" not in text
    # The solution text of every BLANK line is gone (it may recur where the template has it).
    ttext = "\n".join("".join(c["source"]) for c in tcells)
    for line in (ROOT / "reference" / f"{name}.py").read_text(encoding="utf-8").splitlines():
        match = BLANK_RE.search(line)
        if match:
            code = line[: match.start()].strip()
            assert text.count(code) == ttext.count(code), code


def test_released_recursion_hides_the_solutions(released):
    nb = json.loads((released / "release/recursion/recursion.ipynb").read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    for solution in ("fib(n-1) + fib(n-2)", "memo[n-1] != 0", "n*fac(n-1)", "mfib(n-1) + mfib"):
        assert solution not in text
    assert "raise NotImplementedError()" in text
    # Every code cell still parses: a BLANK that opens a block is released as a whole statement.
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            source = "".join(c["source"]).splitlines()  # jupytext's magics: `%timeit`
            compile("\n".join(x for x in source if not x.startswith("%")), "<cell>", "exec")


def test_source_notebook_metadata(course):
    from grader.authoring.nbgrader_export import release_notebook

    nb = release_notebook(course, "recursion")
    assert [c["id"] for c in nb.cells] == [f"recursion-{i:02d}" for i in range(len(nb.cells))]
    for c in nb.cells:
        meta = c.metadata["nbgrader"]
        assert meta["schema_version"] == 3 and meta["grade"] is False
        assert meta["locked"] is (not meta["solution"])
        assert meta["solution"] is ("### BEGIN SOLUTION" in c.source)
    # The source notebook keeps the solutions (the instructor's copy).
    assert "memo[n-1] = mfib(n-1) + mfib(n-2)" in "\n".join(c.source for c in nb.cells)
    assert release_notebook(course, "recursion") == nb  # stable


def _result(student: str, assignment: str, points: list[tuple[float, float]]) -> SubmissionResult:
    checks = tuple(
        CheckResult(
            name=f"check {i}",
            check="value",
            status="passed" if p == m else "failed",
            points=p,
            max_points=m,
        )
        for i, (p, m) in enumerate(points)
    )
    return SubmissionResult(assignment, student, f"{assignment}.ipynb", "ok", checks)


def test_write_scores(tmp_path):
    from nbgrader.api import Gradebook

    from grader.integrations.nbgrader import write_scores

    db = f"sqlite:///{tmp_path}/gradebook.db"
    results = [
        _result("alice", "recursion", [(2, 2), (1, 3), (0.5, 1)]),
        _result("bob", "recursion", [(0, 2), (3, 3), (0, 1)]),
    ]
    write_scores(db, results)
    write_scores(db, results)  # again: updated, not doubled
    with Gradebook(db) as gb:
        for r in results:
            sub = gb.find_submission("recursion", r.student)
            assert sub.score == pytest.approx(r.score)
            assert sub.max_score == pytest.approx(r.max_score)
    better = _result("bob", "recursion", [(2, 2), (3, 3), (1, 1)])
    write_scores(db, [better])
    with Gradebook(db) as gb:
        assert gb.find_submission("recursion", "bob").score == pytest.approx(6)
        assert gb.find_submission("recursion", "alice").score == pytest.approx(3.5)


def test_write_scores_into_the_course_gradebook(released):
    """The gradebook `nbgrader generate_assignment` made: its notebook gains the grade cells."""
    from nbgrader.api import Gradebook

    from grader.integrations.nbgrader import write_scores

    db = f"sqlite:///{released}/gradebook.db"
    result = _result("carol", "recursion", [(1, 1), (0, 2)])
    write_scores(db, [result])
    with Gradebook(db) as gb:
        assert gb.find_submission("recursion", "carol").score == pytest.approx(1)
        assert [n.name for n in gb.find_assignment("recursion").notebooks] == ["recursion"]
    proc = _nbgrader(released, "db", "student", "list")
    assert proc.returncode == 0 and "carol" in proc.stdout + proc.stderr


def test_submitted_layout_is_found(course, tmp_path):
    from grader.pipeline import find_submissions

    nb = tmp_path / "submitted" / "dave" / "recursion" / "recursion.ipynb"
    nb.parent.mkdir(parents=True)
    nb.write_text((ROOT / "templates" / "recursion.ipynb").read_text(encoding="utf-8"))
    subs = find_submissions(tmp_path / "submitted", [course.assignment("recursion")])
    assert [(s.student, s.assignment.name, s.path) for s in subs] == [("dave", "recursion", nb)]
