"""Reading the artifacts a sandboxed run wrote: a versioned JSON manifest and an `.npz` of arrays.

Everything is validated before use: sizes from the zip headers before anything is decompressed,
names against the manifest, numeric dtypes only, `allow_pickle=False`. A malformed artifact
raises ArtifactError; nothing in it is ever executed or unpickled.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import ArtifactError
from grader.wire import ARRAYS_FILE, MANIFEST_FILE, MANIFEST_VERSION, ManifestFields

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_ARRAYS = 2000
MAX_ARRAY_BYTES = 512 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
NUMERIC_KINDS = "biuf"


def read(out_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validated (facts, arrays) from a run's output folder."""
    if out_dir.is_symlink() or not out_dir.is_dir():
        # The child owns its scratch folder: a link there could point the grader at any file.
        raise ArtifactError("the output folder is missing or is a link")
    manifest_path = out_dir / MANIFEST_FILE
    arrays_path = out_dir / ARRAYS_FILE
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise ArtifactError("no manifest.json")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ArtifactError("manifest.json is too large")
    try:
        facts = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"manifest.json is not JSON: {exc}") from exc
    version = facts.get("version") if isinstance(facts, dict) else None
    if type(version) is not int or version != MANIFEST_VERSION:
        raise ArtifactError(f"manifest version is not {MANIFEST_VERSION}")
    for key in ManifestFields.OBJECTS:
        if not isinstance(facts.get(key, {}), dict):
            raise ArtifactError(f"manifest field {key!r} is not an object")
    declared = facts.get("arrays", {})
    arrays: dict[str, np.ndarray] = {}
    if not arrays_path.is_file() or arrays_path.is_symlink():
        raise ArtifactError("no arrays.npz")
    try:
        with zipfile.ZipFile(arrays_path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARRAYS:
                raise ArtifactError(f"arrays.npz holds {len(infos)} members (max {MAX_ARRAYS})")
            total = 0
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise ArtifactError(f"unexpected member {info.filename!r} in arrays.npz")
                if info.file_size > MAX_ARRAY_BYTES:
                    raise ArtifactError(f"array {info.filename!r} is too large")
                total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise ArtifactError("arrays.npz is too large")
            names = {i.filename[: -len(".npy")] for i in infos}
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"arrays.npz is not a zip file: {exc}") from exc
    if names != set(declared):
        raise ArtifactError("arrays.npz does not hold the arrays the manifest declares")
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            for name in names:
                arr = data[name]
                if not isinstance(arr, np.ndarray):  # a member that is not a valid .npy file
                    raise ArtifactError(f"array {name!r} is not a NumPy array file")
                if arr.dtype.kind not in NUMERIC_KINDS:
                    raise ArtifactError(f"array {name!r} has non-numeric dtype {arr.dtype}")
                meta = declared[name]
                if not isinstance(meta, dict) or list(arr.shape) != meta.get("shape"):
                    raise ArtifactError(f"array {name!r} does not match its declared shape")
                arrays[name] = arr
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"arrays.npz cannot be read safely: {exc}") from exc
    return facts, arrays
