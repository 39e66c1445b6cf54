"""The result store: content keys, whole results kept, incremental re-grades, resume after
`kill -9`, a gradebook rebuilt from everything under `--out`, reference runs cached per user.

The sandbox tests grade through the real entry point: `grader grade` in this process (click's
CliRunner, with a counting wrapper around the runner the command builds) or in a subprocess
that is killed."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.course.spec import load_assignment
from grader.results import CheckResult, SubmissionResult
from grader.run import store as store_module
from grader.run.store import ResultStore, result_key, user_cache
from tests.conftest import CORPUS, GRADER, ROOT

GOOD = ROOT / "reference" / "recursion.py"
PARTLY = CORPUS / "broken" / "recursion_memo_never_read.py"  # 6 / 10
SYNTAX = CORPUS / "broken" / "recursion_syntax_error.py"  # nothing runs


def a_result(student="ada", assignment="perceptron", status="completed", points=3.0):
    return SubmissionResult(
        assignment=assignment,
        student=student,
        file=f"/class/{student}/{assignment}.py",
        run_status=status,
        checks=(
            CheckResult("shapes", "shapes", "passed", points, 3.0, "ok"),
            CheckResult("boundary", "decision_boundary", "failed", 0.0, 7.0, "off", "0.9", "0.5"),
        ),
        problems=("a problem",),
        notes=("a note",),
        log="printed\n",
        timing={"total_s": 1.5, "checks_s": 0.01},
        isolation=("user namespace", "pid namespace"),
        data={
            "name": "MNIST",
            "served_train": 4500,
            "served_validation": 500,
            "heldout": 1000,
            "sha256": "ab" * 32,
        },
        figures={
            "loss_curve": {"loss_record": [3.0, 2.0, 1.0, float("nan")]},
            "boundary": {
                "extent": [0, 1, 0, 1],
                "predicted": [[0, 1], [1, 1]],
                "truth": [[-1.0, 0.5], [0.5, 1.0]],
                "points": [[0.2, 0.3], [0.8, 0.9]],
                "classes": [0, 1],
                "formula": "x1 + x2 - 1 = 0",
            },
        },
    )


# --- the store itself -------------------------------------------------------------------


def test_a_stored_result_comes_back_whole_figures_included(tmp_path):
    store = ResultStore(tmp_path)
    result = a_result()
    store.put(result, "k1")
    got = store.get("ada", "perceptron", "k1")
    assert got is not None
    assert got.to_gradescope() == result.to_gradescope()
    assert got.checks == result.checks and got.isolation == result.isolation
    assert got.figures["boundary"] == result.figures["boundary"]
    assert got.figures["loss_curve"]["loss_record"][:3] == [3.0, 2.0, 1.0]
    assert store.get("ada", "perceptron", "another key") is None
    assert store.get("ada", "perceptron", "") is None
    assert store.latest() == [got]


def test_latest_has_one_result_per_student_and_assignment(tmp_path):
    store = ResultStore(tmp_path)
    store.put(a_result(points=1.0), "old")
    store.put(a_result(points=3.0), "new")
    store.put(a_result(assignment="recursion"), "r")
    store.put(a_result(student="bo/b; rm"), "x")  # a name that is no file name: still kept
    (tmp_path / ".abc.json.tmp123").write_text("{half")  # write_atomic's leftover of a kill
    latest = store.latest()
    assert [(r.student, r.assignment) for r in latest] == [
        ("ada", "perceptron"),
        ("ada", "recursion"),
        ("bo/b; rm", "perceptron"),
    ]
    assert latest[0].score == 3.0


def test_a_missing_file_never_replaces_a_graded_result(tmp_path):
    store = ResultStore(tmp_path)
    store.put(a_result(), "k")
    store.put(a_result(status="missing", points=0.0), "")
    assert store.entry("ada", "perceptron").result.run_status == "completed"
    store.put(a_result(student="cy", status="missing", points=0.0), "")
    assert store.entry("cy", "perceptron").result.run_status == "missing"  # nothing before


def test_the_graders_own_failures_are_listed_but_never_reused(tmp_path):
    store = ResultStore(tmp_path)
    store.put(a_result(status="sandbox_error"), "k")
    assert store.get("ada", "perceptron", "k") is None
    assert [r.run_status for r in store.latest()] == ["sandbox_error"]


def test_prune_forgets_only_the_named_assignments_students_not_kept(tmp_path):
    store = ResultStore(tmp_path)
    for student in ("ada", "bob"):
        for assignment in ("perceptron", "recursion"):
            store.put(a_result(student, assignment), "k")
    assert store.prune(["perceptron"], {("ada", "perceptron")}) == 1
    assert {(r.student, r.assignment) for r in store.latest()} == {
        ("ada", "perceptron"),
        ("ada", "recursion"),
        ("bob", "recursion"),
    }


def test_an_entry_of_another_format_is_not_read(tmp_path):
    store = ResultStore(tmp_path)
    store.put(a_result(), "k")
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format": "result-store-0"}))
    assert store.get("ada", "perceptron", "k") is None and store.latest() == []


# --- the key ------------------------------------------------------------------------------


@pytest.fixture
def tmp_course(tmp_path):
    """A course folder of two assignments, their specs and references copied (to be edited)."""
    (tmp_path / "reference").mkdir()
    for name in ("recursion", "mnist_mlp"):
        shutil.copytree(ROOT / "assignments" / name, tmp_path / "assignments" / name)
        shutil.copy(ROOT / "reference" / f"{name}.py", tmp_path / "reference" / f"{name}.py")
    return tmp_path


def key_of(course: Path, name: str, submission: Path, **kw) -> str:
    return result_key(
        load_assignment(course / "assignments" / name / "assignment.toml"), submission, **kw
    )


def test_the_key_changes_with_the_submission_spec_reference_and_how_it_ran(tmp_course):
    sub = tmp_course / "ada" / "recursion.py"
    sub.parent.mkdir()
    shutil.copy(PARTLY, sub)
    keys = [key_of(tmp_course, "recursion", sub)]
    assert key_of(tmp_course, "recursion", sub) == keys[0]  # a pure function of the content
    sub.write_text(sub.read_text() + "\n# one more line\n")
    keys.append(key_of(tmp_course, "recursion", sub))
    spec = tmp_course / "assignments" / "recursion" / "assignment.toml"
    spec.write_text(spec.read_text() + "\n# a comment is a change of the spec file\n")
    keys.append(key_of(tmp_course, "recursion", sub))
    ref = tmp_course / "reference" / "recursion.py"
    ref.write_text(ref.read_text() + "\n# the reference changed\n")
    keys.append(key_of(tmp_course, "recursion", sub))
    keys.append(key_of(tmp_course, "recursion", sub, visible_only=True))
    keys.append(key_of(tmp_course, "recursion", sub, salt={"sandbox": "none"}))
    assert len(set(keys)) == len(keys), keys


def test_the_key_of_a_folder_counts_every_file_and_its_name(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "splits_for", lambda family: None)  # not loading MNIST
    spec = load_assignment(ROOT / "assignments" / "mnist_softmax" / "assignment.toml")
    folder = tmp_path / "mnist_softmax"
    folder.mkdir()
    (folder / "train.py").write_text("a = 1\n")
    (folder / "test.py").write_text("b = 2\n")
    first = result_key(spec, folder)
    (folder / "notes.txt").write_text("x")
    second = result_key(spec, folder)
    (folder / "notes.txt").rename(folder / "other.txt")
    third = result_key(spec, folder)
    assert len({first, second, third}) == 3


class FakeSplits:
    def __init__(self, sha256):
        self.sha = sha256

    def describe(self):
        return {"name": "MNIST", "served_train": 4500, "sha256": self.sha}


def test_the_key_changes_with_the_data_sets_checksum(monkeypatch, tmp_course):
    sub = tmp_course / "mine.py"
    sub.write_text("x = 1\n")
    keys = []
    for splits in (FakeSplits("aa" * 32), FakeSplits("bb" * 32), None):
        monkeypatch.setattr(store_module, "splits_for", lambda family, s=splits: s)
        keys.append(key_of(tmp_course, "mnist_mlp", sub))
    assert len(set(keys)) == 3  # two checksums, and the data set absent


def test_the_key_changes_with_the_graders_own_source(monkeypatch, tmp_path):
    package = tmp_path / "grader"
    shutil.copytree(store_module.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(store_module, "PACKAGE", package)
    store_module.grader_fingerprint.cache_clear()
    try:
        before = store_module.grader_fingerprint()
        (package / "checks" / "training.py").write_text("# same version, other code\n")
        store_module.grader_fingerprint.cache_clear()
        after = store_module.grader_fingerprint()
    finally:
        store_module.grader_fingerprint.cache_clear()
    assert before != after and before.split("+")[0] == after.split("+")[0]  # same version


def test_the_user_cache_is_grader_cache_else_xdg_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "mine"))
    assert user_cache() == tmp_path / "mine"
    monkeypatch.delenv("GRADER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache() == tmp_path / "xdg" / "grader"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache() == tmp_path / "home" / ".cache" / "grader"


def test_the_tests_never_use_the_real_user_cache(user_cache):
    assert os.environ["GRADER_CACHE"] == str(user_cache)
    assert Path.home() not in user_cache.parents


# --- through the command line ---------------------------------------------------------------


class CountingRunner:
    """Wraps the runner `grader grade` builds and counts the sandbox jobs it is given."""

    def __init__(self, inner, jobs: list[str]):
        self.inner, self.jobs = inner, jobs

    def run(self, job):
        self.jobs.append(job.display_name)
        return self.inner.run(job)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def counted(monkeypatch):
    """The sandbox jobs of each `grader grade` run in this process."""
    import grader.context

    real = grader.context.grading
    jobs: list[str] = []

    @contextlib.contextmanager
    def grading(*args, **kwargs):
        with real(*args, **kwargs) as ctx:
            ctx.runner = CountingRunner(ctx.runner, jobs)
            yield ctx

    monkeypatch.setattr(grader.context, "grading", grading)
    return jobs


def grade_here(*args) -> tuple[dict, list]:
    """`grader grade ... --json` in this process: (the JSON summary, its submissions)."""
    from grader.cli import main

    done = CliRunner().invoke(main, ["--course", str(ROOT), "grade", *map(str, args), "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    return summary, summary["submissions"]


def make_class(root: Path, files: dict[str, Path], name="recursion") -> Path:
    for student, source in files.items():
        (root / student).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / student / f"{name}.py")
    return root


def reused(submissions) -> dict[str, bool]:
    return {s["student"]: s["reused"] for s in submissions}


@pytest.mark.slow
def test_a_regrade_runs_only_what_changed_and_force_runs_all(tmp_path, counted):
    cls = make_class(tmp_path / "class", {"ada": GOOD, "bob": PARTLY, "cy": SYNTAX})
    out = tmp_path / "out"
    _, first = grade_here(cls, "-a", "recursion", "--out", out)
    assert counted and reused(first) == {"ada": False, "bob": False, "cy": False}
    scores = {s["student"]: s["score"] for s in first}
    assert scores == {"ada": 10, "bob": 6, "cy": 0}

    counted.clear()
    summary, second = grade_here(cls, "-a", "recursion", "--out", out)
    assert counted == []  # not one sandbox job
    assert (summary["graded"], summary["reused"]) == (0, 3)
    assert reused(second) == {"ada": True, "bob": True, "cy": True}
    assert {s["student"]: s["score"] for s in second} == scores

    (cls / "bob" / "recursion.py").write_text(PARTLY.read_text() + "\n# changed my mind\n")
    _, third = grade_here(cls, "-a", "recursion", "--out", out)
    assert reused(third) == {"ada": True, "bob": False, "cy": True}
    assert 0 < len(counted) <= 2  # bob's run (and the reference's, for his drawn calls)

    counted.clear()
    _, forced = grade_here(cls, "-a", "recursion", "--out", out, "--force")
    assert reused(forced) == {"ada": False, "bob": False, "cy": False}
    assert len(counted) >= 2  # ada's and bob's runs again (cy's has a syntax error)
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert {s: float(r["recursion:total"]) for s, r in rows.items()} == scores


@pytest.mark.slow
def test_the_terminal_says_how_many_were_graded_and_reused(tmp_path):
    from grader.cli import main

    cls = make_class(tmp_path / "class", {"ada": SYNTAX, "bob": SYNTAX})
    args = ["--course", str(ROOT), "grade", str(cls), "-a", "recursion", "--out", str(tmp_path)]
    first = CliRunner().invoke(main, args)
    (cls / "bob" / "recursion.py").write_text(SYNTAX.read_text() + "\n")
    second = CliRunner().invoke(main, args)
    assert "graded 2, reused 0" in first.output
    assert "graded 1, reused 1" in second.output, second.output


@pytest.mark.slow
def test_a_second_assignment_into_the_same_out_keeps_the_first(tmp_path, counted):
    cls = make_class(tmp_path / "class", {"ada": GOOD, "bob": SYNTAX})
    make_class(cls, {"ada": ROOT / "reference" / "intro_numpy.py"}, "intro_numpy")
    out = tmp_path / "out"
    grade_here(cls, "-a", "recursion", "--out", out)
    summary, subs = grade_here(cls, "-a", "intro_numpy", "--out", out)
    assert {s["assignment"] for s in subs} == {"intro_numpy"}  # this run's
    rows = {r["student"]: r for r in csv.DictReader(open(summary["gradebook"]))}
    assert set(rows) == {"ada", "bob"}
    assert float(rows["ada"]["recursion:total"]) == 10  # the first assignment, kept
    assert float(rows["ada"]["intro_numpy:total"]) == 10
    assert rows["bob"]["recursion:status"] == "syntax"
    assert rows["bob"]["intro_numpy:status"] == "missing"
    assert float(rows["ada"]["total"]) == 20
    index = (out / "index.html").read_text()
    assert "recursion" in index and "intro_numpy" in index
    assert (out / "ada" / "recursion" / "feedback.html").is_file()

    # bob's file went away: his stored result stays (nothing graded is lost) ...
    shutil.rmtree(cls / "bob")
    grade_here(cls, "-a", "recursion", "--out", out)
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert rows["bob"]["recursion:status"] == "syntax"
    # ... until --prune forgets it
    grade_here(cls, "-a", "recursion", "--out", out, "--prune")
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert rows["bob"]["recursion:status"] == ""  # no recursion result left for bob
    assert rows["bob"]["intro_numpy:status"] == "missing"  # another assignment: untouched


@pytest.mark.slow
def test_reference_runs_are_cached_per_user_not_under_out(tmp_path, counted, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRADER_CACHE", str(cache))
    cls = make_class(tmp_path / "class", {"ada": SYNTAX})  # nothing of ada's runs
    grade_here(cls, "-a", "recursion", "--out", tmp_path / "one")
    runs = len(counted)
    assert runs  # the reference's own run, for the pages (and its drawn calls)
    assert list((cache / "reference").glob("recursion-*.json"))
    assert not (tmp_path / "one" / ".reference").exists()
    grade_here(cls, "-a", "recursion", "--out", tmp_path / "two")  # another output folder
    assert len(counted) == runs  # the reference was not run again


def wait_for(predicate, timeout: float, every: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


@pytest.mark.slow
def test_kill_9_then_grade_again_resumes_and_the_gradebook_is_whole(tmp_path):
    cls = make_class(tmp_path / "class", {"zed": GOOD})
    out = tmp_path / "out"
    command = [*GRADER, "grade", str(cls), "-a", "recursion", "--out", str(out), "--jobs", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    before = (out / "gradebook.csv").read_bytes()

    students = ["s1", "s2", "s3", "s4", "s5"]
    make_class(cls, dict.fromkeys(students, GOOD))
    entries = out / ".grader" / "results"
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: len(list(entries.glob("[!.]*.json"))) >= 2, 300)  # zed + one
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 of `grader grade` ...
        proc.wait()
        with contextlib.suppress(ProcessLookupError):  # ... and of any job it left behind
            os.killpg(proc.pid, signal.SIGKILL)
    stored = len(list(entries.glob("[!.]*.json"))) - 1
    assert 1 <= stored < len(students), "killed after all were graded: nothing to resume"
    assert (out / "gradebook.csv").read_bytes() == before  # the previous one, as it was

    again = subprocess.run([*command, "--json"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    subs = json.loads(again.stdout)["submissions"]
    assert sum(s["reused"] for s in subs) == stored + 1  # zed's and those stored before the kill
    assert sum(not s["reused"] for s in subs) == len(students) - stored
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert set(rows) == {"zed", *students}
    assert all(float(r["recursion:total"]) == 10 for r in rows.values())
    assert len(list(out.glob("*/recursion/feedback.html"))) == 6


def test_a_students_page_is_drawn_again_only_when_its_result_changed(tmp_path):
    import dataclasses

    from grader.report.pages import write_pages

    result = a_result()
    write_pages([result], tmp_path)
    page = tmp_path / "ada" / "perceptron" / "feedback.html"
    first = page.stat().st_mtime_ns, page.read_text()
    assert first[1].startswith("<!doctype html>\n<!-- grader-page ")
    write_pages([result], tmp_path)
    assert (page.stat().st_mtime_ns, page.read_text()) == first  # left as it was
    write_pages([dataclasses.replace(result, notes=("another note",))], tmp_path)
    assert "another note" in page.read_text()
    write_pages([result], tmp_path, {"perceptron": {"loss_curve": {"loss_record": [4.0, 1.0]}}})
    assert page.read_text() != first[1]  # the reference's figures changed


def test_the_progress_bar_counts_reused_results_apart_so_its_eta_is_of_real_grading():
    import dataclasses
    import io

    from rich.console import Console
    from rich.progress import TimeRemainingColumn

    from grader.report.terminal import ClassProgress

    console = Console(file=io.StringIO(), force_terminal=False)
    with ClassProgress(console, 10) as bar:
        for i in range(7):  # the store's results come first ...
            bar.done(dataclasses.replace(a_result(student=f"s{i}"), reused=True))
        bar.done(a_result(student="gone", status="missing"))  # ... and those without a file
        task = bar.progress.tasks[0]
        assert (task.total, task.completed, task.fields["reused"]) == (2, 0, 7)
        bar.done(a_result(student="new"))  # then the grading: the rate counts only this
        assert (task.completed, task.remaining) == (1, 1)
        assert any(isinstance(c, TimeRemainingColumn) for c in bar.progress.columns)
