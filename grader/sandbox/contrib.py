"""`tf.contrib`, removed in TensorFlow 2, answered with what replaces it (sandboxed child only).

Lecture code from 2018 calls `tf.contrib.layers.xavier_initializer()`, `tf.contrib.rnn.*` or
`tf.contrib.learn`. On TensorFlow 2 that fails with "module 'tensorflow.compat.v1' has no
attribute 'contrib'", which tells the student nothing. Here `tf.contrib.<module>.<name>` raises
an AttributeError that names the TF 2 replacement, and importing `tensorflow.contrib...` raises
a ModuleNotFoundError that does the same (so `try: ... except ImportError:` fallbacks still
work as they do on TensorFlow 2).
"""

from __future__ import annotations

import sys
import types

# "module.name" (or "module" alone, for anything else in it) -> what replaces it in TF 2. With
# Keras 3, tf.layers.* and tf.nn.rnn_cell.* are gone too: the tf.keras names come first.
REPLACEMENTS = {
    "layers.xavier_initializer": "tf.glorot_uniform_initializer "
    "(tf.keras.initializers.GlorotUniform)",
    "layers.xavier_initializer_conv2d": "tf.glorot_uniform_initializer "
    "(tf.keras.initializers.GlorotUniform)",
    "layers.variance_scaling_initializer": "tf.variance_scaling_initializer "
    "(tf.keras.initializers.VarianceScaling, HeNormal)",
    "layers.fully_connected": "tf.keras.layers.Dense (tf.layers.dense in TensorFlow 1)",
    "layers.conv2d": "tf.keras.layers.Conv2D (or tf.nn.conv2d)",
    "layers.max_pool2d": "tf.keras.layers.MaxPooling2D (or tf.nn.max_pool2d)",
    "layers.flatten": "tf.keras.layers.Flatten (or tf.reshape)",
    "layers.batch_norm": "tf.keras.layers.BatchNormalization",
    "layers.dropout": "tf.nn.dropout (tf.keras.layers.Dropout)",
    "layers.l2_regularizer": "tf.keras.regularizers.l2 (or tf.nn.l2_loss in the loss)",
    "layers.l1_regularizer": "tf.keras.regularizers.l1",
    "layers": "tf.keras.layers and tf.keras.initializers",
    "rnn.BasicLSTMCell": "tf.keras.layers.LSTMCell (tf.nn.rnn_cell.LSTMCell in TensorFlow 1)",
    "rnn.LSTMCell": "tf.keras.layers.LSTMCell (tf.nn.rnn_cell.LSTMCell in TensorFlow 1)",
    "rnn.BasicRNNCell": "tf.keras.layers.SimpleRNNCell",
    "rnn.GRUCell": "tf.keras.layers.GRUCell",
    "rnn.MultiRNNCell": "tf.keras.layers.StackedRNNCells",
    "rnn.static_rnn": "tf.keras.layers.RNN",
    "rnn": "tf.keras.layers (LSTM, GRU, SimpleRNN, RNN and their cells)",
    "learn.datasets": "the lecture's data entry points: input_data.read_data_sets from "
    "tensorflow.examples.tutorials.mnist, or tf.keras.datasets.mnist.load_data()",
    "learn": "tf.keras (tf.keras.Model, tf.keras.datasets)",
    "slim": "tf.keras.layers (tf-slim is a separate package, not available here)",
    "metrics": "tf.metrics (tf.keras.metrics)",
    "losses": "tf.losses (tf.keras.losses)",
    "keras": "tf.keras",
    "opt": "tf.train optimizers (tf.keras.optimizers)",
}


def message(path: str) -> str:
    """What the student reads for `tf.contrib.<path>` (path like "layers.xavier_initializer")."""
    parts = path.split(".")
    named = f"tf.contrib.{path}" if path else "tf.contrib"
    for key in (".".join(parts[:2]), parts[0]):
        if key in REPLACEMENTS:
            return f"tf.contrib was removed in TensorFlow 2: {named} -> {REPLACEMENTS[key]}"
    return (
        f"tf.contrib was removed in TensorFlow 2: {named} has no direct replacement here; "
        "use the matching tf.keras or tf.compat.v1 API"
    )


class _Contrib:
    """`tf.contrib` and its modules: a module resolves, any name inside one raises."""

    def __init__(self, path: str = ""):
        self._path = path

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        path = f"{self._path}.{name}" if self._path else name
        if not self._path:
            return _Contrib(path)
        raise AttributeError(message(path))

    def __call__(self, *args, **kwargs):
        raise AttributeError(message(self._path))

    def __repr__(self) -> str:
        return f"<removed tf.contrib{'.' + self._path if self._path else ''}>"


class _ContribPackage(types.ModuleType):
    """`import tensorflow.contrib`: names in it raise (ImportError, as TensorFlow 2 would)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ModuleNotFoundError(message(name), name=f"tensorflow.contrib.{name}")


class _ContribFinder:
    """`import tensorflow.contrib.<module>` (also deeper): a ModuleNotFoundError naming the
    replacement."""

    @staticmethod
    def find_spec(fullname: str, path=None, target=None):
        if fullname.startswith("tensorflow.contrib."):
            rest = fullname[len("tensorflow.contrib.") :]
            raise ModuleNotFoundError(message(rest), name=fullname)
        return None


def install(tf_module) -> None:
    """`tf.contrib` on the module students import as `tf`, and `tensorflow.contrib` imports."""
    tf_module.contrib = _Contrib()
    package = _ContribPackage("tensorflow.contrib")
    package.__path__ = []
    sys.modules["tensorflow.contrib"] = package
    sys.meta_path.insert(0, _ContribFinder())
