"""Collecting what the spec asks for from the student's namespace, as plain data.

Values become numeric arrays (objects, strings and tensors are refused), placeholders are
described, tensors are evaluated on the grader's probe inputs, functions are called and their
calls counted, and a Keras model is exported as JSON plus weights. Nothing collected here is
trusted: the parent validates it, and scores on it only what it can verify.
"""

from __future__ import annotations

import signal
import traceback

from grader.wire import Collect, call_key, fetch_key, param_key


class _CallBudgetExceeded(BaseException):
    """Raised inside a student function that ran past its per-call budget (not an Exception,
    so a student's `except Exception` cannot swallow it)."""


class _TooManyCalls(BaseException):
    """Raised when a counted function exceeds its call cap."""


def short(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:300]


def _to_array(np, value):
    """A plain numeric array from a value, or None (objects, strings, tensors are refused)."""
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        return None
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except Exception:  # noqa: BLE001
            return None
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    return np.array(arr, order="C")  # (ascontiguousarray would make a 0-d value 1-d)


def collect(spec: Collect, ns, inputs, facts, arrays, tfc, np, call_timeout):
    missing = facts["missing"]

    def resolve(value):
        if tfc is not None and tfc.is_tensorish(value):
            return tfc.value_of(value)
        return value

    def store(name, value):
        """Keep `value` as a plain numeric array, or say in `missing` why it cannot be."""
        try:
            if isinstance(value, (list, tuple)):  # a loss record: a list of numbers or tensors
                value = [resolve(v) for v in value]
            arr = _to_array(np, resolve(value))
        except Exception as exc:  # noqa: BLE001
            missing[name] = str(exc)[:300]
            return
        if arr is None:
            missing[name] = "not a numeric array or variable"
        else:
            arrays[name] = arr

    for name in spec.placeholders:
        if name not in ns:
            missing[name] = "not defined"
            continue
        info = tfc.describe(ns[name]) if tfc is not None else {"kind": type(ns[name]).__name__}
        facts["placeholders"][name] = info

    for name in spec.params:
        if name not in ns:
            missing[name] = "not defined"
            continue
        value = ns[name]
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, item in items:
            full = param_key(name, key)
            if tfc is not None and tfc.is_tensorish(item):
                facts["declared_shapes"][full] = tfc.static_shape(item)
            store(full, item)

    for name in spec.records + spec.arrays:
        if name not in ns:
            missing[name] = "not defined"
        else:
            store(name, ns[name])

    for fetch in spec.fetches:
        name = fetch.name
        if tfc is None or name not in ns:
            missing[fetch_key(name)] = "not defined"
            facts["fetch_errors"][name] = f"`{name}` is not defined"
            continue
        feeds = {}
        for ph, input_name in fetch.feeds.items():
            if ph not in ns:
                facts["fetch_errors"][name] = f"placeholder `{ph}` is not defined"
                break
            feeds[ns[ph]] = inputs[input_name]
        else:
            try:
                arrays[fetch_key(name)] = np.asarray(
                    tfc.evaluate(ns[name], feeds), dtype=np.float64
                )
            except BaseException as exc:  # noqa: BLE001
                facts["fetch_errors"][name] = short(exc)

    if spec.keras_model:
        name = spec.keras_model
        model = ns.get(name)
        if name.endswith("()"):  # a function that builds the model, as the CIFAR homework asks
            builder = ns.get(name[:-2])
            try:
                model = builder() if callable(builder) else None
            except Exception as exc:  # noqa: BLE001
                facts["keras_error"] = f"{name} raised {short(exc)}"
                model = None
        if model is None:
            missing[name] = "not defined"
        elif not (hasattr(model, "to_json") and hasattr(model, "get_weights")):
            missing[name] = f"`{name}` is a {type(model).__name__}, not a Keras model"
        else:
            from grader.sandbox import keras_export

            try:
                keras_export.export(model, inputs.get("probe_x"), ns, facts, arrays, np)
            except Exception as exc:  # noqa: BLE001
                facts["keras_error"] = short(exc)

    def alarm(signum, frame):
        raise _CallBudgetExceeded()

    signal.signal(signal.SIGALRM, alarm)

    for call in spec.calls:
        fn = ns.get(call.function)
        if not callable(fn):
            facts["call_errors"][call.id] = f"NameError: `{call.function}` is not defined"
            continue
        args = [np.asarray(a, dtype=np.float64) if isinstance(a, list) else a for a in call.args]
        try:
            if call.setup:
                exec(call.setup, ns)
            fn = ns.get(call.function, fn)
            signal.setitimer(signal.ITIMER_REAL, call_timeout)
            value = fn(*args)
            signal.setitimer(signal.ITIMER_REAL, 0)
            arr = _to_array(np, resolve(value))
            if arr is None:
                facts["call_errors"][call.id] = f"returned {type(value).__name__}, not a number"
            else:
                arrays[call_key(call.id)] = arr
        except _CallBudgetExceeded:
            facts["call_errors"][call.id] = f"no result within {call_timeout:g} s"
        except BaseException as exc:  # noqa: BLE001
            signal.setitimer(signal.ITIMER_REAL, 0)
            facts["call_errors"][call.id] = short(exc)

    for counted in spec.call_counts:
        fname = counted.function
        original = ns.get(fname)
        if not callable(original):
            missing[fname] = "not defined"
            continue
        runs = []
        for n in counted.n:
            cap = int(counted.cap_per_n * n + 10)
            count = [0]

            def counting(*args, _orig=original, _count=count, _cap=cap, **kwargs):
                _count[0] += 1
                if _count[0] > _cap:
                    raise _TooManyCalls()
                return _orig(*args, **kwargs)

            run = {"n": n, "calls": 0, "capped": False}
            try:
                if counted.setup:
                    exec(counted.setup.format(n=n), ns)
                ns[fname] = counting
                signal.setitimer(signal.ITIMER_REAL, call_timeout)
                value = counting(n)
                signal.setitimer(signal.ITIMER_REAL, 0)
                run["value"] = float(value)
            except _TooManyCalls:
                signal.setitimer(signal.ITIMER_REAL, 0)
                run["capped"] = True
            except _CallBudgetExceeded:
                run["error"] = f"no result within {call_timeout:g} s"
            except BaseException as exc:  # noqa: BLE001
                signal.setitimer(signal.ITIMER_REAL, 0)
                run["error"] = short(exc)
            finally:
                ns[fname] = original
            run["calls"] = count[0] - (1 if run["capped"] else 0)
            runs.append(run)
        facts["call_counts"][fname] = runs
