"""Reading TensorBoard event files as data: framing, checksums, scalars, links, caps.

tests/fixtures/keras/tb_logs is a real log of `tf.keras.callbacks.TensorBoard` (Keras 3 on
TF 2.21, 3 epochs; see make_fixtures.py); tb_history.json is the History of that run. The
hand-made files below cover what Keras does not write (TF 1 simple_value, packed values, ...).
"""

from __future__ import annotations

import json
import shutil
import struct

import pytest

from grader.run.tb_events import EventFileError, crc32c, parse_event_files, read_scalars
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "keras"
LOGS = FIXTURES / "tb_logs"


# --- a tiny protobuf + TFRecord writer, for hand-made files ------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload) -> bytes:
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload  # fixed 32/64-bit, already packed


def masked(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF)


def record(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return header + masked(header) + payload + masked(payload)


def event(step: int, *values: bytes, wall_time: float = 1.0) -> bytes:
    summary = b"".join(field(1, 2, v) for v in values)
    body = field(1, 1, struct.pack("<d", wall_time))
    if step:
        body += field(2, 0, step)
    return body + field(5, 2, summary)


def value(tag: str, *, simple: float | None = None, tensor: bytes | None = None) -> bytes:
    out = field(1, 2, tag.encode())
    if simple is not None:
        out += field(2, 5, struct.pack("<f", simple))
    if tensor is not None:
        out += field(8, 2, tensor)
    return out


def tensor(dtype: int, *, dims=(), content: bytes | None = None, extra: bytes = b"") -> bytes:
    shape = b"".join(field(2, 2, field(1, 0, d)) for d in dims)
    out = field(1, 0, dtype) + field(2, 2, shape)
    if content is not None:
        out += field(4, 2, content)
    return out + extra


def write(path, *events: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(record(e) for e in events))


def copy_logs(tmp_path):
    dst = tmp_path / "logs"
    shutil.copytree(LOGS, dst)
    return dst


def train_file(logs):
    (path,) = (logs / "train").glob("events.out.tfevents.*")
    return path


# --- the real Keras log -----------------------------------------------------------------------


def test_crc32c_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_keras_epoch_losses_are_read_with_steps_0_to_2():
    scalars = read_scalars(LOGS)
    for key in ("train/epoch_loss", "validation/epoch_loss", "train/epoch_accuracy"):
        assert [step for step, _ in scalars[key]] == [0, 1, 2], key
    losses = [v for _, v in scalars["train/epoch_loss"]]
    assert losses[0] > losses[1] > losses[2]
    val = [v for _, v in scalars["validation/epoch_loss"]]
    assert val[0] > val[1] > val[2]


def test_the_values_are_the_ones_keras_reported():
    history = json.loads((FIXTURES / "tb_history.json").read_text())
    scalars = read_scalars(LOGS)
    for tag, key in [
        ("train/epoch_loss", "loss"),
        ("train/epoch_accuracy", "accuracy"),
        ("validation/epoch_loss", "val_loss"),
    ]:
        assert [v for _, v in scalars[tag]] == pytest.approx(history[key], rel=1e-6), tag


def test_non_scalar_summaries_are_skipped():
    # Keras also writes the model's JSON config as a string tensor tagged "keras"
    assert all(not tag.endswith("/keras") for tag in read_scalars(LOGS))


# --- corrupt and truncated files --------------------------------------------------------------


@pytest.mark.parametrize("cut", [3, 15])
def test_a_truncated_file_is_an_error(tmp_path, cut):
    logs = copy_logs(tmp_path)
    path = train_file(logs)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(
        EventFileError, match=r"train/events\.out\.tfevents.*: record \d+ at byte \d+ is truncated"
    ):
        read_scalars(logs)


def test_a_cut_header_is_an_error(tmp_path):
    logs = copy_logs(tmp_path)
    path = train_file(logs)
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    path.write_bytes(data[: 16 + length + 5])  # the second record's header is cut after 5 bytes
    with pytest.raises(
        EventFileError, match=r"record 1 at byte \d+ is truncated: 5 bytes left of a 12-byte header"
    ):
        read_scalars(logs)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda length: 8, r"record 0 at byte 0 is corrupt: the checksum of its length"),
        (
            lambda length: 12 + length // 2,
            r"record 0 at byte 0 is corrupt: the checksum of its data",
        ),
        (lambda length: 12 + length, r"record 0 at byte 0 is corrupt: the checksum of its data"),
    ],
    ids=["length-crc", "payload", "data-crc"],
)
def test_a_flipped_byte_is_an_error(tmp_path, where, message):
    logs = copy_logs(tmp_path)
    path = train_file(logs)
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    data[where(length)] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match=message):
        read_scalars(logs)


def test_a_malformed_event_inside_a_valid_record_is_an_error(tmp_path):
    write(tmp_path / "events.out.tfevents.1", field(5, 2, b"\x0a\xff\xff\xff"))
    with pytest.raises(EventFileError, match=r"record 0 at byte 0: malformed event"):
        read_scalars(tmp_path)


def test_a_wrong_size_scalar_is_an_error(tmp_path):
    write(
        tmp_path / "events.out.tfevents.1",
        event(0, value("loss", tensor=tensor(1, content=b"abc"))),
    )
    with pytest.raises(EventFileError, match=r"tag 'loss'.*tensor_content has 3 bytes; expected 4"):
        read_scalars(tmp_path)


# --- links, caps, missing folders -------------------------------------------------------------


def test_symlinks_are_never_followed(tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(LOGS / "train", logs / "train")
    outside = tmp_path / "outside"
    shutil.copytree(LOGS / "validation", outside)
    (victim,) = outside.glob("events.out.tfevents.*")
    (logs / "train" / "events.out.tfevents.linked").symlink_to(victim)
    (logs / "validation").symlink_to(outside, target_is_directory=True)
    scalars = read_scalars(logs)
    assert scalars and all(tag.startswith("train/") for tag in scalars)
    assert [s for s, _ in scalars["train/epoch_loss"]] == [0, 1, 2]  # the link added no points


def test_a_log_dir_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "link").symlink_to(LOGS, target_is_directory=True)
    with pytest.raises(EventFileError, match=r"is not a folder \(a link is not followed\)"):
        read_scalars(tmp_path / "link")


def test_a_missing_log_dir_names_the_callback(tmp_path):
    with pytest.raises(EventFileError, match=r"no TensorBoard logs at .*callbacks=\[\.\.\.\]"):
        read_scalars(tmp_path / "nowhere")


def test_size_and_count_caps(tmp_path):
    with pytest.raises(EventFileError, match=r"more than 1 event files; the grader reads at most"):
        read_scalars(LOGS, max_files=1)
    with pytest.raises(EventFileError, match=r"are 3,\d\d\d bytes; the grader reads at most 1,000"):
        read_scalars(LOGS, max_bytes=1000)


# --- what Keras does not write but TensorBoard files may hold ---------------------------------


def test_hand_made_scalars_of_every_encoding(tmp_path):
    packed = field(5, 2, struct.pack("<2f", 0.25, 9.0))  # float_val, packed
    write(
        tmp_path / "run" / "events.out.tfevents.2",
        event(2, value("simple", simple=1.5)),  # TF 1 FileWriter
        event(1, value("simple", simple=2.5)),
        event(0, value("double", tensor=tensor(2, content=struct.pack("<d", 0.125)))),
        event(0, value("packed", tensor=tensor(1, extra=packed))),
        event(0, value("unpacked", tensor=tensor(1, extra=field(5, 5, struct.pack("<f", 3.0))))),
        event(0, value("half", tensor=tensor(19, extra=field(13, 2, varint(0x3C00))))),  # 1.0
        event(
            0, value("one_by_one", tensor=tensor(1, dims=(1, 1), content=struct.pack("<f", 4.0)))
        ),
        event(-3, value("negative", simple=7.0)),
        event(0, value("vector", tensor=tensor(1, dims=(2,), content=struct.pack("<2f", 1, 2)))),
        event(0, value("text", tensor=tensor(7, extra=field(8, 2, b"hello")))),
        event(0, value("image")),
    )
    write(tmp_path / "events.out.tfevents.1", event(5, value("top", simple=0.5)))
    (tmp_path / "notes.txt").write_text("not an event file")
    assert read_scalars(tmp_path) == {
        "run/double": [(0, 0.125)],
        "run/half": [(0, 1.0)],
        "run/negative": [(-3, 7.0)],
        "run/one_by_one": [(0, 4.0)],
        "run/packed": [(0, 0.25)],
        "run/simple": [(1, 2.5), (2, 1.5)],
        "run/unpacked": [(0, 3.0)],
        "top": [(5, 0.5)],
    }


def test_an_empty_log_dir_has_no_scalars(tmp_path):
    assert read_scalars(tmp_path) == {}


def test_bytes_handed_back_by_the_sandbox_read_the_same():
    files = {p.relative_to(LOGS).as_posix(): p.read_bytes() for p in LOGS.rglob("*tfevents*")}
    assert parse_event_files(files) == read_scalars(LOGS)
    nested = {f"./logs/fit/{rel}": data for rel, data in files.items()}
    assert set(parse_event_files(nested)) == {f"logs/fit/{tag}" for tag in read_scalars(LOGS)}
    with pytest.raises(
        EventFileError, match=r"2 TensorBoard event files; the grader reads at most 1"
    ):
        parse_event_files(files, max_files=1)
    rel = sorted(files)[0]
    with pytest.raises(EventFileError, match=rf"{rel}: record \d+ at byte \d+ is truncated"):
        parse_event_files({rel: files[rel][:-1]})
