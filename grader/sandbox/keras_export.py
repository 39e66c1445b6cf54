"""Handing a student's Keras model back as plain data (runs in the sandboxed child only).

The trusted process never opens a `.keras`, `.h5` or SavedModel file a student wrote. Here,
inside the sandbox, the model is turned into: its architecture as JSON text, its weight
arrays, its compile configuration as JSON, the learning rate its schedule gives at a few
steps, its own predictions on the grader's probe inputs, the result of the student's own
save/load round trip (a file they saved, loaded back here, must predict the same), and the
raw bytes of any TensorBoard event files (parsed in the trusted process as capped data).
"""

from __future__ import annotations

import json
import os

from grader.wire import fetch_key

MAX_JSON = 1_000_000
MAX_EVENT_BYTES = 8 * 1024 * 1024  # what the grader reads of them (grader.run.tb_events)
MODEL_SUFFIXES = (".h5", ".keras", ".hdf5")


def _plain(value):
    """A JSON-safe copy (objects become their string form)."""
    return json.loads(json.dumps(value, default=str))


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def export(model, probe, ns: dict, facts: dict, arrays: dict, np) -> None:
    import keras

    info: dict = {"class": type(model).__name__}
    facts["keras"] = info
    text = model.to_json()
    if len(text) > MAX_JSON:
        info["error"] = "the model's architecture is too large to grade"
        return
    info["json"] = text
    weights = model.get_weights()
    info["n_weights"] = len(weights)
    for i, w in enumerate(weights):
        arrays[f"keras.w{i}"] = np.array(w, order="C")
    try:
        info["compile"] = _plain(model.get_compile_config())
    except Exception as exc:  # noqa: BLE001 - not compiled
        info["compile_error"] = _short(exc)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        info["iterations"] = int(optimizer.iterations.numpy())
        info["optimizer"] = {
            "class": type(optimizer).__name__,
            "config": _plain(optimizer.get_config()),
        }
        schedule = getattr(optimizer, "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            cfg = schedule.get_config()
            every = int(cfg.get("decay_steps", 1000) or 1000)
            steps = [0, every // 2, every, every + every // 2, 2 * every, 10 * every]
            info["schedule"] = {
                "class": type(schedule).__name__,
                "config": _plain(cfg),
                "steps": steps,
                "values": [float(schedule(s)) for s in steps],
            }
    if probe is not None:
        try:
            pred = np.asarray(model.predict(probe, verbose=0), dtype=np.float64)
            arrays[fetch_key("model")] = pred
        except Exception as exc:  # noqa: BLE001
            info["predict_error"] = _short(exc)
            pred = None
        info["saved"] = _round_trips(keras, pred, probe, ns, np)
    info["event_files"] = _event_files(arrays, np)


def _round_trips(keras, pred, probe, ns, np) -> list[dict]:
    """Every model file the student saved, loaded back here: does it predict the same?"""
    found = []
    for root, _dirs, files in os.walk("."):
        for name in sorted(files):
            if name.endswith(MODEL_SUFFIXES):
                found.append(os.path.join(root, name)[2:])
    out = []
    for path in found[:5]:
        entry = {"file": path}
        try:
            loaded = keras.models.load_model(path)
            if pred is not None:
                again = np.asarray(loaded.predict(probe, verbose=0), dtype=np.float64)
                entry["max_diff"] = (
                    float(np.max(np.abs(again - pred))) if again.shape == pred.shape else None
                )
                entry["shape"] = list(again.shape)
        except Exception as exc:  # noqa: BLE001
            entry["error"] = _short(exc)
        out.append(entry)
    return out


def _event_files(arrays, np) -> list[str]:
    """Raw bytes of TensorBoard event files under the scratch folder (capped)."""
    paths, total = [], 0
    for root, _dirs, files in os.walk("."):
        for name in sorted(files):
            if "tfevents" not in name:
                continue
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            size = os.path.getsize(path)
            if total + size > MAX_EVENT_BYTES:
                continue
            with open(path, "rb") as fh:
                arrays[f"tb:{len(paths)}"] = np.frombuffer(fh.read(), dtype=np.uint8).copy()
            total += size
            paths.append(path[2:])
    return paths
