"""The trust boundary: student code runs only in the child, sees nothing private, cannot reach
the network, leaves nothing running, and nothing it writes can forge a score."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from grader.run.runner import Job
from grader.wire import Collect, Limits
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def job(code: str, **kw) -> Job:
    code = textwrap.dedent(code)
    lines = code.count("\n") + 1
    defaults = dict(
        display_name="student.py",
        code=code,
        where=tuple(f"line {i}" for i in range(1, lines + 1)),
        collect={"arrays": ["result"]},
        inputs={},
        seed=7,
        tensorflow=False,
    )
    defaults.update(kw)
    limits = {
        k: defaults.pop(k) for k in ("timeout_s", "memory_mb", "call_timeout_s") if k in defaults
    }
    limits.setdefault("timeout_s", 20)
    limits.setdefault("memory_mb", 1024)
    defaults["limits"] = Limits(**limits)
    defaults["collect"] = Collect.from_mapping(defaults["collect"], "test")
    return Job(**defaults)


def test_student_code_cannot_see_the_course(runner):
    private = [ROOT / "reference", ROOT / "assignments", ROOT / ".git", ROOT / "tests"]
    private += [Path.home() / ".ssh", Path.home() / ".bashrc", "/etc/shadow", "/run"]
    out = runner.run(
        job(
            f"""
            import os
            result = [int(os.path.exists(p)) for p in {[str(p) for p in private]!r}]
            """
        )
    )
    assert out.status == "completed", out.message
    assert out.arrays["result"].tolist() == [0] * len(private)


def test_no_network(runner):
    out = runner.run(
        job(
            """
            import socket
            try:
                socket.create_connection(("127.0.0.1", 22), timeout=2)
                result = 1
            except OSError:
                result = 0
            """
        )
    )
    assert out.arrays["result"].tolist() == 0
    assert any("network: none" in line for line in out.isolation)


def test_runs_as_an_unprivileged_uid_with_a_private_home(runner):
    """Inside, uid 1000 in a private home; outside (seen from the host's /proc while the job
    runs), a fresh uid of its own when the grader is root, the grader's own uid otherwise."""
    seen: list[int] = []

    def watch():
        for _ in range(400):
            for cmd in Path("/proc").glob("[0-9]*/cmdline"):
                if _reads(cmd) == b"sleep\x002.0731\x00":
                    seen.append(cmd.parent.stat().st_uid)
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out = runner.run(
        job(
            """
            import os, subprocess
            subprocess.run(["sleep", "2.0731"])
            result = [os.getuid(), os.environ["HOME"] == os.getcwd()]
            try:
                open("/etc/shadow").read()
                result.append(1)
            except OSError:
                result.append(0)
            """
        )
    )
    watcher.join()
    inside, home_is_scratch, shadow = out.arrays["result"].tolist()
    assert inside == 1000 and home_is_scratch == 1 and shadow == 0
    assert len(seen) == 1
    assert seen[0] >= (1 << 20) if os.geteuid() == 0 else seen[0] == os.geteuid()


def test_background_processes_are_killed(runner):
    out = runner.run(
        job(
            """
            import subprocess
            subprocess.Popen(["sleep", "3011.25"], start_new_session=True)
            result = 1
            """
        )
    )
    assert out.status == "completed", out.message
    assert not [
        p for p in Path("/proc").glob("[0-9]*/cmdline") if _reads(p) == b"sleep\x003011.25\x00"
    ]


def _reads(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_plt_show_does_not_block(runner):
    out = runner.run(
        job(
            """
            import matplotlib.pyplot as plt
            plt.plot([1, 2, 3])
            plt.show()
            result = 1
            """,
            timeout_s=30,
        )
    )
    assert out.status == "completed" and out.arrays["result"].tolist() == 1


def test_forged_artifacts_are_refused(runner):
    """A child that writes its own pickled 'results' and leaves before the real ones are
    written gets a crash status, never a score."""
    out = runner.run(
        job(
            """
            import os, json, pickle, zipfile
            os.makedirs("out", exist_ok=True)
            with zipfile.ZipFile("out/arrays.npz", "w") as z:
                z.writestr("result.npy", pickle.dumps({"score": 100}))
            json.dump({"version": 1, "arrays": {"result": {"shape": [], "dtype": "object"}}},
                      open("out/manifest.json", "w"))
            os._exit(0)
            """
        )
    )
    assert out.status == "crash"
    assert "could not be read" in out.message
    assert out.arrays == {}


def test_student_traceback_shows_only_their_frames(runner):
    out = runner.run(
        job(
            """
            import json

            def helper(v):
                return 1 / v

            result = helper(0)
            """
        )
    )
    assert out.status == "exception"
    assert out.message.splitlines() == [
        "Traceback (your code only):",
        "  line 7",
        "    result = helper(0)",
        "  line 5, in helper",
        "    return 1 / v",
        "ZeroDivisionError: division by zero",
    ]


def test_same_submission_same_score(course, runner):
    from grader.pipeline import grade_file

    spec = course.assignment("linear_regression")
    path = ROOT / "reference" / "linear_regression.py"
    first = grade_file(spec, path, runner)
    second = grade_file(spec, path, runner)
    assert first.score == second.score == first.max_score
    assert [c.message for c in first.checks] == [c.message for c in second.checks]


def test_output_folder_linked_elsewhere_is_refused(runner):
    """The child owns its scratch folder; pointing `out` at another folder reads nothing."""
    out = runner.run(
        job(
            f"""
            import os
            os.symlink({str(ROOT / "tests" / "corpus")!r}, "out")
            os._exit(0)
            """
        )
    )
    assert out.status == "crash" and "could not be read" in out.message


def test_lecture_data_entry_points_are_served_offline(course, runner):
    """input_data.read_data_sets and keras' mnist.load_data() work offline, give the served
    splits, and `mnist.test` / `(x_test, y_test)` is the validation split, not the held-out."""
    from grader.pipeline import data_for, served

    splits = data_for(course.assignment("mnist_mlp"))
    out = runner.run(
        job(
            """
            import tensorflow as tf
            from tensorflow.examples.tutorials.mnist import input_data
            mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)
            batch_x, batch_y = mnist.train.next_batch(50)
            (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
            result = [mnist.train.images.shape[0], mnist.test.images.shape[0], batch_x.shape[1],
                      batch_y.shape[1], float(mnist.train.images.max()), x_train.shape[0],
                      x_test.shape[0], int(x_test.max())]
            """,
            tensorflow=True,
            datasets=served(course.assignment("mnist_mlp"), splits),
            timeout_s=120,
            memory_mb=3072,
        )
    )
    assert out.status == "completed", out.message + out.stderr[-2000:]
    n_train, n_valid = len(splits.train_x), len(splits.valid_x)
    assert out.arrays["result"].tolist() == [n_train, n_valid, 784, 10, 1.0, n_train, n_valid, 255]


def test_served_data_never_holds_the_heldout_set(course):
    from grader.pipeline import data_for, served

    splits = data_for(course.assignment("mnist_mlp"))
    data = served(course.assignment("mnist_mlp"), splits)["mnist"]
    assert set(data) == {"train_x", "train_y", "valid_x", "valid_y"}
    seen = {row.tobytes() for row in np.concatenate([data["train_x"], data["valid_x"]])}
    assert not any(row.tobytes() in seen for row in splits.heldout_x)


def test_interactive_session_is_tracked_like_session(runner):
    """Code that trains in a `tf.InteractiveSession()` (never closed, or closed) leaves its
    trained values for the grader, exactly as with `tf.Session()`."""
    for close in ("", "sess.close()"):
        out = runner.run(
            job(
                f"""
                import tensorflow as tf
                x = tf.placeholder(tf.float32, [None])
                w = tf.Variable(0.0)
                loss = tf.reduce_mean(tf.square(w * x - 2.0 * x))
                train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
                sess = tf.InteractiveSession()
                tf.global_variables_initializer().run()
                for _ in range(200):
                    train.run(feed_dict={{x: [1.0, 2.0, 3.0]}})
                {close}
                """,
                collect={"params": ["w"]},
                tensorflow=True,
                api="tf1",
                timeout_s=120,
                memory_mb=3072,
            )
        )
        assert out.status == "completed", out.message + out.stderr[-2000:]
        assert out.arrays["w"].tolist() == pytest.approx(2.0, abs=1e-3)


def test_blocking_calls_return_at_once_with_a_note(runner):
    started = time.monotonic()
    out = runner.run(
        job(
            """
            import matplotlib.pyplot as plt
            plt.plot([1, 2, 3])
            plt.pause(30)
            pressed = plt.waitforbuttonpress()
            points = plt.ginput(2)
            answer = input("continue? ")
            result = [pressed is None, len(points), len(answer)]
            """,
            timeout_s=60,
        )
    )
    assert out.status == "completed", out.message + out.stderr[-2000:]
    assert out.arrays["result"].tolist() == [1, 0, 0]
    assert time.monotonic() - started < 25  # plt.pause(30) did not sleep
    assert "[grader] input() is not available while grading: returned ''" in out.stdout
    for name in ("plt.pause()", "waitforbuttonpress()", "ginput()"):
        assert f"[grader] {name}" in out.stdout


def test_tf_contrib_names_its_replacement(runner):
    out = runner.run(
        job(
            """
            import tensorflow as tf
            try:
                from tensorflow.contrib import rnn
                imported = 1
            except ImportError as exc:
                imported = 0
                said = str(exc)
            result = [imported, int("tf.keras.layers" in said)]
            init = tf.contrib.layers.xavier_initializer()
            """,
            tensorflow=True,
            api="tf1",
            timeout_s=120,
            memory_mb=3072,
        )
    )
    assert out.status == "exception"
    assert out.message.splitlines()[-1] == (
        "AttributeError: tf.contrib was removed in TensorFlow 2: "
        "tf.contrib.layers.xavier_initializer -> tf.glorot_uniform_initializer "
        "(tf.keras.initializers.GlorotUniform)"
    )
    assert out.arrays["result"].tolist() == [0, 1]  # ImportError fallbacks still work


def test_code_sized_for_full_mnist_is_told_the_served_size(course, runner):
    from grader.pipeline import data_for, served

    splits = data_for(course.assignment("mnist_mlp"))
    data = served(course.assignment("mnist_mlp"), splits)
    n_train = len(splits.train_x)
    for line in ("x = x_train.reshape(60000, 784)", "x = x_train[n_train]"):
        out = runner.run(
            job(
                f"""
                import tensorflow as tf
                (x_train, y_train), _ = tf.keras.datasets.mnist.load_data()
                n_train = {n_train}
                {line}
                """,
                tensorflow=True,
                datasets=data,
                timeout_s=120,
                memory_mb=3072,
            )
        )
        assert out.status == "exception", out.message
        assert out.message.splitlines()[-1].startswith(
            f"the grader serves {n_train:,} training images ("
        ), out.message
        assert "not 60,000: write the loop size-independently" in out.message
