"""A check from outside the package: tests/plugin/ is installed with pip (offline, into a folder of
its own) and found through the entry-point group `grader.checks`, by the real entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GRADER, ROOT

PLUGIN = Path(__file__).resolve().parent / "plugin"

SPEC = """\
title = "A loss record, judged by a plugin check"
source = "tests/test_plugin.py"
api = "numpy"

[collect]
arrays = ["loss_record"]

[[checks]]
name = "loss record length"
check = "record_length"
points = 2
params = { name = "loss_record", minimum = 10 }
"""

SUBMISSION = """\
loss = 1.0
loss_record = []
for step in range({steps}):
    loss = 0.9 * loss
    loss_record.append(loss)
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The plugin, installed into a folder of its own (what PYTHONPATH then points at)."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN, work / "source")  # pip builds in place: never in the repo
    site = work / "site"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert list(site.glob("grader_example_checks-*.dist-info/entry_points.txt"))
    return site


@pytest.fixture
def course(tmp_path) -> Path:
    spec = tmp_path / "course" / "assignments" / "loss_record" / "assignment.toml"
    spec.parent.mkdir(parents=True)
    spec.write_text(SPEC)
    return tmp_path / "course"


def grader(course: Path, *args: object, site: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADER_COURSE")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [*GRADER, "--course", str(course), *map(str, args)],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_the_plugin_its_check_is_unknown(course):
    out = grader(course, "list")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "unknown check 'record_length'" in out.stderr
    assert f"{course / 'assignments' / 'loss_record' / 'assignment.toml'}: [[checks]] #1" in (
        out.stderr
    )


def test_with_the_plugin_the_spec_loads(course, plugin_site):
    out = grader(course, "list", site=plugin_site)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.stdout.splitlines()]
    assert [
        "loss_record",
        "A loss record, judged by a plugin check",
        "tests/test_plugin.py",
        "2",
    ] in rows


@pytest.mark.slow
@pytest.mark.parametrize(
    "steps, score, message",
    [
        (12, 2, "`loss_record` has 12 entries"),
        (3, 0, "`loss_record` has 3 entries; expected at least 10 (append one per training step)"),
    ],
)
def test_the_plugin_check_grades_a_submission(course, plugin_site, steps, score, message):
    submission = course.parent / "mine.py"
    submission.write_text(SUBMISSION.format(steps=steps))
    out = grader(course, "check", submission, "-a", "loss_record", "--json", site=plugin_site)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    [test] = data["tests"]
    assert (test["name"], test["score"], test["max_score"]) == ("loss record length", score, 2)
    assert test["output"].startswith(message), test["output"]
    assert test["status"] == ("passed" if score else "failed")
    assert data["score"] == score


def test_the_readme_shows_the_plugin_as_it_is():
    """README, "Adding a check": the plugin's module, its entry point and the spec, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Adding a check\n", 1)[1].split("\n## ", 1)[0]
    module = (PLUGIN / "grader_example_checks.py").read_text(encoding="utf-8")
    assert f"```python\n{module}```" in section
    pyproject = (PLUGIN / "pyproject.toml").read_text(encoding="utf-8")
    assert f"```toml\n{pyproject[pyproject.index('[project.entry-points') :]}```" in section
    assert f"```toml\n{SPEC[SPEC.index('[collect]') :]}```" in section
