"""The code base lints clean (ruff, configured in pyproject.toml; installed by the test extra)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_check_and_format():
    lint = ruff("check", "grader", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = ruff("format", "--check", "grader", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_clean_on_the_trusted_side():
    """mypy (configured in pyproject.toml: the package without the sandboxed child's side,
    which runs untrusted code and is kept to the standard library's habits) reports nothing."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
