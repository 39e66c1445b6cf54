"""Reading submissions: blanks, syntax errors and magics found from the text alone."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.errors import SubmissionError
from grader.run.submission import check_syntax, find_blanks, load


def write_py(tmp_path: Path, text: str, name: str = "sub.py") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_nb(tmp_path: Path, cells: list, name: str = "sub.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(new_notebook(cells=cells), str(path))
    return path


def messages(path: Path) -> list[str]:
    return [p.message for p in find_blanks(load(path))]


# --- blanks in .py files ---------------------------------------------------------------------


def test_each_blank_is_reported_once_with_the_students_line(tmp_path):
    lines = [f"a{i} = {i}" for i in range(1, 12)] + ["loss = ___", "", "w = ___"]
    path = write_py(tmp_path, "\n".join(lines) + "\n")
    problems = find_blanks(load(path))
    assert [p.where for p in problems] == ["line 12", "line 14"]
    assert problems[0].message == "line 12: unfilled blank in `loss = ___`"
    assert problems[1].message == "line 14: unfilled blank in `w = ___`"


def test_two_blanks_on_one_line_get_distinct_messages(tmp_path):
    path = write_py(tmp_path, "x = 1\nz = ___ + ___\n")
    msgs = messages(path)
    assert len(msgs) == 2
    assert len(set(msgs)) == 2
    assert "line 2: unfilled blank 1 of 2" in msgs[0]
    assert "line 2: unfilled blank 2 of 2" in msgs[1]
    assert all("`z = ___ + ___`" in m for m in msgs)


def test_question_mark_as_the_lecture_notes_write_it_is_a_blank(tmp_path):
    code = "import tensorflow as tf\nn_input = 2\nx = tf.placeholder(tf.float32, [None, ?])\n"
    msgs = messages(write_py(tmp_path, code))
    assert msgs == ["line 3: unfilled blank in `x = tf.placeholder(tf.float32, [None, ?])`"]


def test_two_question_marks_on_one_line(tmp_path):
    msgs = messages(write_py(tmp_path, "w = tf.Variable(tf.random_normal([?, ?]))\n"))
    assert len(msgs) == 2
    assert "blank 1 of 2" in msgs[0] and "blank 2 of 2" in msgs[1]


@pytest.mark.parametrize(
    "code",
    [
        'print("what?")\n',
        "s = 'is it ___ or ?'\n",
        'doc = """\nWhat is ___?\n"""\n',
        "x = 1  # what goes in ___ here?\n",
        "# fill in ___ below\nx = 1\n",
    ],
    ids=[
        "question-in-string",
        "both-in-string",
        "triple-quoted",
        "trailing-comment",
        "comment-line",
    ],
)
def test_blank_markers_in_strings_and_comments_are_not_blanks(tmp_path, code):
    assert messages(write_py(tmp_path, code)) == []


def test_names_containing_underscores_are_not_blanks(tmp_path):
    code = "my___var = 1\n____ = 2\nclass A:\n    def __init__(self):\n        pass\n"
    assert messages(write_py(tmp_path, code)) == []


def test_a_filled_template_has_no_blanks_and_no_syntax_error(tmp_path):
    path = write_py(tmp_path, "def fib(n):\n    return 1 if n <= 2 else fib(n-1) + fib(n-2)\n")
    source = load(path)
    assert find_blanks(source) == []
    assert check_syntax(source) is None
    assert source.notes == ()


# --- syntax errors -------------------------------------------------------------------------------


def test_syntax_error_is_reported_at_the_students_line(tmp_path):
    path = write_py(tmp_path, "x = 1\ny = 2\ndef f(:\n    pass\n")
    problem = check_syntax(load(path))
    assert problem is not None
    assert problem.where == "line 3"
    assert problem.text == "def f(:"
    assert problem.message.startswith("line 3: syntax error")
    assert "`def f(:`" in problem.message


def test_syntax_error_in_a_notebook_names_cell_and_line(tmp_path):
    path = write_nb(
        tmp_path,
        [
            new_code_cell("import numpy as np"),
            new_code_cell("x = 1\ny = 2"),
            new_code_cell("z = 3\nif z > 1\n    print(z)"),
        ],
    )
    problem = check_syntax(load(path))
    assert problem is not None
    assert problem.where == "cell 3, line 2"
    assert problem.message.startswith("cell 3, line 2: syntax error")
    assert "`if z > 1`" in problem.message


# --- notebooks -----------------------------------------------------------------------------------


def test_notebook_blank_names_cell_and_line(tmp_path):
    path = write_nb(
        tmp_path,
        [
            new_code_cell("import numpy as np"),
            new_code_cell("a = 1"),
            new_code_cell("b = 2\nc = 3"),
            new_code_cell("n = 3\nx = np.zeros([None, ?])\ny = ___"),
        ],
    )
    msgs = messages(path)
    assert msgs == [
        "cell 4, line 2: unfilled blank in `x = np.zeros([None, ?])`",
        "cell 4, line 3: unfilled blank in `y = ___`",
    ]


def test_notebook_two_blanks_on_one_line(tmp_path):
    path = write_nb(tmp_path, [new_code_cell("x = 1"), new_code_cell("y = 2\nz = ___ + ___")])
    msgs = messages(path)
    assert msgs == [
        "cell 2, line 2: unfilled blank 1 of 2 in `z = ___ + ___`",
        "cell 2, line 2: unfilled blank 2 of 2 in `z = ___ + ___`",
    ]


def test_markdown_cells_are_not_graded_but_are_counted(tmp_path):
    # Cells are numbered as the student sees them: every cell, markdown included.
    path = write_nb(
        tmp_path,
        [
            new_markdown_cell("# Fill in every ___ (or ?)"),
            new_code_cell("x = 1"),
            new_markdown_cell("## Next"),
            new_code_cell("y = ___"),
        ],
    )
    assert messages(path) == ["cell 4, line 1: unfilled blank in `y = ___`"]


def test_saved_notebook_outputs_are_ignored(tmp_path):
    out = new_output("stream", name="stdout", text="___ ? def f(:\n")
    err = new_output("error", ename="NameError", evalue="name '___' is not defined", traceback=[])
    res = new_output("execute_result", data={"text/plain": "'___'"}, execution_count=1)
    path = write_nb(
        tmp_path,
        [new_code_cell("x = 1\nprint(x)", outputs=[out, err, res], execution_count=1)],
    )
    source = load(path)
    assert source.code == "x = 1\nprint(x)\n"
    assert find_blanks(source) == []
    assert check_syntax(source) is None


# --- magics --------------------------------------------------------------------------------------


def test_line_magic_and_shell_escape_are_not_run_and_noted(tmp_path):
    path = write_nb(
        tmp_path,
        [
            new_code_cell("import numpy as np\n%matplotlib inline"),
            new_code_cell("!pip install x\nx = 1"),
        ],
    )
    source = load(path)
    code_lines = source.code.splitlines()
    # Neither line survives as code: both become a harmless statement.
    assert not any(line.lstrip().startswith(("%", "!")) for line in code_lines)
    assert code_lines[1].startswith("pass")
    assert code_lines[2].startswith("pass")
    assert code_lines[3] == "x = 1"
    assert check_syntax(source) is None
    assert len(source.notes) == 2
    assert "cell 1, line 2" in source.notes[0] and "%matplotlib inline" in source.notes[0]
    assert "cell 2, line 1" in source.notes[1] and "!pip install x" in source.notes[1]
    assert all("not run" in n for n in source.notes)


def test_indented_magic_keeps_the_block_valid(tmp_path):
    path = write_py(tmp_path, "for i in range(3):\n    %time f(i)\n")
    source = load(path)
    assert check_syntax(source) is None
    assert source.code.splitlines()[1].startswith("    pass")
    assert source.notes and "line 2" in source.notes[0]


def test_magics_in_a_py_submission(tmp_path):
    path = write_py(tmp_path, "%matplotlib inline\n!pip install x\nx = 1\n")
    source = load(path)
    assert check_syntax(source) is None
    assert [n.split(":")[0] for n in source.notes] == ["line 1", "line 2"]
    assert "%matplotlib" not in source.code.replace("# not run by the grader: %matplotlib", "")


def test_cell_magic_cell_is_not_run_and_noted(tmp_path):
    path = write_nb(
        tmp_path,
        [
            new_code_cell("x = 1"),
            new_code_cell("%%javascript\nalert('___ ?');\nvar y = ;"),
            new_code_cell("y = 2"),
        ],
    )
    source = load(path)
    assert "alert" not in source.code
    assert "javascript" not in source.code
    assert find_blanks(source) == []
    assert check_syntax(source) is None
    assert len(source.notes) == 1
    assert source.notes[0].startswith("cell 2:")
    assert "%%javascript" in source.notes[0]
    # The cells after it keep their number.
    assert source.where == ("cell 1, line 1", "cell 3, line 1")


def test_not_equal_at_line_start_is_not_a_shell_escape(tmp_path):
    path = write_py(tmp_path, "a, b = 1, 2\nok = (a\n      != b)\n")
    source = load(path)
    assert source.notes == ()
    assert check_syntax(source) is None


def test_modulo_on_a_continuation_line_is_not_a_magic(tmp_path):
    # Valid Python: the `%` operator starts a continuation line of a bracketed expression.
    path = write_py(tmp_path, 'n = 2\nmsg = ("loss %d"\n       % n)\nprint(msg)\n')
    source = load(path)
    assert source.notes == ()
    assert check_syntax(source) is None
    assert source.code == 'n = 2\nmsg = ("loss %d"\n       % n)\nprint(msg)\n'


def test_lines_inside_a_string_are_not_magics(tmp_path):
    text = 's = """\n!important\n%d items\n"""\n'
    source = load(write_py(tmp_path, text))
    assert source.code == text
    assert source.notes == ()


# --- unreadable submissions ----------------------------------------------------------------------


def test_non_utf8_file_raises_submission_error(tmp_path):
    path = tmp_path / "sub.py"
    path.write_bytes('x = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(SubmissionError, match=r"sub\.py is not UTF-8 text \(byte 8\)"):
        load(path)


def test_non_utf8_notebook_raises_submission_error(tmp_path):
    path = tmp_path / "sub.ipynb"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(SubmissionError, match=r"sub\.ipynb is not UTF-8 text"):
        load(path)


@pytest.mark.parametrize(
    "text",
    [
        '{"cells": [',
        "not json at all",
        "[1, 2]",
        '{"nbformat": 4, "nbformat_minor": 5, "cells": [{"cell_type": "code"}]}',
    ],
    ids=["truncated", "not-json", "json-list", "missing-keys"],
)
def test_broken_notebook_raises_submission_error(tmp_path, text):
    path = tmp_path / "broken.ipynb"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SubmissionError, match=r"broken\.ipynb is not a readable Jupyter notebook"):
        load(path)


def test_missing_file_raises_submission_error(tmp_path):
    with pytest.raises(SubmissionError, match=r"cannot read .*nothere\.py"):
        load(tmp_path / "nothere.py")


def test_wrong_suffix_raises_submission_error(tmp_path):
    path = tmp_path / "sub.txt"
    path.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(SubmissionError, match=r"must be a \.py or \.ipynb file"):
        load(path)
