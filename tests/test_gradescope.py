"""The Gradescope autograder bundle, built and run the way Gradescope runs it, under a local
$AUTOGRADER_ROOT (setup.sh's pip install is skipped: $GRADER_PYTHON is this interpreter)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT

VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def validate_results(data) -> list[str]:
    """The fields of Gradescope's autograder specification (results.json); a list of faults."""
    faults = []

    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not isinstance(data, dict):
        return ["results.json is not an object"]
    if not number(data.get("score")):
        faults.append(f"top-level score is not a number: {data.get('score')!r}")
    if not isinstance(data.get("tests"), list):
        faults.append("top-level tests is not a list")
    for key, kind in (("execution_time", (int, float)), ("output", str), ("extra_data", dict)):
        if key in data and not isinstance(data[key], kind):
            faults.append(f"top-level {key} has the wrong type: {data[key]!r}")
    for key in ("visibility", "stdout_visibility"):
        if key in data and data[key] not in VISIBILITIES:
            faults.append(f"top-level {key} {data[key]!r} not in {sorted(VISIBILITIES)}")
    for i, test in enumerate(data.get("tests") or []):
        at = f"tests[{i}]"
        if not isinstance(test, dict):
            faults.append(f"{at} is not an object")
            continue
        for key in ("score", "max_score"):
            if not number(test.get(key)):
                faults.append(f"{at}.{key} is not a number: {test.get(key)!r}")
        for key in ("name", "output"):
            if not isinstance(test.get(key), str):
                faults.append(f"{at}.{key} is not a string: {test.get(key)!r}")
        if test.get("visibility") not in VISIBILITIES:
            faults.append(f"{at}.visibility {test.get('visibility')!r} not allowed")
        if "status" in test and test["status"] not in ("passed", "failed"):
            faults.append(f"{at}.status {test['status']!r} not passed/failed")
        if "extra_data" in test and not isinstance(test["extra_data"], dict):
            faults.append(f"{at}.extra_data is not an object")
        if number(test.get("score")) and number(test.get("max_score")):
            if not 0 <= test["score"] <= test["max_score"]:
                faults.append(f"{at}.score {test['score']} outside 0..{test['max_score']}")
    if number(data.get("score")) and isinstance(data.get("tests"), list) and data["tests"]:
        total = sum(t.get("score", 0) for t in data["tests"] if isinstance(t, dict))
        if abs(total - data["score"]) > 1e-6:
            faults.append(f"score {data['score']} is not the sum of the tests' scores {total}")
    return faults


def test_the_validator_catches_what_gradescope_rejects():
    good = {
        "score": 1,
        "tests": [
            {
                "name": "a",
                "score": 1,
                "max_score": 2,
                "output": "",
                "visibility": "visible",
                "status": "passed",
            }
        ],
    }
    assert validate_results(good) == []
    assert validate_results({"tests": []})  # no score
    bad = json.loads(json.dumps(good))
    bad["tests"][0]["visibility"] = "public"
    bad["tests"][0]["status"] = "skipped"
    assert len(validate_results(bad)) == 2


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from grader.course.discovery import find_course
    from grader.integrations.gradescope import build_bundle

    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    return build_bundle(find_course(ROOT), "recursion", out, source_root=ROOT)


def unpack(bundle: Path, root: Path) -> Path:
    """What Gradescope does with the zip: its contents in `$AUTOGRADER_ROOT/source`."""
    source = root / "source"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(source)
        for info in zf.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (source / info.filename).chmod(mode)
    return source


def run_autograder(root: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable, **env}
    full.pop("GRADER_COURSE", None)
    return subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        cwd=root,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bundle_has_the_scripts_the_package_and_the_spec_and_no_solutions(bundle):
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        run = zf.read("run_autograder").decode()
        setup = zf.read("setup.sh").decode()
    names = set(infos)
    assert {"setup.sh", "run_autograder", "pyproject.toml"} <= names
    assert "assignments/recursion/assignment.toml" in names
    assert "grader/__init__.py" in names and "grader/integrations/gradescope.py" in names
    assert "grader/sandbox/child.py" in names
    for name in names:
        top = name.split("/")[0]
        assert top not in ("templates", "tests", ".git", "examples"), name
        if top == "reference":  # recursion has drawn calls: its reference, root's alone
            assert name == "reference/recursion.py", name
            assert infos[name].external_attr >> 16 & 0o777 == 0o600, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        if name.startswith("assignments/"):
            assert name.startswith("assignments/recursion/"), name
    for script in ("run_autograder", "setup.sh"):
        mode = infos[script].external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, (script, oct(mode))
        assert infos[script].create_system == 3  # Unix: the mode above is honoured
    assert run.startswith("#!/usr/bin/env bash") and setup.startswith("#!/usr/bin/env bash")
    assert "grader.integrations.gradescope run" in run and "ASSIGNMENT='recursion'" in run
    assert "pip install" in setup and "$SOURCE" in setup


def test_bundle_is_the_same_bytes_twice(bundle, tmp_path):
    from grader.course.discovery import find_course
    from grader.integrations.gradescope import build_bundle

    again = build_bundle(find_course(ROOT), "recursion", tmp_path / "b.zip", source_root=ROOT)
    assert again.read_bytes() == bundle.read_bytes()


def test_unknown_assignment_or_source_root_is_an_error_naming_the_fix(tmp_path):
    from grader.course.discovery import find_course
    from grader.errors import GraderError
    from grader.integrations.gradescope import build_bundle

    with pytest.raises(GraderError, match="no spec at"):
        build_bundle(find_course(ROOT), "nope", tmp_path / "x.zip", source_root=ROOT)
    with pytest.raises(GraderError, match="source checkout"):
        build_bundle(find_course(ROOT), "recursion", tmp_path / "x.zip", source_root=tmp_path)
    assert not (tmp_path / "x.zip").exists()


def test_bundled_package_is_complete(bundle, tmp_path):
    """The grader inside the zip imports on its own (what setup.sh installs)."""
    source = unpack(bundle, tmp_path)
    code = "import grader, grader.integrations.gradescope, grader.pipeline, grader.cli; print(grader.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(source)),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve().is_relative_to(source.resolve())


@pytest.mark.slow
def test_run_autograder_grades_with_all_checks_and_writes_valid_results(bundle, tmp_path):
    root = tmp_path / "autograder"
    unpack(bundle, root)
    (root / "submission").mkdir()
    (root / "submission" / "recursion.py").write_bytes(
        (CORPUS / "broken" / "recursion_memo_never_read.py").read_bytes()
    )
    out = run_autograder(root)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert validate_results(data) == [], data
    # The bundle holds recursion's reference (root's alone): the drawn calls are graded there
    # as locally; the naive mfib gets no memoization points.
    assert data["score"] == 6
    assert sum(t["max_score"] for t in data["tests"]) == 10
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["memoization"]["score"] == 0 and tests["memoization"]["status"] == "failed"
    assert "SKIPPED" not in tests["memoization"]["output"]
    assert "mfib(40)" in tests["calls of mfib"]["output"]
    assert tests["the lecture's numbers"]["status"] == "failed"  # mfib(50) never finishes


def test_run_autograder_finds_a_file_of_another_name_and_says_when_there_is_none(bundle, tmp_path):
    root = tmp_path / "autograder"
    unpack(bundle, root)
    sub = root / "submission"
    sub.mkdir()
    (sub / "a.py").write_text("x = 1\n")
    (sub / "b.py").write_text("x = 2\n")
    out = run_autograder(root)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert validate_results(data) == []
    assert data["score"] == 0 and "submit recursion.py or recursion.ipynb" in data["output"]
    assert "a.py, b.py" in data["output"]


def test_results_are_written_when_the_grader_cannot_start(bundle, tmp_path):
    root = tmp_path / "autograder"
    unpack(bundle, root)
    (root / "submission").mkdir()
    out = run_autograder(root, GRADER_PYTHON="/bin/false")
    assert out.returncode == 0
    data = json.loads((root / "results" / "results.json").read_text())
    assert validate_results(data) == []
    assert data["score"] == 0 and "not your fault" in data["output"]


def test_results_are_written_when_grading_fails_unexpectedly(tmp_path, monkeypatch):
    from grader.integrations import gradescope as _gradescope

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_gradescope, "_grade", broken)
    monkeypatch.setattr(_gradescope, "_namespaces_available", lambda: True)
    results = tmp_path / "results" / "results.json"
    code = _gradescope.main(
        [
            "run",
            "--course",
            str(ROOT),
            "--assignment",
            "recursion",
            "--submission",
            str(tmp_path),
            "--results",
            str(results),
        ]
    )
    assert code == 1
    data = json.loads(results.read_text())
    assert validate_results(data) == []
    assert data["score"] == 0 and "disk on fire" in data["output"]
    assert "not your fault" in data["output"]


@pytest.mark.slow
def test_graded_in_a_child_process_results_come_back_through_a_pipe(tmp_path):
    """The path taken where the container refuses namespaces to root (there as an unprivileged uid)."""
    from grader.integrations.gradescope import grade_in_subprocess

    sub = tmp_path / "recursion.py"
    sub.write_bytes((CORPUS / "broken" / "recursion_memo_never_read.py").read_bytes())
    argv = ["run", "--course", str(ROOT), "--assignment", "recursion", "--submission", str(sub)]
    data = grade_in_subprocess(argv, user=None)
    assert validate_results(data) == []
    assert data["score"] == 6  # the course folder holds the reference: drawn calls graded


def test_find_submission_rules(tmp_path):
    from grader.course.discovery import find_course
    from grader.integrations.gradescope import NoSubmission, find_submission

    course = find_course(ROOT)
    recursion = course.assignment("recursion")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(NoSubmission, match="no .py or .ipynb"):
        find_submission(tmp_path, recursion)
    (tmp_path / "mine.py").write_text("")
    assert find_submission(tmp_path, recursion) == tmp_path / "mine.py"
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "recursion.py").write_text("")
    assert find_submission(tmp_path, recursion) == tmp_path / "repo" / "recursion.py"
    (tmp_path / "recursion.ipynb").write_text("{}")
    (tmp_path / "recursion.py").write_text("")
    assert find_submission(tmp_path, recursion) == tmp_path / "recursion.ipynb"

    multi = course.assignment("mnist_softmax")
    assert multi.files
    folder = tmp_path / "m"
    (folder / "hw" / "mnist_softmax").mkdir(parents=True)
    assert find_submission(folder, multi) == folder  # nothing there: load_parts names it
    for name in multi.files:
        (folder / "hw" / "mnist_softmax" / name).write_text("")
    assert find_submission(folder, multi) == folder / "hw" / "mnist_softmax"
    (folder / multi.files[0]).write_text("")
    assert find_submission(folder, multi) == folder


FALLBACK_DRIVER = """
import sys
from grader.integrations import gradescope as _gradescope
_gradescope._namespaces_available = lambda: False  # as in a Docker container without them
sys.exit(_gradescope.main(sys.argv[1:]))
"""

# The unprivileged uid must be able to run this interpreter: where it lies under a folder closed to
# others (pyenv's /root/.pyenv under a 0700 /root), bind it back under an open tmpfs in a
# private mount namespace (as the sandbox does), which ends with the command.
REOPEN = """
set -e
mount --make-rprivate /
mkdir -p "$KEEP"
mount --bind "$CLOSED/$INSIDE" "$KEEP"
mount -t tmpfs -o mode=755 tmpfs "$CLOSED"
mkdir -p "$CLOSED/$INSIDE"
mount --bind "$KEEP" "$CLOSED/$INSIDE"
exec "$@"
"""


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (as on Gradescope)"
)
def test_without_namespaces_root_grades_as_an_unprivileged_uid(tmp_path):
    """Gradescope's container may refuse root the namespaces: grading then runs as a uid of its own."""
    import shutil

    sub = tmp_path / "submission"
    sub.mkdir()
    shutil.copy(CORPUS / "broken" / "recursion_memo_never_read.py", sub / "recursion.py")
    results = tmp_path / "results" / "results.json"
    driver = tmp_path / "driver.py"
    driver.write_text(FALLBACK_DRIVER)
    cmd = [
        sys.executable,
        str(driver),
        "run",
        "--course",
        str(ROOT),
        "--assignment",
        "recursion",
        "--submission",
        str(sub),
        "--results",
        str(results),
    ]
    env = dict(os.environ)
    closed = [
        p
        for p in Path(sys.base_prefix).resolve().parents
        if p != Path("/") and not p.stat().st_mode & 0o001
    ]
    if closed:
        if not shutil.which("unshare"):
            pytest.skip("the interpreter is closed to other users and unshare(1) is missing")
        top = closed[-1]
        env.update(
            KEEP=str(tmp_path / "keep"),
            CLOSED=str(top),
            INSIDE=str(Path(sys.base_prefix).resolve().relative_to(top).parts[0]),
        )
        cmd = ["unshare", "-m", "bash", "-c", REOPEN, "reopen", *cmd]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if "unshare failed" in out.stderr or "Operation not permitted" in out.stderr:
        pytest.skip(f"no mount namespace here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(results.read_text())
    assert validate_results(data) == []
    assert data["score"] == 6  # the course here holds the reference: drawn calls graded
    assert "the unprivileged uid 64999" in data["extra_data"]["gradescope"]["note"]
    assert not any("runs as unprivileged uid" in n for n in data["extra_data"]["isolation"])
