"""The GitHub Actions workflows shipped for instructors in ci/: they parse, trigger on push, run
the commands they promise, and the student check fails only when the grader could not check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

CI = ROOT / "ci"


def load(name: str) -> dict:
    data = yaml.safe_load((CI / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    # YAML 1.1 reads the key `on` as the boolean True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow: dict) -> list[dict]:
    jobs = workflow["jobs"]
    assert len(jobs) == 1
    (job,) = jobs.values()
    assert job["runs-on"].startswith("ubuntu")
    return job["steps"]


def commands(workflow: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(workflow))


def uses(workflow: dict, action: str) -> list[dict]:
    return [s for s in steps(workflow) if s.get("uses", "").split("@")[0] == action]


@pytest.mark.parametrize("name", ["course-validate.yml", "student-check.yml"])
def test_runs_on_every_push_with_python_311(name):
    wf = load(name)
    assert "push" in wf["on"]
    assert wf["on"]["push"] is None  # every branch, every push
    assert uses(wf, "actions/checkout")
    (setup,) = uses(wf, "actions/setup-python")
    assert str(setup["with"]["python-version"]) == "3.11"


def test_course_workflow_installs_the_grader_and_validates():
    wf = load("course-validate.yml")
    run = commands(wf)
    assert "pip install -e ." in run
    lines = [line.strip() for line in run.splitlines()]
    assert "grader validate" in lines
    assert "grader generate --check" in lines
    # The install comes before the commands that need it.
    assert run.index("pip install -e .") < run.index("grader generate --check")
    # Fashion-MNIST is offered, commented out.
    text = (CI / "course-validate.yml").read_text()
    assert "dataset-fashion-mnist" in text and "dataset-fashion-mnist" not in run
    assert any(
        line.lstrip().startswith("#") and "apt-get install" in line and "fashion" in line
        for line in text.splitlines()
    )


def check_step(wf: dict) -> dict:
    (step,) = [s for s in steps(wf) if "grader" in s.get("run", "") and " check " in s["run"]]
    return step


def test_student_workflow_checks_each_file_named_after_an_assignment():
    wf = load("student-check.yml")
    run = check_step(wf)["run"]
    assert 'check "$file" --assignment "$name"' in run
    assert "assignments/*/assignment.toml" in run
    for pattern in ('"$name.ipynb"', '"$name.py"'):
        assert pattern in run
    assert "pip install -e" in commands(wf)
    assert any(s["with"].get("repository") for s in uses(wf, "actions/checkout") if "with" in s)


FAKE_GRADER = """#!/usr/bin/env bash
# A stand-in for `grader --course DIR check FILE --assignment NAME --json`: records the call,
# prints a results.json with a low score, exits with $FAKE_EXIT.
echo "$*" >> "$FAKE_LOG"
cat <<'EOF'
{"score": 1.0, "output": "x: 1 / 10", "tests": [
 {"name": "a", "score": 1.0, "max_score": 10.0, "status": "failed", "output": "low",
  "visibility": "visible"}]}
EOF
exit "${FAKE_EXIT:-0}"
"""


def run_check_step(tmp_path: Path, fake_exit: int, files: dict[str, str]):
    """The step's own script, as GitHub runs it, in a student repository with a fake grader."""
    script = check_step(load("student-check.yml"))["run"]
    repo = tmp_path / "repo"
    course = repo / ".course" / "assignments"
    (course / "recursion").mkdir(parents=True)
    (course / "recursion" / "assignment.toml").write_text('title = "r"\n')
    (course / "mnist_softmax").mkdir()
    (course / "mnist_softmax" / "assignment.toml").write_text(
        '[run]\nfiles = ["NN_comp_graph.py", "Train_NN.py", "Test_NN.py"]\n'
    )
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "grader").write_text(FAKE_GRADER)
    (bin_dir / "grader").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    log = tmp_path / "calls.log"
    log.touch()
    summary = tmp_path / "summary.md"
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        FAKE_EXIT=str(fake_exit),
        FAKE_LOG=str(log),
        GITHUB_STEP_SUMMARY=str(summary),
    )
    (tmp_path / "step.sh").write_text(script)
    out = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(tmp_path / "step.sh")],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines()
    return out, calls, summary.read_text() if summary.exists() else ""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_low_score_passes_the_job_and_shows_in_the_summary(tmp_path):
    files = {"recursion.ipynb": "{}", "recursion.py": "", "mnist_softmax/Train_NN.py": ""}
    out, calls, summary = run_check_step(tmp_path, 0, files)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(calls) == [
        "--course .course check mnist_softmax --assignment mnist_softmax --json",
        "--course .course check recursion.ipynb --assignment recursion --json",
    ]
    assert "### recursion: 1 / 10" in summary and "FAILED a (1/10): low" in summary
    results = tmp_path / "repo" / ".check-results" / "recursion.json"
    assert json.loads(results.read_text())["score"] == 1.0


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("code", [1, 2])
def test_the_job_fails_when_the_grader_could_not_check(tmp_path, code):
    out, calls, _ = run_check_step(tmp_path, code, {"recursion.py": ""})
    assert out.returncode == 1, out.stdout + out.stderr
    assert calls == ["--course .course check recursion.py --assignment recursion --json"]
    assert "::error file=recursion.py::grader check could not check" in out.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_no_submitted_file_is_a_warning_not_a_failure(tmp_path):
    out, calls, _ = run_check_step(tmp_path, 0, {"notes.md": ""})
    assert out.returncode == 0 and calls == []
    assert "::warning::no file named after an assignment" in out.stdout
