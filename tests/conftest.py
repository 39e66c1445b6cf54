from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
GRADER = [sys.executable, "-m", "grader"]


@pytest.fixture(scope="session")
def course():
    from grader.course.discovery import find_course

    return find_course(ROOT)


@pytest.fixture(scope="session")
def runner():
    from grader.run.runner import ColdRunner

    r = ColdRunner(slots=2)
    yield r
    r.close()


@pytest.fixture(scope="session")
def hide(course):
    return tuple(str(p) for p in course.private_dirs())
