"""`import grader; grader.check(...)` inside a student's notebook, executed by nbclient."""

from __future__ import annotations

import json
import os
import shutil
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import CORPUS, ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def kernel_from_this_environment(monkeypatch):
    """The notebook's kernel runs `python` from PATH: this environment's, as for a student who
    activated it."""
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")


def run_notebook(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def outputs_of(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def test_check_in_a_notebook_shows_the_feedback(tmp_path):
    """The template with its blanks filled from the reference, plus a last cell that checks it."""
    nb = nbformat.read(ROOT / "templates" / "recursion.ipynb", as_version=4)
    reference = (ROOT / "reference" / "recursion.py").read_text()
    code = "\n".join(
        line.split("# BLANK:")[0].rstrip()
        for line in reference.splitlines()
        if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
        and not line.startswith("# %")
    )
    nb.cells = [
        nbformat.v4.new_code_cell(code),
        nbformat.v4.new_code_cell(
            'import grader\nr = grader.check("recursion")\nprint("SCORE", r.score, r.max_score)'
        ),
    ]
    path = tmp_path / "recursion.ipynb"
    nbformat.write(nb, path)
    done = run_notebook(path)
    shown = outputs_of(done.cells[-1])
    assert "SCORE 10.0 10.0" in shown
    assert "text/html" in json.dumps(done.cells[-1]["outputs"])  # HTML feedback, inline
    assert "recursion &mdash;" in shown and "memoization" in shown


def test_check_in_a_notebook_of_another_file_reports_its_syntax_error(tmp_path):
    path = tmp_path / "recursion.ipynb"
    shutil.copy(ROOT / "templates" / "recursion.ipynb", path)
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "markdown"] + [
        nbformat.v4.new_code_cell(
            'import grader\nr = grader.check("recursion", notebook="'
            + str(CORPUS / "broken" / "recursion_syntax_error.py")
            + '")\nprint(r.run_status)'
        )
    ]
    nbformat.write(nb, path)
    shown = outputs_of(run_notebook(path).cells[-1])
    assert "syntax" in shown and "syntax error (expected &#39;:&#39;)" in shown
