"""Reading what a sandboxed run handed back: a versioned JSON manifest and an `.npz` of arrays.

The job writes them, framed, to a pipe the runner spools to a file with a size cap (`read`); tests and
tools may also read them from a folder (`read_folder`, links refused). Everything is validated
before use: the manifest's size, nesting, version and field types; every `.npy` member's header
(dtype numeric, shape x item size equal to the member's size, against the manifest's
declaration) *before* any data is read, so a header that claims 64 GiB allocates nothing;
`allow_pickle=False`. A malformed artifact raises ArtifactError; nothing in it is executed.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from grader.errors import ArtifactError
from grader.wire import (
    ARRAYS_FILE,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    RESULTS_MAGIC,
    ManifestFields,
)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_NESTING = 64
MAX_ARRAYS = 2000
MAX_ARRAY_BYTES = 512 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
NUMERIC_KINDS = "biuf"

Artifacts = tuple[dict[str, Any], dict[str, np.ndarray]]


def read(results: bytes | BinaryIO) -> Artifacts:
    """Validated (facts, arrays) from what a job wrote to its results pipe: `RESULTS_MAGIC`,
    then two frames (an 8-byte length, then the data): the manifest and the `.npz`. From a
    file (the runner spools the pipe to one) the arrays are read in place, never whole."""
    stream = io.BytesIO(results) if isinstance(results, bytes) else results
    if stream.read(len(RESULTS_MAGIC)) != RESULTS_MAGIC:
        raise ArtifactError("no results were handed back")
    size = _length(stream, "manifest")
    if size > MAX_MANIFEST_BYTES:
        raise ArtifactError("manifest.json is too large")
    manifest = stream.read(size)
    if len(manifest) != size:
        raise ArtifactError("the manifest is cut short")
    size = _length(stream, "arrays")
    start = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    if end - start != size:
        raise ArtifactError("the arrays are cut short, or followed by more")
    stream.seek(start)
    return parse(manifest, stream)


def _length(stream: BinaryIO, what: str) -> int:
    raw = stream.read(8)
    if len(raw) != 8:
        raise ArtifactError(f"the results end before the {what}")
    return int.from_bytes(raw, "big")


def read_folder(out_dir: Path) -> Artifacts:
    """Validated (facts, arrays) from `manifest.json` and `arrays.npz` in a folder."""
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise ArtifactError("the output folder is missing or is a link")
    parts = []
    for name, limit in ((MANIFEST_FILE, MAX_MANIFEST_BYTES), (ARRAYS_FILE, MAX_TOTAL_BYTES)):
        path = out_dir / name
        if path.is_symlink() or not path.is_file():
            raise ArtifactError(f"no {name}")
        if path.stat().st_size > limit:
            raise ArtifactError(f"{name} is too large")
        parts.append(path.read_bytes())
    return parse(parts[0], parts[1])


def parse(manifest: bytes, packed: bytes | BinaryIO) -> Artifacts:
    """Validated (facts, arrays) from the manifest's bytes and the `.npz` (bytes, or a file
    positioned at its start: zipfile finds an archive after other data)."""
    facts = _facts(manifest)
    declared = facts.get(ManifestFields.ARRAYS, {})
    try:
        with zipfile.ZipFile(io.BytesIO(packed) if isinstance(packed, bytes) else packed) as zf:
            infos = _members(zf)
            names = {i.filename[: -len(".npy")] for i in infos}
            if names != set(declared):
                raise ArtifactError("arrays.npz does not hold the arrays the manifest declares")
            arrays = {}
            for info in infos:
                name = info.filename[: -len(".npy")]
                with zf.open(info) as member:
                    arrays[name] = _array(member, info.file_size, name, declared[name])
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"arrays.npz is not a zip file: {exc}") from exc
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"arrays.npz cannot be read safely: {exc}") from exc
    return facts, arrays


def _facts(manifest: bytes) -> dict[str, Any]:
    if len(manifest) > MAX_MANIFEST_BYTES:
        raise ArtifactError("manifest.json is too large")
    if _nesting(manifest) > MAX_NESTING:
        raise ArtifactError(f"manifest.json is nested more than {MAX_NESTING} deep")
    try:
        # NaN and infinity are read (an honest diverged model reports them); the runner keeps
        # them out of what it writes. Integers are bounded: a 5,000-digit one is refused.
        facts = json.loads(manifest.decode("utf-8"), parse_int=_small_int)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ArtifactError(f"manifest.json is not JSON the grader reads: {exc}") from exc
    version = facts.get("version") if isinstance(facts, dict) else None
    if type(version) is not int or version != MANIFEST_VERSION:
        raise ArtifactError(f"manifest version is not {MANIFEST_VERSION}")
    for key in ManifestFields.OBJECTS:
        if not isinstance(facts.get(key, {}), dict):
            raise ArtifactError(f"manifest field {key!r} is not an object")
    for key, kind in (("status", str), ("exception", str), ("collect_error", str)):
        if not isinstance(facts.get(key, ""), kind):
            raise ArtifactError(f"manifest field {key!r} is not a {kind.__name__}")
    if not isinstance(facts.get("notes", []), list):
        raise ArtifactError("manifest field 'notes' is not a list")
    return facts


def _small_int(text: str) -> int:
    if len(text) > 40:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _nesting(text: bytes) -> int:
    """How deeply brackets nest in JSON text (strings skipped): checked before parsing, so a
    manifest nested 10^6 deep is refused without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
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
    return infos


def _array(member, size: int, name: str, meta: Any) -> np.ndarray:
    """One `.npy` member: its header checked against its size and the manifest before reading."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(member)
        else:
            raise ArtifactError(f"array {name!r} has .npy version {version}")
    except ValueError as exc:
        raise ArtifactError(f"array {name!r} is not a NumPy array file: {exc}") from exc
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
        raise ArtifactError(f"array {name!r} has non-numeric dtype {dtype}")
    if not isinstance(meta, dict) or list(shape) != meta.get("shape"):
        raise ArtifactError(f"array {name!r} does not match its declared shape")
    nbytes = math.prod(shape) * dtype.itemsize
    header = member.tell()
    if header + nbytes != size:
        raise ArtifactError(
            f"array {name!r}: its header claims {nbytes} bytes of data; it holds {size - header}"
        )
    data = member.read(nbytes)
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array.copy()
