"""End to end through the real entry point (`python -m grader`), on real files in tmp dirs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CORPUS, GRADER, ROOT


def grader(*args, cwd=ROOT, timeout=600):
    return subprocess.run(
        [*GRADER, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_help_lists_every_command_with_an_example():
    out = grader("--help")
    assert out.returncode == 0
    for command in (
        "list",
        "generate",
        "check",
        "grade",
        "validate",
        "demo",
        "gradescope",
        "nbgrader-export",
    ):
        assert command in out.stdout
        sub = grader(command, "--help")
        assert sub.returncode == 0 and "Example" in sub.stdout, command


def test_list_shows_every_assignment():
    out = grader("list")
    assert out.returncode == 0, out.stderr
    names = sorted(p.parent.name for p in (ROOT / "assignments").glob("*/assignment.toml"))
    assert len(names) == 14
    for name in names:
        assert name in out.stdout
    assert "seed 004" in out.stdout


def test_unknown_assignment_is_a_usage_error_naming_the_fix(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("x = 1\n")
    out = grader("check", f, "--assignment", "nope")
    assert out.returncode == 2
    assert "no spec at" in out.stderr and "run 'grader list'" in out.stderr


def test_generate_check_passes_then_fails_after_a_reference_edit(tmp_path):
    course = tmp_path / "course"
    for part in ("assignments", "reference", "templates"):
        shutil.copytree(ROOT / part, course / part)
    ok = grader("--course", course, "generate", "--check")
    assert ok.returncode == 0, ok.stderr
    ref = course / "reference" / "perceptron.py"
    ref.write_text(ref.read_text().replace("n_iter = 10000", "n_iter = 5000", 1))
    bad = grader("--course", course, "generate", "--check")
    assert bad.returncode == 1
    assert "templates/perceptron.py" in bad.stderr and "templates/perceptron.ipynb" in bad.stderr
    assert "run 'grader generate'" in bad.stderr
    fixed = grader("--course", course, "generate")
    assert fixed.returncode == 0 and "wrote templates/perceptron.py" in fixed.stdout
    assert grader("--course", course, "generate", "--check").returncode == 0


def test_malformed_marker_names_file_and_line(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "assignments", course / "assignments")
    shutil.copytree(ROOT / "reference", course / "reference")
    ref = course / "reference" / "recursion.py"
    ref.write_text(ref.read_text().replace("### END SOLUTION", "### END SOLUTON", 1))
    out = grader("--course", course, "generate")
    assert out.returncode == 2
    assert f"{ref}:" in out.stderr and "malformed solution marker" in out.stderr


def test_check_json_is_gradescope_results(tmp_path):
    out = grader(
        "check", CORPUS / "broken" / "recursion_syntax_error.py", "-a", "recursion", "--json"
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["score"] == 0
    assert {"score", "execution_time", "output", "tests"} <= set(data)
    for test in data["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["status"] == "failed"
    assert "syntax error (expected ':')" in data["output"]


@pytest.mark.slow
def test_check_shows_only_public_checks():
    out = grader("check", ROOT / "reference" / "intro_numpy.py", "-a", "intro_numpy", "--json")
    names = [t["name"] for t in json.loads(out.stdout)["tests"]]
    assert "new numbers" not in names and "forward pass" in names


def test_check_table_for_a_template_lists_each_blank():
    out = grader("check", ROOT / "templates" / "recursion.ipynb", "-a", "recursion")
    assert out.returncode == 0
    blanks = [line for line in out.stdout.splitlines() if ": unfilled blank in" in line]
    assert len(blanks) == 4
    assert blanks[0] == "cell 4, line 3: unfilled blank in `___`"  # the body of `def fac(n):`


@pytest.mark.slow
def test_grade_a_class(tmp_path):
    """Good, broken and missing submissions; outputs written; the gradebook is complete."""
    cls = tmp_path / "class"
    (cls / "ada").mkdir(parents=True)
    (cls / "bob").mkdir()
    (cls / "cy").mkdir()
    shutil.copy(ROOT / "reference" / "recursion.py", cls / "ada" / "recursion.py")
    shutil.copy(CORPUS / "broken" / "recursion_memo_never_read.py", cls / "bob" / "recursion.py")
    shutil.copy(CORPUS / "broken" / "recursion_syntax_error.py", cls / "cy" / "recursion.py")
    shutil.copy(ROOT / "reference" / "intro_numpy.py", cls / "ada" / "intro_numpy.py")
    shutil.copy(CORPUS / "broken" / "intro_os_exit.py", cls / "cy" / "intro_numpy.py")
    (cls / "eve").mkdir()  # tries to read another student's file
    peek = (
        "import sys\n"
        "try:\n"
        f"    open({str(cls / 'bob' / 'recursion.py')!r}).read()\n"
        "    sys.exit('could read bob')\n"
        "except (FileNotFoundError, PermissionError):\n"
        "    pass\n"
    )
    (cls / "eve" / "recursion.py").write_text(
        peek + (ROOT / "reference" / "recursion.py").read_text()
    )
    (cls / "dee" / "recursion").mkdir(parents=True)  # nbgrader's submitted/<student>/<assignment>/
    shutil.copy(ROOT / "templates" / "recursion.ipynb", cls / "dee" / "recursion" / "mine.ipynb")
    out_dir = tmp_path / "out"
    out = grader("grade", cls, "--all", "--out", out_dir, "--jobs", "2", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)  # --json: stdout is the JSON summary, nothing else
    assert summary["gradebook"] == str(out_dir / "gradebook.csv")
    assert {(s["student"], s["assignment"]) for s in summary["submissions"]} >= {
        ("ada", "recursion")
    }
    assert (out_dir / "index.html").is_file() and (
        out_dir / "ada" / "recursion" / "feedback.html"
    ).is_file()
    rows = {r["student"]: r for r in csv.DictReader((out_dir / "gradebook.csv").open())}
    assert set(rows) == {"ada", "bob", "cy", "dee", "eve"}
    assert rows["eve"]["recursion:status"] == "completed"  # other students were not readable
    assert float(rows["eve"]["recursion:total"]) == 10
    assert rows["dee"]["recursion:status"] == "blanks"
    assert float(rows["ada"]["recursion:total"]) == 10
    assert (
        float(rows["bob"]["recursion:total"]) == 6
    )  # right values, but mfib(n) never finishes for large n
    assert float(rows["bob"]["recursion:memoization"]) == 0
    assert float(rows["cy"]["recursion:total"]) == 0
    assert rows["cy"]["intro_numpy:status"] == "crash"
    assert rows["bob"]["intro_numpy:status"] == "missing"
    assert float(rows["ada"]["total"]) == 20
    for student in ("ada", "bob", "cy"):
        data = json.loads((out_dir / student / "recursion" / "results.json").read_text())
        assert data["tests"]
    assert not list(out_dir.glob(".gradebook.csv*")), "no temporary file left behind"


def test_grade_needs_assignment_or_all(tmp_path):
    out = grader("grade", tmp_path, "--out", tmp_path / "o")
    assert out.returncode == 2 and "give --assignment NAME or --all" in out.stderr


@pytest.mark.slow
def test_validate_passes_on_the_course():
    out = grader("validate", timeout=1200)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "validate: all good" in out.stdout
    assert out.stdout.count(" ok ") >= 24  # 8 references + 16 templates


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="skipped: Debian's dataset-fashion-mnist is not installed",
)
def test_mnist_option_grades_on_the_named_full_size_files():
    out = grader(
        "--mnist",
        "/usr/share/datasets/fashion-mnist",
        "check",
        ROOT / "reference" / "mnist_mlp.py",
        "-a",
        "mnist_mlp",
        "--json",
    )
    data = json.loads(out.stdout)
    assert (
        "data: Fashion-MNIST (IDX files) (55000 training and 5000 validation images served; "
        "10000 held out for grading" in data["output"]
    )
    assert data["score"] == 10


def test_messages_with_brackets_reach_the_terminal_intact():
    """Rich markup must not eat a check message's [brackets] (callbacks=[...], arrays)."""
    from rich.console import Console

    from grader.report.terminal import print_submission
    from grader.results import CheckResult, SubmissionResult

    message = "no TensorBoard event files: pass callbacks=[tf.keras.callbacks.TensorBoard()] to fit"
    result = SubmissionResult(
        "keras_mlp",
        "s",
        "f.py",
        "completed",
        (CheckResult("log", "tensorboard_log", "failed", 0, 1, message),),
    )
    console = Console(record=True, width=200)
    print_submission(result, console)
    assert "callbacks=[tf.keras.callbacks.TensorBoard()]" in console.export_text()


def test_gradescope_command_ships_a_reference_only_for_drawn_calls(tmp_path):
    import zipfile

    out = grader("gradescope", "recursion", "--out", tmp_path / "ag.zip")
    assert out.returncode == 0 and "wrote" in out.stdout
    names = zipfile.ZipFile(tmp_path / "ag.zip").namelist()
    assert "run_autograder" in names and "setup.sh" in names
    assert "assignments/recursion/assignment.toml" in names
    assert [n for n in names if n.startswith("reference/")] == ["reference/recursion.py"]
    out = grader("gradescope", "perceptron", "--out", tmp_path / "p.zip")
    assert out.returncode == 0
    names = zipfile.ZipFile(tmp_path / "p.zip").namelist()
    assert not any(n.startswith("reference/") for n in names)  # no drawn calls: no solution


@pytest.mark.slow
def test_grade_writes_scores_into_an_nbgrader_gradebook(tmp_path):
    from nbgrader.api import Gradebook

    (tmp_path / "class" / "ana").mkdir(parents=True)
    shutil.copy(
        CORPUS / "broken" / "recursion_memo_never_read.py",
        tmp_path / "class" / "ana" / "recursion.py",
    )
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    out = grader(
        "grade",
        tmp_path / "class",
        "-a",
        "recursion",
        "--out",
        tmp_path / "out",
        "--nbgrader-db",
        db,
    )
    assert out.returncode == 0, out.stderr
    assert "SAWarning" not in out.stderr
    with Gradebook(db) as gb:
        assert gb.find_submission("recursion", "ana").score == 6


def test_nbgrader_export_writes_source_notebooks(tmp_path):
    out = grader("nbgrader-export", tmp_path / "course", "-a", "perceptron")
    assert out.returncode == 0
    assert (tmp_path / "course" / "source" / "perceptron" / "perceptron.ipynb").is_file()
