"""Artifacts of a sandboxed run: manifest.json + arrays.npz, validated before any use."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.errors import ArtifactError
from grader.run.artifacts import read_folder as read
from grader.wire import MANIFEST_VERSION


def manifest(**fields) -> dict:
    return {"version": MANIFEST_VERSION, **fields}


def write(out: Path, facts, arrays: dict[str, np.ndarray]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    text = facts if isinstance(facts, str) else json.dumps(facts)
    (out / "manifest.json").write_text(text, encoding="utf-8")
    np.savez(out / "arrays.npz", **arrays)
    return out


def declare(**arrays: np.ndarray) -> dict:
    return {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()}


W = np.arange(6, dtype=np.float32).reshape(2, 3)
B = np.array([0.5, -1.0])
N = np.array(7, dtype=np.int64)


# --- valid artifacts -------------------------------------------------------------------------------


def test_valid_artifacts_read_back(tmp_path):
    facts = manifest(
        arrays=declare(w=W, b=B, n=N),
        missing={},
        placeholders={"x": {"shape": [None, 3]}},
        timing={"run_s": 1.5},
        note="anything else is kept",
    )
    out = write(tmp_path / "out", facts, {"w": W, "b": B, "n": N})
    got_facts, arrays = read(out)
    assert got_facts == facts
    assert set(arrays) == {"w", "b", "n"}
    np.testing.assert_array_equal(arrays["w"], W)
    assert arrays["w"].dtype == np.float32
    np.testing.assert_array_equal(arrays["b"], B)
    assert arrays["n"].shape == () and int(arrays["n"]) == 7


def test_valid_artifacts_without_arrays(tmp_path):
    out = write(tmp_path / "out", manifest(), {})
    facts, arrays = read(out)
    assert facts == {"version": MANIFEST_VERSION}
    assert arrays == {}


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint16, np.int64, np.float16, np.float64])
def test_numeric_dtypes_are_accepted(tmp_path, dtype):
    a = np.ones((2, 2), dtype=dtype)
    out = write(tmp_path / "out", manifest(arrays=declare(a=a)), {"a": a})
    assert read(out)[1]["a"].dtype == dtype


# --- rejected artifacts ----------------------------------------------------------------------------


def test_missing_manifest(tmp_path):
    out = write(tmp_path / "out", manifest(), {})
    (out / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        read(out)


def test_missing_arrays(tmp_path):
    out = write(tmp_path / "out", manifest(), {})
    (out / "arrays.npz").unlink()
    with pytest.raises(ArtifactError, match=r"no arrays\.npz"):
        read(out)


@pytest.mark.parametrize("version", [0, 2, "1", None, [1]])
def test_wrong_version(tmp_path, version):
    out = write(tmp_path / "out", {"version": version}, {})
    with pytest.raises(ArtifactError, match=r"manifest version is not 1"):
        read(out)


def test_manifest_without_version(tmp_path):
    out = write(tmp_path / "out", {"arrays": {}}, {})
    with pytest.raises(ArtifactError, match=r"manifest version is not 1"):
        read(out)


@pytest.mark.parametrize("facts", ["[1, 2, 3]", '"version"', "1"], ids=["list", "string", "number"])
def test_manifest_that_is_not_an_object(tmp_path, facts):
    out = write(tmp_path / "out", facts, {})
    with pytest.raises(ArtifactError, match=r"manifest version is not 1"):
        read(out)


@pytest.mark.parametrize("text", ["{not json", "", '{"version": 1,}', "{'version': 1}"])
def test_non_json_manifest(tmp_path, text):
    out = write(tmp_path / "out", text, {})
    with pytest.raises(ArtifactError, match=r"manifest\.json is not JSON"):
        read(out)


def test_non_utf8_manifest(tmp_path):
    out = write(tmp_path / "out", manifest(), {})
    (out / "manifest.json").write_bytes(b'{"version": 1, "note": "\xff"}')
    with pytest.raises(ArtifactError, match=r"manifest\.json is not JSON"):
        read(out)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arrays", []),
        ("missing", ["x"]),
        ("placeholders", "x"),
        ("timing", 1.5),
        ("call_counts", None),
        ("fetch_errors", [{"name": "pred"}]),
    ],
)
def test_manifest_field_of_the_wrong_type(tmp_path, field, value):
    out = write(tmp_path / "out", manifest(**{field: value}), {})
    with pytest.raises(ArtifactError, match=rf"manifest field '{field}' is not an object"):
        read(out)


def test_npz_member_that_is_not_npy(tmp_path):
    out = write(tmp_path / "out", manifest(arrays=declare(w=W)), {})
    with zipfile.ZipFile(out / "arrays.npz", "w") as zf:
        zf.writestr("w.npy", b"")
        zf.writestr("evil.pkl", b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(ArtifactError, match=r"unexpected member 'evil\.pkl' in arrays\.npz"):
        read(out)


def test_npz_that_is_not_a_zip(tmp_path):
    out = write(tmp_path / "out", manifest(arrays=declare(w=W)), {})
    (out / "arrays.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(ArtifactError, match=r"arrays\.npz is not a zip file"):
        read(out)


def test_npy_member_that_is_not_an_array(tmp_path):
    # A member named `.npy` whose bytes are not the NumPy format.
    out = write(tmp_path / "out", manifest(arrays={"w": {"shape": [2]}}), {})
    with zipfile.ZipFile(out / "arrays.npz", "w") as zf:
        zf.writestr("w.npy", b"definitely not an npy file")
    with pytest.raises(ArtifactError, match=r"array 'w' is not a NumPy array"):
        read(out)


def test_corrupted_npy_member(tmp_path):
    # The stored bytes of a member no longer match the CRC in the zip headers.
    z = np.zeros(100)
    out = write(tmp_path / "out", manifest(arrays=declare(z=z)), {"z": z})
    raw = bytearray((out / "arrays.npz").read_bytes())
    at = raw.find(bytes(64), 200)
    assert at > 0
    raw[at + 10] = 1
    (out / "arrays.npz").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"arrays\.npz"):
        read(out)


@pytest.mark.parametrize(
    ("declared", "written"),
    [
        ({"w": W, "b": B}, {"w": W}),  # declared but missing
        ({"w": W}, {"w": W, "b": B}),  # present but undeclared
        ({"w": W}, {"v": W}),  # renamed
        ({}, {"w": W}),
    ],
    ids=["missing", "extra", "renamed", "none-declared"],
)
def test_arrays_not_matching_the_declared_set(tmp_path, declared, written):
    out = write(tmp_path / "out", manifest(arrays=declare(**declared)), written)
    with pytest.raises(
        ArtifactError, match=r"arrays\.npz does not hold the arrays the manifest declares"
    ):
        read(out)


def test_object_dtype_array_is_never_unpickled(tmp_path):
    obj = np.array([{"a": 1}, None], dtype=object)
    out = write(tmp_path / "out", manifest(arrays={"obj": {"shape": [2]}}), {"obj": obj})
    # Refused from its .npy header, before any byte of it is read (let alone unpickled).
    with pytest.raises(ArtifactError, match=r"array 'obj' has non-numeric dtype object"):
        read(out)


def test_string_dtype_array_is_rejected(tmp_path):
    s = np.array(["a", "bc"])
    out = write(tmp_path / "out", manifest(arrays=declare(s=s)), {"s": s})
    with pytest.raises(ArtifactError, match=r"array 's' has non-numeric dtype <U2"):
        read(out)


@pytest.mark.parametrize(
    "meta",
    [{"shape": [3, 2]}, {"shape": [6]}, {"shape": [2, 3, 1]}, {"shape": "2,3"}, {}, [2, 3]],
    ids=["transposed", "flat", "extra-dim", "string", "no-shape", "not-an-object"],
)
def test_declared_shape_that_differs(tmp_path, meta):
    out = write(tmp_path / "out", manifest(arrays={"w": meta}), {"w": W})
    with pytest.raises(ArtifactError, match=r"array 'w' does not match its declared shape"):
        read(out)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinked_manifest(tmp_path):
    real = write(tmp_path / "elsewhere", manifest(), {})
    out = write(tmp_path / "out", manifest(), {})
    (out / "manifest.json").unlink()
    (out / "manifest.json").symlink_to(real / "manifest.json")
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        read(out)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinked_arrays(tmp_path):
    real = write(tmp_path / "elsewhere", manifest(), {})
    out = write(tmp_path / "out", manifest(), {})
    (out / "arrays.npz").unlink()
    (out / "arrays.npz").symlink_to(real / "arrays.npz")
    with pytest.raises(ArtifactError, match=r"no arrays\.npz"):
        read(out)


def test_manifest_that_is_a_directory(tmp_path):
    out = tmp_path / "out"
    (out / "manifest.json").mkdir(parents=True)
    np.savez(out / "arrays.npz")
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        read(out)
