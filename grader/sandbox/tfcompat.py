"""TensorFlow 1 code, as the lecture notes write it, running unmodified on TensorFlow 2.x.

Runs in the sandboxed child only. `install()` imports TensorFlow once, switches to graph mode
(`tf.compat.v1.disable_v2_behavior()`), and makes `import tensorflow as tf` give the
`tensorflow.compat.v1` API, so `tf.placeholder`, `tf.Session()`, `tf.random_normal`,
`tf.train.GradientDescentOptimizer` and `tf.global_variables_initializer` work as in the notes.
Code written against `tensorflow.compat.v1` directly works too.

Sessions (`tf.Session`, `tf.InteractiveSession`) are tracked: when one is closed (also by leaving a `with tf.Session() as sess:`
block) the values of its variables are kept, so the trained weights can be collected after
the student's code has finished, whichever session trained them.
"""

from __future__ import annotations

import sys

import numpy as np

from grader.sandbox import contrib

_v1 = None
_BaseSession = None  # tf.compat.v1.Session itself, for the grader's own sessions
_SESSIONS: list = []  # every session the student opened, oldest first
_SNAPSHOTS: dict[int, dict] = {}  # id(session) -> {variable name: value}
_SEED = 0


def install(seed: int) -> None:
    global _v1, _SEED, _BaseSession
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as real_tf  # noqa: F401 - the real package, imported once
    import tensorflow.compat.v1 as v1

    v1.disable_v2_behavior()
    v1.logging.set_verbosity(v1.logging.ERROR)
    try:
        real_tf.get_logger().setLevel("ERROR")
    except Exception:  # noqa: BLE001
        pass
    _v1 = v1
    _SEED = seed
    _BaseSession = v1.Session
    session = _tracked(v1.Session, "Session")
    interactive = _tracked(v1.InteractiveSession, "InteractiveSession")
    reset = v1.reset_default_graph

    def reset_default_graph():
        reset()
        v1.set_random_seed(_SEED)

    for module in (v1, v1.compat.v1):
        module.Session = session
        module.InteractiveSession = interactive
        module.reset_default_graph = reset_default_graph
    v1.set_random_seed(seed)
    # `import tensorflow as tf` now gives the v1 API, as in the lecture notes.
    sys.modules["tensorflow"] = v1
    contrib.install(v1)
    v1.compat.v1.contrib = v1.contrib


def _tracked(base, name: str):
    """A session class like `base` (tf.Session, tf.InteractiveSession) whose sessions are kept
    in `_SESSIONS` and leave a snapshot of their variables when closed."""
    v1 = _v1

    class Tracked(base):
        def __init__(self, target="", graph=None, config=None):
            if config is None:
                config = v1.ConfigProto()
            # One thread each: deterministic results, and two graders share two cores fairly.
            config.intra_op_parallelism_threads = 1
            config.inter_op_parallelism_threads = 1
            super().__init__(target, graph, config)
            _SESSIONS.append(self)

        def close(self):
            if not getattr(self, "_closed", True):
                _snapshot(self)
            super().close()

        def _close_unseen(self):
            """Close without a snapshot (the grader's reset between stages)."""
            base.close(self)

    Tracked.__name__ = Tracked.__qualname__ = name
    return Tracked


def reset() -> None:
    """Forget the previous stage: a new default graph (seeded), no sessions, no snapshots."""
    for sess in _SESSIONS:
        try:
            sess._close_unseen()
        except Exception:  # noqa: BLE001
            pass
    _SESSIONS.clear()
    _SNAPSHOTS.clear()
    _v1.reset_default_graph()


def install_tf2(seed: int) -> None:
    """TensorFlow 2 as it is (Keras assignments), seeded, one thread per op, deterministic."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    contrib.install(tf)


def v1():
    """The `tensorflow.compat.v1` module `install()` imported."""
    return _v1


def is_tensorish(value) -> bool:
    v1 = _v1
    if v1 is None:  # TensorFlow 2 (Keras assignments): eager values convert by themselves
        return False
    return isinstance(value, (v1.Variable, v1.Tensor)) or type(value).__name__.endswith("Variable")


def describe(value) -> dict:
    """Kind, shape and dtype of a placeholder (or whatever the name holds)."""
    v1 = _v1
    if isinstance(value, v1.Tensor):
        kind = "placeholder" if value.op.type in ("Placeholder", "PlaceholderV2") else "tensor"
        try:
            shape = value.shape.as_list()
        except ValueError:
            shape = None
        return {"kind": kind, "shape": shape, "dtype": value.dtype.name}
    return {"kind": type(value).__name__}


def static_shape(value) -> list | None:
    """The declared shape of a variable or tensor (None dims kept), without running anything."""
    try:
        return value.shape.as_list()
    except (AttributeError, ValueError):
        return None


def _snapshot(sess) -> None:
    """Keep the values of every initialized global variable of a session's graph."""
    v1 = _v1
    variables = sess.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
    values = {}
    if variables:
        try:
            got = sess.run(variables)
            values = {v.name: np.array(x) for v, x in zip(variables, got, strict=True)}
        except Exception:  # noqa: BLE001 - some are uninitialized: take them one by one
            for v in variables:
                try:
                    values[v.name] = np.array(sess.run(v))
                except Exception:  # noqa: BLE001
                    pass
    _SNAPSHOTS[id(sess)] = {"graph": sess.graph, "values": values}


def _final_snapshots() -> list[dict]:
    for sess in _SESSIONS:
        if not getattr(sess, "_closed", True) and id(sess) not in _SNAPSHOTS:
            _snapshot(sess)
    return [_SNAPSHOTS[id(s)] for s in reversed(_SESSIONS) if id(s) in _SNAPSHOTS]


def value_of(value):
    """The trained value of a variable (from the newest session that had it), or of a tensor."""
    v1 = _v1
    if isinstance(value, v1.Variable) or type(value).__name__.endswith("Variable"):
        for snap in _final_snapshots():
            if snap["graph"] is value.graph and value.name in snap["values"]:
                return snap["values"][value.name]
        raise ValueError(
            "it has no trained value: it was never initialized and run in a tf.Session"
        )
    return evaluate(value, {})


def evaluate(tensor, feeds: dict):
    """Evaluate a tensor of the student's graph with the trained variable values loaded into a
    fresh session (the student's own sessions may be closed). Placeholders with a fixed batch
    size are fed in chunks of that size."""
    v1 = _v1
    graph = tensor.graph
    snaps = [s for s in _final_snapshots() if s["graph"] is graph]
    with graph.as_default():
        config = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        sess = _BaseSession(graph=graph, config=config)
        try:
            loaded = set()
            for snap in snaps:  # newest first
                for var in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES):
                    if var.name in snap["values"] and var.name not in loaded:
                        var.load(snap["values"][var.name], sess)
                        loaded.add(var.name)
            chunk = None
            for ph, _data in feeds.items():
                dims = ph.shape.as_list() if ph.shape.rank else []
                if dims and dims[0] is not None:
                    chunk = dims[0]
            if chunk is None or not feeds:
                return sess.run(tensor, feed_dict=feeds)
            n = len(next(iter(feeds.values())))
            outs = []
            for start in range(0, n - n % chunk, chunk):
                outs.append(
                    sess.run(tensor, {p: d[start : start + chunk] for p, d in feeds.items()})
                )
            out = np.asarray(outs)
            return out if out.ndim <= 1 else np.concatenate(outs)
        finally:
            sess.close()
