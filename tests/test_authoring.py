"""Templates from references: solution blocks, BLANK directives, notebooks, and drift."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from grader.authoring.templates import blank_line, generate, make_template, to_notebook
from grader.course.discovery import Course, find_course
from grader.errors import MarkerError

MAIN = Path(__file__).resolve().parent.parent
REAL = find_course(MAIN)


def template_of(tmp_path: Path, text: str, name: str = "demo") -> str:
    ref = tmp_path / f"{name}.py"
    ref.write_text(text, encoding="utf-8")
    return make_template(name, ref).text


def marker_error(tmp_path: Path, text: str, line: int, match: str) -> None:
    ref = tmp_path / "bad.py"
    ref.write_text(text, encoding="utf-8")
    with pytest.raises(MarkerError, match=re.escape(f"{ref}:{line}: ") + match):
        make_template("bad", ref)


# --- solution blocks -------------------------------------------------------------------------------


def test_block_becomes_your_code_here_and_blank_at_marker_indentation(tmp_path):
    ref = (
        "# %%\n"
        "def fac(n):\n"
        "    ### BEGIN SOLUTION\n"
        "    if n == 1:\n"
        "        return 1\n"
        "    return n*fac(n-1)\n"
        "    ### END SOLUTION\n"
        "\n"
        "fac(5)\n"
    )
    assert template_of(tmp_path, ref) == (
        "# %%\ndef fac(n):\n    # YOUR CODE HERE\n    ___\n\nfac(5)\n"
    )


def test_top_level_block_and_blank_count(tmp_path):
    ref = tmp_path / "demo.py"
    ref.write_text(
        "# %%\n### BEGIN SOLUTION\ndef fib(n):\n    return n\n### END SOLUTION\n\n"
        "# %%\nx = f(a, b)  # BLANK: a, b\n",
        encoding="utf-8",
    )
    template = make_template("demo", ref)
    assert template.text == "# %%\n# YOUR CODE HERE\n___\n\n# %%\nx = f(___, ___)\n"
    assert template.blanks == 3
    assert template.name == "demo"


def test_solution_text_never_reaches_the_template(tmp_path):
    ref = "# %%\nclass A:\n    def f(self):\n        ### BEGIN SOLUTION\n        return 'SECRET'\n        ### END SOLUTION\n"
    text = template_of(tmp_path, ref)
    assert "SECRET" not in text
    assert "SOLUTION" not in text
    assert "        # YOUR CODE HERE\n        ___\n" in text


# --- BLANK directives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected", "count"),
    [
        ("loss = tf.reduce_mean(loss)  # BLANK: loss", "loss = tf.reduce_mean(___)", 1),
        (
            "x = tf.placeholder(tf.float32, [None, n_input])  # BLANK: tf.float32, [None, n_input]",
            "x = tf.placeholder(___, ___)",
            2,
        ),
        (
            "x = tf.placeholder(tf.float32, [None, n_input])  # BLANK: n_input",
            "x = tf.placeholder(tf.float32, [None, ___])",
            1,
        ),
        ("y = n_input + n  # BLANK: n", "y = n_input + ___", 1),
        ("z = a + a  # BLANK: a, a", "z = ___ + ___", 2),
        (
            "X1 = np.hstack([np.ones([N,1]), x1])  # BLANK: np.ones([N, 1])",
            "X1 = np.hstack([___, x1])",
            1,
        ),
        ("    w = w - lr*grad(w)  # BLANK: grad(w)", "    w = w - lr*___", 1),
        ("s = 'a' + a  # BLANK: a", "s = 'a' + ___", 1),
        ("x: int = g(x)  # BLANK: x", "x: int = g(___)", 1),
        (
            "    sess.run(optm, feed_dict = {x: train_X, y: train_y})  # BLANK: train_X, train_y",
            "    sess.run(optm, feed_dict = {x: ___, y: ___})",
            2,
        ),
        ("if memo[n-1] != 0:  # BLANK: memo[n-1] != 0", "if ___:", 1),
        ("y = f(g(a, b), c)  # BLANK: g(a, b), c", "y = f(___, ___)", 2),
        ("x = 1  # a plain comment", "x = 1  # a plain comment", 0),
    ],
    ids=[
        "argument-not-target",
        "top-level-comma-split",
        "inner-fragment",
        "token-exact-not-prefix",
        "left-to-right-repeats",
        "token-equal-spacing",
        "indented",
        "string-is-not-name",
        "annotated-assignment",
        "keyword-in-call",
        "condition",
        "nested-commas-kept",
        "no-directive",
    ],
)
def test_blank_line(line, expected, count):
    assert blank_line(line, "ref.py:7") == (expected, count)


def test_fragments_are_found_left_to_right(tmp_path):
    # `b` then `a`: after `b` there is no `a` left, so the directive is wrong.
    with pytest.raises(
        MarkerError, match=r"ref\.py:7: BLANK fragment 'a' not found in `z = a \+ b`"
    ):
        blank_line("z = a + b  # BLANK: b, a", "ref.py:7")


def test_augmented_assignment_blanks_the_right_hand_side():
    assert blank_line("total += total * 2  # BLANK: total", "ref.py:7") == ("total += ___ * 2", 1)


def test_keyword_argument_on_a_continuation_line_is_not_an_assignment():
    line = "        n_hidden, stddev = 0.1)  # BLANK: n_hidden"
    assert blank_line(line, "ref.py:7") == ("        ___, stddev = 0.1)", 1)


@pytest.mark.parametrize(
    "directive", ["", "f(a, ", "a, ]"], ids=["empty", "unclosed", "unbalanced"]
)
def test_malformed_blank_directive(directive):
    with pytest.raises(MarkerError, match=r"ref\.py:7: malformed BLANK directive"):
        blank_line(f"x = f(a)  # BLANK: {directive}", "ref.py:7")


# --- malformed markers -----------------------------------------------------------------------------


def test_end_without_begin(tmp_path):
    marker_error(
        tmp_path,
        "# %%\nx = 1\n### END SOLUTION\n",
        3,
        r"### END SOLUTION without ### BEGIN SOLUTION",
    )


def test_begin_never_closed(tmp_path):
    marker_error(tmp_path, "# %%\nx = 1\n### BEGIN SOLUTION\ny = 2\n", 3, r".*is never closed")


def test_begin_inside_a_block(tmp_path):
    marker_error(
        tmp_path,
        "# %%\n### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n",
        4,
        r"### BEGIN SOLUTION inside the block opened at line 2",
    )


def test_block_crossing_a_cell_boundary(tmp_path):
    marker_error(
        tmp_path,
        "# %%\nx = 0\n### BEGIN SOLUTION\nx = 1\n# %%\ny = 2\n### END SOLUTION\n",
        3,
        r".*not closed before the next cell",
    )


def test_block_crossing_into_a_markdown_cell(tmp_path):
    marker_error(
        tmp_path,
        "# %%\n### BEGIN SOLUTION\nx = 1\n# %% [markdown]\n# text\n### END SOLUTION\n",
        2,
        r".*not closed before the next cell",
    )


def test_fragment_not_found(tmp_path):
    marker_error(
        tmp_path,
        "# %%\nn = 2\nx = f(a)  # BLANK: n_input\n",
        3,
        r"BLANK fragment 'n_input' not found in `x = f\(a\)`",
    )


def test_blank_directive_inside_a_block(tmp_path):
    marker_error(
        tmp_path,
        "# %%\n### BEGIN SOLUTION\nx = f(a)  # BLANK: a\n### END SOLUTION\n",
        3,
        r"BLANK directive inside a solution block",
    )


@pytest.mark.parametrize(
    "marker",
    [
        "### BEGIN SOLUTIONS",
        "### END SOLUTIONS",
        "## BEGIN SOLUTION",
        "### BEGIN SOLUTION: fib",
        "### Begin Solution",
        "### BEGIN_SOLUTION",
    ],
)
def test_misspelled_marker(tmp_path, marker):
    # A misspelled marker must never be passed through: the solution would reach the students.
    marker_error(tmp_path, f"# %%\nx = 1\n{marker}\ny = 2\n", 3, r"malformed solution marker")


# --- notebooks -------------------------------------------------------------------------------------

NOTEBOOK_REF = """\
# %% [markdown]
# # Demo
# Fill in every `___`.

# %%
import numpy as np

# %%
def f(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% [markdown]
# ## Next

# %%
y = np.add(1, 2)  # BLANK: 1

# %%
print(y)
"""


def notebook_of(tmp_path: Path) -> dict:
    ref = tmp_path / "demo.py"
    ref.write_text(NOTEBOOK_REF, encoding="utf-8")
    return json.loads(to_notebook(make_template("demo", ref)))


def test_notebook_nbgrader_metadata_marks_exactly_the_cells_with_a_blank(tmp_path):
    nb = notebook_of(tmp_path)
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds == ["markdown", "code", "code", "markdown", "code", "code"]
    solution = [c["metadata"]["nbgrader"]["solution"] for c in nb["cells"]]
    assert solution == [False, False, True, False, True, False]
    for cell in nb["cells"]:
        meta = cell["metadata"]["nbgrader"]
        assert meta["locked"] is (not meta["solution"])
        assert meta["grade"] is False
        assert meta["task"] is False
        assert meta["schema_version"] == 3
        assert meta["grade_id"] == cell["id"]
    # The markdown cell mentions `___` but is not a solution cell.
    assert "___" in nb["cells"][0]["source"]


def test_notebook_has_stable_ids_and_no_outputs(tmp_path):
    nb = notebook_of(tmp_path)
    ids = [c["id"] for c in nb["cells"]]
    assert ids == [f"demo-{i:02d}" for i in range(6)]
    ref = tmp_path / "demo.py"
    assert to_notebook(make_template("demo", ref)) == to_notebook(make_template("demo", ref))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []
            assert cell["execution_count"] is None
        else:
            assert "outputs" not in cell
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] == 5
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_notebook_code_is_the_template_code(tmp_path):
    nb = notebook_of(tmp_path)
    assert nb["cells"][2]["source"] == "def f(x):\n    # YOUR CODE HERE\n    ___"
    assert nb["cells"][4]["source"] == "y = np.add(___, 2)"
    assert "2 * x" not in json.dumps(nb)


# --- generate() --------------------------------------------------------------------------------------

PICKED = ("perceptron", "recursion")


@pytest.fixture
def tmp_course(tmp_path) -> Course:
    for name in PICKED:
        (tmp_path / "assignments" / name).mkdir(parents=True)
        shutil.copy(
            REAL.assignments_dir / name / "assignment.toml", tmp_path / "assignments" / name
        )
        (tmp_path / "reference").mkdir(exist_ok=True)
        shutil.copy(REAL.reference(name), tmp_path / "reference")
    return Course(tmp_path)


def test_generate_writes_templates_then_check_is_clean(tmp_course):
    written = generate(tmp_course)
    expected = {tmp_course.templates_dir / f"{n}{ext}" for n in PICKED for ext in (".py", ".ipynb")}
    assert set(written) == expected
    assert all(p.is_file() for p in expected)
    for name in PICKED:
        assert (tmp_course.templates_dir / f"{name}.py").read_text(
            encoding="utf-8"
        ) == make_template(name, tmp_course.reference(name)).text
    assert generate(tmp_course, check=True) == []
    assert generate(tmp_course) == []  # nothing left to write


def test_generate_check_reports_an_edited_reference(tmp_course):
    generate(tmp_course)
    ref = tmp_course.reference("recursion")
    ref.write_text(ref.read_text(encoding="utf-8") + "\n# %%\nprint(fac(6))\n", encoding="utf-8")
    before = {p: p.read_text(encoding="utf-8") for p in tmp_course.templates_dir.iterdir()}
    assert generate(tmp_course, check=True) == [
        tmp_course.templates_dir / "recursion.py",
        tmp_course.templates_dir / "recursion.ipynb",
    ]
    # check mode writes nothing
    assert {p: p.read_text(encoding="utf-8") for p in tmp_course.templates_dir.iterdir()} == before
    generate(tmp_course)
    assert generate(tmp_course, check=True) == []


def test_generate_check_reports_stale_and_missing_templates(tmp_course):
    generate(tmp_course)
    stale = tmp_course.templates_dir / "old_assignment.py"
    stale.write_text("x = ___\n", encoding="utf-8")
    (tmp_course.templates_dir / "perceptron.ipynb").unlink()
    assert generate(tmp_course, check=True) == [
        tmp_course.templates_dir / "perceptron.ipynb",
        stale,
    ]
    assert stale.is_file()
    generate(tmp_course)
    assert not stale.exists()
    assert generate(tmp_course, check=True) == []


def test_generate_names_a_missing_reference(tmp_course):
    tmp_course.reference("recursion").unlink()
    with pytest.raises(
        MarkerError, match=r"no reference at .*recursion\.py for assignment 'recursion'"
    ):
        generate(tmp_course, check=True)


# --- drift guard: the committed templates are what the references make --------------------------------


@pytest.mark.parametrize("name", REAL.names())
def test_committed_template_matches_reference(name):
    ref = REAL.reference(name)
    # A multi-file assignment has a folder of references and a folder of templates.
    pairs = (
        [(part, REAL.templates_dir / name / part.name) for part in sorted(ref.glob("*.py"))]
        if ref.is_dir()
        else [(ref, REAL.templates_dir / f"{name}.py")]
    )
    assert pairs
    for part, committed in pairs:
        template = make_template(name, part)
        assert committed.is_file(), f"{committed} is missing; run template generation"
        assert committed.read_text(encoding="utf-8") == template.text, (
            f"{committed} is out of date with {part}; regenerate the templates"
        )
        assert template.blanks > 0


def test_committed_templates_have_no_drift():
    assert generate(REAL, check=True) == []
