"""Shared fixtures, and the line between the fast suite and the slow one.

A test that starts the sandbox (a child process per run, TensorFlow start-up in most) is marked
`slow`; `pytest -m "not slow"` is the fast suite, plain `pytest` runs everything. Two guards keep
the marks honest: a test that asks for the `runner` fixture without the mark fails before its
fixtures are set up, and a test of this process that starts a sandboxed child (through
`grade_file`, `grade_many`, `Context.grade`, ...) without the mark fails at teardown. Children
started by a command the test runs in a subprocess (`python -m grader check ...`) are not seen
here: those tests carry the mark by hand.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
GRADER = [sys.executable, "-m", "grader"]

CHILD = "grader.sandbox.child"  # the module the runner starts: `python -I -m grader.sandbox.child`
ZYGOTE = "grader.sandbox.zygote"  # the warm runner's worker, which forks the jobs


class _SandboxWatch:
    """An audit hook: counts the sandboxed children the running test starts in this process."""

    def __init__(self) -> None:
        self.test: str | None = None
        self.started = 0

    def __call__(self, event: str, args: tuple) -> None:
        if event != "subprocess.Popen" or self.test is None:
            return
        argv = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
        if any(str(a) in (CHILD, ZYGOTE) for a in argv):
            self.started += 1


_watch = _SandboxWatch()
sys.addaudithook(_watch)  # audit hooks cannot be removed: it only counts, and only during a test


USER_CACHE = "GRADER_CACHE"  # grader.run.store.ENV_CACHE: the per-user cache's folder
_saved_cache: list[str | None] = []


def pytest_configure(config: pytest.Config) -> None:
    """The per-user cache (reference runs) goes to a temporary folder for the whole session,
    set before any test or fixture runs so that every `grader` a test starts inherits it: no
    test writes the real ~/.cache/grader, and none is helped by what an earlier run left."""
    _saved_cache.append(os.environ.get(USER_CACHE))
    os.environ[USER_CACHE] = tempfile.mkdtemp(prefix="grader-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _saved_cache:
        return
    shutil.rmtree(os.environ.get(USER_CACHE, ""), ignore_errors=True)
    old = _saved_cache.pop()
    if old is None:
        os.environ.pop(USER_CACHE, None)
    else:
        os.environ[USER_CACHE] = old


@pytest.fixture
def user_cache() -> Path:
    """The session's temporary per-user cache folder."""
    return Path(os.environ[USER_CACHE])


def _slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _watch.test, _watch.started = item.nodeid, 0
    if "runner" in getattr(item, "fixturenames", ()) and not _slow(item):
        pytest.fail(
            f"{item.nodeid} uses the sandbox runner but is not marked slow: add "
            f"@pytest.mark.slow (or pytestmark = pytest.mark.slow in its module)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _sandbox_only_in_slow_tests(request: pytest.FixtureRequest):
    yield
    started, _watch.test = _watch.started, None
    if started and not _slow(request.node):
        pytest.fail(
            f"{request.node.nodeid} started {started} sandboxed child(ren) but is not marked "
            f"slow: add @pytest.mark.slow",
            pytrace=False,
        )


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
