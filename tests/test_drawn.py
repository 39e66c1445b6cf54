"""Calls on arguments drawn for each run: never written where the child can read them early,
handed over only when it asks after the student's code has run, and scored only against the
reference's values on the same arguments."""

from __future__ import annotations

import json
import os
import textwrap
import time

import numpy as np
import pytest

from grader.course import draws
from grader.run.runner import Job, _Answer, _input_files, _Results
from grader.wire import ASK_CALLS, READY, RESULTS_MAGIC, Collect, FunctionCall, Limits
from tests.conftest import ROOT

SECRET = FunctionCall("f_a", "forward", ([[0.123456789012, 0.5]], [0.987654321098, 0.25]))


def _job(drawn=(SECRET,)) -> Job:
    return Job("s.py", "x = 1\n", ("line 1",), Collect(), {}, 1, False, drawn=drawn)


def _read_all(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size, 0)


def test_drawn_arguments_are_in_no_input_file():
    files = _input_files(_job(), 5, 6)
    try:
        texts = {dest: _read_all(fd) for fd, dest in files}
    finally:
        for fd, _ in files:
            os.close(fd)
    spec = json.loads(texts["/job/in/job.json"])
    assert spec["isolation"]["calls_fd"] == 6
    for dest, data in texts.items():
        for secret in (b"0.123456789012", b"0.987654321098", b"f_a", b"forward"):
            assert secret not in data, (dest, secret)


def _drain(answer: _Answer, written: bytes) -> tuple[bytes, bool]:
    read_end, write_end = os.pipe()
    results = _Results(read_end, answer)
    os.write(write_end, written)
    os.close(write_end)
    stream = results.stream()
    assert stream is not None
    return stream.read(), answer.sent


def test_the_calls_are_handed_over_only_when_asked_right_after_ready():
    calls_in, calls_out = os.pipe()
    kept, sent = _drain(_Answer(calls_out, (SECRET,)), READY + ASK_CALLS + RESULTS_MAGIC + b"x")
    assert sent and kept == READY + RESULTS_MAGIC + b"x"  # the ask is not part of the results
    deadline = time.time() + 5
    got = b""
    while time.time() < deadline and not got.endswith(b"]"):
        got += os.read(calls_in, 65536)
    os.close(calls_in)
    assert json.loads(got) == [
        {"id": "f_a", "function": "forward", "args": [list(a) for a in SECRET.args], "setup": ""}
    ]


@pytest.mark.parametrize(
    "written",
    [
        READY + RESULTS_MAGIC + b"forged",  # results without asking
        READY + b"junk" + ASK_CALLS,  # the student's code wrote on the pipe first
        ASK_CALLS,  # before the student's code was even started
        READY,  # ended without asking
    ],
)
def test_anything_else_closes_the_calls_pipe_unanswered(written):
    calls_in, calls_out = os.pipe()
    kept, sent = _drain(_Answer(calls_out, (SECRET,)), written)
    assert not sent and kept == written
    assert os.read(calls_in, 10) == b""  # end of file: nothing was handed over
    os.close(calls_in)


def test_drawn_arguments_come_from_a_secret_seed_every_time():
    spec = draws.parse([{"id": "a", "function": "f", "args": [{"int": [0, 10**9]}]}], "t")
    seen = {draws.draw(spec, draws.fresh_rng())[0].args[0] for _ in range(20)}
    assert len(seen) > 15


# --- in the sandbox --------------------------------------------------------------------------------

NAIVE_MFIB = (ROOT / "reference" / "recursion.py").read_text(encoding="utf-8")
NAIVE_MFIB = NAIVE_MFIB.replace("if memo[n-1] != 0:", "if False:")


def _grade(course, runner, tmp_path, name: str, code: str):
    from grader.pipeline import grade_file

    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(code), encoding="utf-8")
    result = grade_file(course.assignment(name), path, runner)
    return result, {c.name: c for c in result.checks}


@pytest.mark.slow
def test_a_naive_mfib_scores_nothing_for_memoization(course, runner, tmp_path):
    assert "if False:" in NAIVE_MFIB
    result, checks = _grade(course, runner, tmp_path, "recursion", NAIVE_MFIB)
    memo = checks["memoization"]
    assert memo.points == 0 and memo.max_points == 4
    assert "no result within" in memo.message and "A naive recursion" in memo.message
    for name in ("factorial", "naive Fibonacci", "memoized Fibonacci"):
        assert checks[name].status == "passed", checks[name].message  # right, if slow
    assert checks["calls of mfib"].max_points == 0  # the child's own count: feedback only
    assert result.score == 6


@pytest.mark.slow
@pytest.mark.parametrize("name", ["recursion", "intro_numpy"])
def test_the_reference_gets_full_marks_on_fresh_numbers(course, runner, name):
    from grader.pipeline import grade_file

    results = [grade_file(course.assignment(name), course.reference(name), runner)]
    results.append(grade_file(course.assignment(name), course.reference(name), runner))
    for result in results:
        assert result.score == result.max_score == 10, [c.message for c in result.checks]
    shown = [[c.message for c in r.checks if c.check == "drawn_values"] for r in results]
    assert shown[0] != shown[1]  # other numbers each run


@pytest.mark.slow
def test_the_arguments_reach_the_child_only_after_its_code_ran(course, runner, tmp_path):
    """The student's top-level code finds the drawn arguments in no file of /job/in and cannot
    read them from the calls' pipe yet; its functions, called later, get them."""
    reference = (ROOT / "reference" / "intro_numpy.py").read_text(encoding="utf-8")
    spy = reference + textwrap.dedent(
        """
        import fcntl, glob, json, os
        seen = ""
        for name in glob.glob("/job/in/*"):
            with open(name, "rb") as fh:
                seen += fh.read().decode("latin-1")
        fd = json.loads(open("/job/in/job.json").read())["isolation"]["calls_fd"]
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        try:
            print("EARLY:", os.read(fd, 65536))
        except BlockingIOError:
            print("EARLY: nothing")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        _forward = forward

        def forward(W, I):
            for v in list(np.ravel(W)) + list(np.ravel(I)):
                print("ARG:", repr(float(v)), repr(float(v)) in seen)
            return _forward(W, I)
        """
    )
    result, checks = _grade(course, runner, tmp_path, "intro_numpy", spy)
    assert result.score == 10, [c.message for c in result.checks]
    assert "EARLY: nothing" in result.log
    args = [line for line in result.log.splitlines() if line.startswith("ARG:")]
    assert len(args) >= 2 * (2 * 2 + 2) + 9 + 3  # the drawn calls and the lecture's own
    lecture = {0.9, 0.3, 0.4, 0.2, 0.8, 0.1, 0.5, 0.6}
    for line in args:
        _, value, found = line.split()
        assert found == "False" or float(value) in lecture, line
    np.testing.assert_equal(checks["forward pass"].points, 3)


def test_every_drawn_call_of_the_recursion_spec_is_scored(course):
    from grader.pipeline import _drawn_specs

    spec = course.assignment("recursion")
    assert spec.limits == Limits(timeout_s=30, memory_mb=1024, call_timeout_s=2)
    assert {d.id for d in _drawn_specs(spec, list(spec.checks))} == {d.id for d in spec.drawn_calls}
