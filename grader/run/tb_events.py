"""Read the scalars of TensorBoard event files as size-capped data, without TensorFlow.

A student's `tf.keras.callbacks.TensorBoard(log_dir)` writes `log_dir/train/` and
`log_dir/validation/`, each with `events.out.tfevents.*` files: TFRecord framing around `Event`
protocol buffers. This module checks the framing's CRC32C checksums and decodes only the
fields it needs with a small wire-format reader:

    Event:        wall_time (1, double), step (2, int64), summary (5)
    Summary:      value (1, repeated)
    Value:        tag (1, string), simple_value (2, float), tensor (8)
    TensorProto:  dtype (1), tensor_shape (2), tensor_content (4), float_val (5),
                  double_val (6), half_val (13)

Keras 3 on TF 2.x writes each epoch's metric as a rank-0 DT_FLOAT tensor in `tensor_content`
(4 little-endian bytes) with the "scalars" plugin, and leaves `step` out at epoch 0 (the proto
default). TF 1's `FileWriter` wrote `simple_value`; both are read. Other values (the model
config Keras writes as a string tensor, images, histograms) are skipped.

Files are data the sandboxed child wrote: symbolic links are never followed, sizes and counts
are capped, and anything malformed raises `EventFileError`.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["EventFileError", "parse_event_files", "read_scalars"]

MAX_BYTES = 8 * 1024 * 1024  # a real Keras log is a few KB; CRC-32C here is pure Python
MAX_FILES = 200
MAX_ENTRIES = 10_000  # directory entries walked, so a huge tree cannot stall the grader
MAX_DEPTH = 8

_DT_FLOAT, _DT_DOUBLE, _DT_HALF = 1, 2, 19
_SCALAR_FORMATS = {_DT_FLOAT: "<f", _DT_DOUBLE: "<d", _DT_HALF: "<e"}


class EventFileError(Exception):
    """TensorBoard logs that cannot be read: corrupt, truncated, too large or not there."""


def read_scalars(
    log_dir: Path, *, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES
) -> dict[str, list[tuple[int, float]]]:
    """The scalar summaries under `log_dir`, as tag -> [(step, value), ...] sorted by step.

    A tag is prefixed by the sub-folder its file is in: "train/epoch_loss",
    "validation/epoch_loss" (a file directly in `log_dir` gives the bare tag). Within a tag,
    points of the same step keep the order they were written in (files in name order).

    Args:
        log_dir: the folder given to `tf.keras.callbacks.TensorBoard(log_dir=...)`.
        max_bytes: the most bytes read over all event files. Defaults to 64 MiB.
        max_files: the most event files read. Defaults to 200.

    Raises EventFileError if `log_dir` is missing or a link, if the files exceed the caps, or
    if a file is truncated or corrupt (bad checksum, malformed protocol buffer).
    Symbolic links inside `log_dir` (files or folders) are ignored, never followed.
    """
    log_dir = Path(log_dir)
    try:
        st = os.lstat(log_dir)
    except OSError:
        raise EventFileError(
            f"no TensorBoard logs at {log_dir}: the folder does not exist (was the TensorBoard "
            "callback given to model.fit(callbacks=[...])?)"
        ) from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise EventFileError(f"{log_dir} is not a folder (a link is not followed)")

    files = _event_files(log_dir, max_files)
    total = sum(size for _, size in files)
    if total > max_bytes:
        raise EventFileError(
            f"the TensorBoard logs in {log_dir} are {total:,} bytes; the grader reads at most "
            f"{max_bytes:,}"
        )
    contents, budget = {}, max_bytes
    for rel, _ in files:
        contents[rel] = _read_file(log_dir / rel, budget, rel)
        budget -= len(contents[rel])
    return parse_event_files(contents, max_bytes=max_bytes, max_files=max_files)


def parse_event_files(
    files: Mapping[str, bytes], *, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES
) -> dict[str, list[tuple[int, float]]]:
    """The scalars of event files already in memory, keyed by relative path ("train/events...").

    The same as `read_scalars` for bytes the sandbox handed back: a tag is prefixed by the
    folder part of its file's path, and the files are read in path order. Nothing touches the
    disk. Raises EventFileError for too many files or bytes, or a corrupt or truncated file.
    """
    if len(files) > max_files:
        raise EventFileError(
            f"{len(files)} TensorBoard event files; the grader reads at most {max_files}"
        )
    total = sum(len(data) for data in files.values())
    if total > max_bytes:
        raise EventFileError(
            f"the TensorBoard logs are {total:,} bytes; the grader reads at most {max_bytes:,}"
        )
    points: dict[str, list[tuple[int, float]]] = {}
    for rel in sorted(files):
        prefix = "/".join(p for p in rel.replace("\\", "/").split("/")[:-1] if p not in ("", "."))
        for record, where in _records(bytes(files[rel]), rel):
            for step, tag, value in _scalars(record, where):
                key = f"{prefix}/{tag}" if prefix else tag
                points.setdefault(key, []).append((step, value))
    return {tag: sorted(pts, key=lambda p: p[0]) for tag, pts in sorted(points.items())}


# --- files ------------------------------------------------------------------------------------


def _event_files(root: Path, max_files: int) -> list[tuple[str, int]]:
    """(path relative to root, size) of every regular event file, links skipped, name order."""
    found: list[tuple[str, int]] = []
    seen = 0
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            raise EventFileError(f"cannot list {folder}: {e.strerror}") from None
        seen += len(entries)
        if seen > MAX_ENTRIES:
            raise EventFileError(
                f"the TensorBoard log folder {root} holds more than {MAX_ENTRIES:,} entries"
            )
        for entry in entries:
            if entry.is_symlink():
                continue  # written by the child: never follow it
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 <= MAX_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.is_file(follow_symlinks=False) and "tfevents" in entry.name:
                size = entry.stat(follow_symlinks=False).st_size
                found.append((Path(entry.path).relative_to(root).as_posix(), size))
                if len(found) > max_files:
                    raise EventFileError(
                        f"the TensorBoard log folder {root} holds more than {max_files} event "
                        "files; the grader reads at most that many"
                    )
    return sorted(found)


def _read_file(path: Path, budget: int, rel: str) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise EventFileError(f"{rel}: cannot open ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise EventFileError(f"{rel}: not a regular file")
        data = f.read(budget + 1)
    if len(data) > budget:
        raise EventFileError(f"{rel}: the TensorBoard logs grew past the grader's size cap")
    return data


# --- TFRecord framing ---------------------------------------------------------------------------


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # Castagnoli, reflected
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as TFRecord uses it (crc32c(b"123456789") == 0xE3069283)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _records(data: bytes, rel: str):
    """Yield (payload, where) for each TFRecord: u64 length, masked CRC, payload, masked CRC."""
    pos, n = 0, 0
    while pos < len(data):
        where = f"{rel}: record {n} at byte {pos}"
        if len(data) - pos < 12:
            raise EventFileError(
                f"{where} is truncated: {len(data) - pos} bytes left of a 12-byte header (was "
                "the run stopped while writing its logs?)"
            )
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if _masked_crc(header) != length_crc:
            raise EventFileError(f"{where} is corrupt: the checksum of its length does not match")
        end = pos + 12 + length
        if end + 4 > len(data):
            raise EventFileError(
                f"{where} is truncated: it holds {length:,} bytes but the file ends "
                f"{max(0, len(data) - pos - 12):,} bytes later (was the run stopped while "
                "writing its logs?)"
            )
        payload = data[pos + 12 : end]
        (data_crc,) = struct.unpack("<I", data[end : end + 4])
        if _masked_crc(payload) != data_crc:
            raise EventFileError(f"{where} is corrupt: the checksum of its data does not match")
        yield payload, where
        pos, n = end + 4, n + 1


# --- protocol buffers -------------------------------------------------------------------------


def _fields(buf: bytes, where: str) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value) of a message: int for varint/fixed, bytes else."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos, where)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise EventFileError(f"{where}: malformed event (field number 0)")
        value: Any  # int for a varint, bytes for the other wire types
        if wire == 0:
            value, pos = _varint(buf, pos, where)
        elif wire == 1:
            if pos + 8 > n:
                raise EventFileError(f"{where}: malformed event (a 64-bit field runs past the end)")
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos, where)
            if pos + size > n:
                raise EventFileError(f"{where}: malformed event (a field runs past the end)")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            if pos + 4 > n:
                raise EventFileError(f"{where}: malformed event (a 32-bit field runs past the end)")
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise EventFileError(f"{where}: malformed event (wire type {wire})")
        yield number, wire, value


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    for i in range(10):
        if pos + i >= len(buf):
            break
        b = buf[pos + i]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos + i + 1
        shift += 7
    raise EventFileError(f"{where}: malformed event (a varint is cut off or too long)")


def _int64(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def _scalars(record: bytes, where: str):
    """Yield (step, tag, value) for each scalar in one serialized Event."""
    step, summary = 0, None
    for number, wire, value in _fields(record, where):
        if number == 2 and wire == 0:
            step = _int64(value)
        elif number == 5 and wire == 2:
            summary = value
    if summary is None:
        return
    for number, wire, value in _fields(summary, where):
        if number == 1 and wire == 2:
            scalar = _value(value, where)
            if scalar is not None:
                yield (step, *scalar)


def _value(buf: bytes, where: str) -> tuple[str, float] | None:
    tag, simple, tensor = None, None, None
    for number, wire, value in _fields(buf, where):
        if number == 1 and wire == 2:
            try:
                tag = value.decode("utf-8")
            except UnicodeDecodeError:
                raise EventFileError(f"{where}: a summary tag is not UTF-8") from None
        elif number == 2 and wire == 5:
            (simple,) = struct.unpack("<f", value)
        elif number == 8 and wire == 2:
            tensor = value
    if tag is None:
        return None
    if simple is not None:
        return tag, float(simple)
    if tensor is not None:
        scalar = _tensor_scalar(tensor, f"{where}, tag {tag!r}")
        if scalar is not None:
            return tag, scalar
    return None


def _tensor_scalar(buf: bytes, where: str) -> float | None:
    """The value of a one-element float tensor; None for any other tensor (text, histograms)."""
    dtype, dims, content = 0, [], None
    vals: dict[int, list[float]] = {5: [], 6: [], 13: []}
    for number, wire, value in _fields(buf, where):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 2 and wire == 2:
            dims = _dims(value, where)
        elif number == 4 and wire == 2:
            content = value
        elif number == 5:
            vals[5] += _packed(value, wire, "<f", 5, where)
        elif number == 6:
            vals[6] += _packed(value, wire, "<d", 1, where)
        elif number == 13:
            vals[13] += _packed_halves(value, wire, where)
    if dtype not in _SCALAR_FORMATS or any(d != 1 for d in dims):
        return None
    fmt = _SCALAR_FORMATS[dtype]
    if content is not None:
        if len(content) != struct.calcsize(fmt):
            raise EventFileError(
                f"{where}: a scalar's tensor_content has {len(content)} bytes; expected "
                f"{struct.calcsize(fmt)}"
            )
        return float(struct.unpack(fmt, content)[0])
    found = vals[{_DT_FLOAT: 5, _DT_DOUBLE: 6, _DT_HALF: 13}[dtype]]
    return float(found[0]) if found else None


def _dims(buf: bytes, where: str) -> list[int]:
    dims = []
    for number, wire, value in _fields(buf, where):
        if number == 2 and wire == 2:  # Dim { size = 1 }
            size = 0
            for n2, w2, v2 in _fields(value, where):
                if n2 == 1 and w2 == 0:
                    size = _int64(v2)
            dims.append(size)
        elif number == 3 and wire == 0 and value:  # unknown_rank
            dims.append(-1)
    return dims


def _packed(value, wire: int, fmt: str, single_wire: int, where: str) -> list[float]:
    if wire == single_wire:  # one unpacked element
        return [struct.unpack(fmt, value)[0]]
    if wire == 2:
        size = struct.calcsize(fmt)
        if len(value) % size:
            raise EventFileError(f"{where}: malformed packed values")
        return [v[0] for v in struct.iter_unpack(fmt, value)]
    raise EventFileError(f"{where}: malformed tensor values (wire type {wire})")


def _packed_halves(value, wire: int, where: str) -> list[float]:
    # half_val holds each float16's bits in an int32 varint.
    if wire == 0:
        bits = [value]
    elif wire == 2:
        bits, pos = [], 0
        while pos < len(value):
            b, pos = _varint(value, pos, where)
            bits.append(b)
    else:
        raise EventFileError(f"{where}: malformed tensor values (wire type {wire})")
    return [struct.unpack("<e", struct.pack("<H", b & 0xFFFF))[0] for b in bits]
