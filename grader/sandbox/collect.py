"""Collecting what the spec asks for from the student's namespace, as plain data.

Values become numeric arrays (objects, strings and tensors are refused), placeholders are
described, tensors are evaluated on the grader's probe inputs, functions are called and their
calls counted, and a Keras model is exported as JSON plus weights. Nothing collected here is
trusted: the parent validates it, and scores on it only what it can verify.
"""

from __future__ import annotations

import json
import os
import signal
import traceback

from grader.wire import (
    ASK_CALLS,
    MAX_CALLS_BYTES,
    Collect,
    FunctionCall,
    call_key,
    fetch_key,
    param_key,
)


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


def collect(spec: Collect, ns, inputs, facts, arrays, tfc, np, call_timeout, wheres=None) -> None:
    """Collect what `spec` asks for from namespace `ns` into `facts` and `arrays`; `wheres`
    maps each of the student's files to the label of each of its lines."""
    c = _Collector(ns, inputs, facts, arrays, tfc, np, call_timeout)
    c.placeholders(spec.placeholders)
    c.params(spec.params)
    if spec.graph and tfc is not None:
        c.graph(spec, wheres or {})
    for name in spec.records + spec.arrays:
        if name not in ns:
            c.missing[name] = "not defined"
        else:
            c.store(name, ns[name])
    for fetch in spec.fetches:
        c.fetch(fetch)
    if spec.keras_model:
        c.keras_model(spec.keras_model)
    signal.signal(signal.SIGPROF, _alarm)
    for call in spec.calls:
        c.call(call)
    for counted in spec.call_counts:
        c.count_calls(counted)


def collect_drawn(fd, results, ns, facts, arrays, tfc, np, call_timeout) -> None:
    """The calls the grader drew for this run, asked for now that the student's code has run:
    ASK_CALLS on the results pipe, the answer read from pipe `fd` (until the grader closes it),
    then each call made as `collect` makes the spec's own calls. Nothing here is trusted
    either: the grader scores these calls only if it answered, and against its own values."""
    results.write(ASK_CALLS)
    results.flush()
    data = b""
    while len(data) <= MAX_CALLS_BYTES and (chunk := os.read(fd, 65536)):
        data += chunk
    os.close(fd)
    calls = json.loads(data.decode("utf-8")) if data else []
    c = _Collector(ns, {}, facts, arrays, tfc, np, call_timeout)
    signal.signal(signal.SIGPROF, _alarm)
    for entry in calls:
        c.call(FunctionCall(entry["id"], entry["function"], tuple(entry["args"]), entry["setup"]))


def _alarm(signum, frame):
    raise _CallBudgetExceeded()


class _Collector:
    """One stage's collection: the student's namespace in, plain facts and arrays out."""

    def __init__(self, ns, inputs, facts, arrays, tfc, np, call_timeout):
        self.ns, self.inputs, self.facts, self.arrays = ns, inputs, facts, arrays
        self.tfc, self.np, self.call_timeout = tfc, np, call_timeout
        self.missing = facts["missing"]

    def resolve(self, value):
        if self.tfc is not None and self.tfc.is_tensorish(value):
            return self.tfc.value_of(value)
        return value

    def store(self, name, value):
        """Keep `value` as a plain numeric array, or say in `missing` why it cannot be."""
        try:
            if isinstance(value, (list, tuple)):  # a loss record: a list of numbers or tensors
                value = [self.resolve(v) for v in value]
            arr = _to_array(self.np, self.resolve(value))
        except Exception as exc:  # noqa: BLE001
            self.missing[name] = str(exc)[:300]
            return
        if arr is None:
            self.missing[name] = "not a numeric array or variable"
        else:
            self.arrays[name] = arr

    def placeholders(self, names):
        tfc, ns = self.tfc, self.ns
        for name in names:
            if name not in ns:
                self.missing[name] = "not defined"
                continue
            info = tfc.describe(ns[name]) if tfc is not None else {"kind": type(ns[name]).__name__}
            self.facts["placeholders"][name] = info

    def params(self, names):
        for name in names:
            if name not in self.ns:
                self.missing[name] = "not defined"
                continue
            value = self.ns[name]
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for key, item in items:
                full = param_key(name, key)
                if self.tfc is not None and self.tfc.is_tensorish(item):
                    self.facts["declared_shapes"][full] = self.tfc.static_shape(item)
                self.store(full, item)

    def graph(self, spec: Collect, wheres) -> None:
        """The student's graph as data (`graph_export`), naming the placeholders and the
        variables the spec lists in the student's terms."""
        from grader.sandbox import graph_export

        names = {name: self.ns[name] for name in spec.placeholders if name in self.ns}
        for name in spec.params:
            value = self.ns.get(name)
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for key, item in items:
                if item is not None:
                    names[param_key(name, key)] = item
        try:
            graph_export.export(
                names, spec.graph, self.ns, self.facts, self.arrays, self.tfc, self.np, wheres
            )
        except Exception as exc:  # noqa: BLE001 - the parent says the graph is missing
            self.facts.setdefault("graph", {})["errors"] = {"graph": short(exc)}

    def fetch(self, fetch):
        name, ns, errors = fetch.name, self.ns, self.facts["fetch_errors"]
        if self.tfc is None or name not in ns:
            self.missing[fetch_key(name)] = "not defined"
            errors[name] = f"`{name}` is not defined"
            return
        feeds = {}
        for ph, input_name in fetch.feeds.items():
            if ph not in ns:
                errors[name] = f"placeholder `{ph}` is not defined"
                return
            feeds[ns[ph]] = self.inputs[input_name]
        try:
            value = self.tfc.evaluate(ns[name], feeds)
            self.arrays[fetch_key(name)] = self.np.asarray(value, dtype=self.np.float64)
        except BaseException as exc:  # noqa: BLE001
            errors[name] = short(exc)

    def keras_model(self, name):
        model = self.ns.get(name)
        if name.endswith("()"):  # a function that builds the model, as the CIFAR homework asks
            builder = self.ns.get(name[:-2])
            try:
                model = builder() if callable(builder) else None
            except Exception as exc:  # noqa: BLE001
                self.facts["keras_error"] = f"{name} raised {short(exc)}"
                model = None
        if model is None:
            self.missing[name] = "not defined"
        elif not (hasattr(model, "to_json") and hasattr(model, "get_weights")):
            self.missing[name] = f"`{name}` is a {type(model).__name__}, not a Keras model"
        else:
            from grader.sandbox import keras_export

            try:
                keras_export.export(
                    model, self.inputs.get("probe_x"), self.ns, self.facts, self.arrays, self.np
                )
            except Exception as exc:  # noqa: BLE001
                self.facts["keras_error"] = short(exc)

    def call(self, call):
        np, ns, errors = self.np, self.ns, self.facts["call_errors"]
        fn = ns.get(call.function)
        if not callable(fn):
            errors[call.id] = f"NameError: `{call.function}` is not defined"
            return
        args = [np.asarray(a, dtype=np.float64) if isinstance(a, list) else a for a in call.args]
        try:
            if call.setup:
                exec(call.setup, ns)
            fn = ns.get(call.function, fn)
            signal.setitimer(signal.ITIMER_PROF, self.call_timeout)
            value = fn(*args)
            signal.setitimer(signal.ITIMER_PROF, 0)
            arr = _to_array(np, self.resolve(value))
            if arr is None:
                errors[call.id] = f"returned {type(value).__name__}, not a number"
            else:
                self.arrays[call_key(call.id)] = arr
        except _CallBudgetExceeded:
            errors[call.id] = f"no result within {self.call_timeout:g} s of CPU time"
        except BaseException as exc:  # noqa: BLE001
            signal.setitimer(signal.ITIMER_PROF, 0)
            errors[call.id] = short(exc)

    def count_calls(self, counted):
        fname = counted.function
        original = self.ns.get(fname)
        if not callable(original):
            self.missing[fname] = "not defined"
            return
        self.facts["call_counts"][fname] = [
            self._count_one(counted, original, n) for n in counted.n
        ]

    def _count_one(self, counted, original, n) -> dict:
        cap = int(counted.cap_per_n * n + 10)
        count = [0]

        def counting(*args, **kwargs):
            count[0] += 1
            if count[0] > cap:
                raise _TooManyCalls()
            return original(*args, **kwargs)

        run = {"n": n, "calls": 0, "capped": False}
        try:
            if counted.setup:
                exec(counted.setup.format(n=n), self.ns)
            self.ns[counted.function] = counting
            signal.setitimer(signal.ITIMER_PROF, self.call_timeout)
            value = counting(n)
            signal.setitimer(signal.ITIMER_PROF, 0)
            run["value"] = float(value)
        except _TooManyCalls:
            signal.setitimer(signal.ITIMER_PROF, 0)
            run["capped"] = True
        except _CallBudgetExceeded:
            run["error"] = f"no result within {self.call_timeout:g} s of CPU time"
        except BaseException as exc:  # noqa: BLE001
            signal.setitimer(signal.ITIMER_PROF, 0)
            run["error"] = short(exc)
        finally:
            self.ns[counted.function] = original
        run["calls"] = count[0] - (1 if run["capped"] else 0)
        return run
