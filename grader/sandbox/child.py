"""The sandboxed child: runs one student's code and hands back plain artifacts.

Started by the runner, behind bubblewrap's walls, as
`python -I -m grader.sandbox.child /job/in/job.json`, in its working folder. In order:

1. read `job.json` and the inputs beside it (read-only copies; nothing secret is in them);
2. prepare the runtime: `plt.show()` never blocks, seeds are fixed, and when the code uses
   TensorFlow the TF1 compatibility layer is installed (`tfcompat`); the student's files are
   copied into the working folder;
3. set the job's limits (CPU time counts from here: the grader's start-up is not the student's);
4. run the student's code as `__main__`, catching whatever it raises (SystemExit included);
5. collect what the spec asks for and write the manifest and the arrays to the results pipe.

Nothing here is trusted by the parent: whatever this process writes is validated on read,
and scores are computed from it in the parent only.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from grader.sandbox.collect import collect, collect_drawn, short
from grader.sandbox.isolation import apply_limits
from grader.wire import (
    INPUTS_FILE,
    MANIFEST_VERSION,
    READY,
    RESULTS_MAGIC,
    Exit,
    JobSpec,
    ManifestFields,
    Stage,
    Status,
)


def _student_frames(exc: BaseException, wheres: dict[str, list[str]]) -> str:
    """The traceback with the student's own frames only (any of their files), at the student's
    line numbers."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in wheres]
    lines = ["Traceback (your code only):"]
    for f in frames:
        where = wheres[f.filename]
        loc = where[f.lineno - 1] if f.lineno and 0 < f.lineno <= len(where) else f"line {f.lineno}"
        func = "" if f.name == "<module>" else f", in {f.name}"
        lines.append(f"  {loc}{func}")
        if f.line:
            lines.append(f"    {f.line.strip()}")
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    hint = _size_hint(text, isinstance(exc, IndexError))
    said = [line for line in text.splitlines() if line.strip()]
    if len(said) > 6:
        # TensorFlow's graph errors carry its own internal stack ("Detected at node ... File
        # ..."): keep the headline and the last lines, which name the actual problem.
        text = "\n".join([said[0], "  [... TensorFlow's internal frames cut ...]", *said[-2:]])
    if len(text) > 800:
        text = text[:800] + " ..."
    lines.append(text)
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def _size_hint(text: str, index_error: bool) -> str | None:
    """The served data's sizes, when the error says the code assumed the full data set."""
    if "grader.sandbox.datasets" not in sys.modules:  # no data set served in this job
        return None
    try:
        from grader.sandbox import datasets

        return datasets.size_hint(text, index_error)
    except Exception:  # noqa: BLE001 - a hint, never a second failure
        return None


def main(job_file: str) -> int:
    t_start = time.perf_counter()
    in_dir = os.path.dirname(os.path.abspath(job_file))
    with open(job_file, encoding="utf-8") as fh:
        job = JobSpec.from_json(fh.read())
    results = os.fdopen(job.isolation.result_fd, "wb") if job.isolation.result_fd >= 0 else None
    import numpy as np

    # Read the inputs before the student runs: nothing the student does can change them.
    inputs = {}
    if os.path.exists(os.path.join(in_dir, INPUTS_FILE)):
        with np.load(os.path.join(in_dir, INPUTS_FILE), allow_pickle=False) as data:
            inputs = {k: data[k] for k in data.files}
    savez, dumps = np.savez, json.dumps  # bound now: the student may replace the modules' names

    facts: dict = {key: {} for key in ManifestFields.COLLECTED}
    facts.update(version=MANIFEST_VERSION, status=Status.COMPLETED, notes=[], timing={})
    arrays: dict[str, np.ndarray] = {}
    tfc = _prepare_runtime(job, facts["timing"], np)

    # The student's files: one script, or several (a training file, a test file, a module they
    # both import), copied where they run; `stages` run in order, each in a fresh namespace.
    sources = {}
    for name in job.files:
        with open(os.path.join(in_dir, name), encoding="utf-8") as fh:
            sources[name] = fh.read()
        with open(name, "w", encoding="utf-8") as fh:
            fh.write(sources[name])
    if len(job.files) > 1:
        sys.path.insert(0, os.getcwd())  # their own modules import each other
    t0 = time.perf_counter()
    code = "\n".join(sources.values())
    from grader.sandbox import legacy

    legacy.install(code)
    if job.datasets:
        from grader.sandbox import datasets

        datasets.install({k: os.path.join(in_dir, v) for k, v in job.datasets.items()}, code)
    facts["timing"]["legacy_import_s"] = time.perf_counter() - t0
    try:
        apply_limits(job.isolation)
    except Exception as exc:  # noqa: BLE001 - report any failure of the set-up, run nothing
        sys.stderr.write(f"GRADER-SANDBOX-SETUP-FAILED: {exc}\n")
        return Exit.SETUP_FAILED
    if results is not None:  # from here on, whatever goes wrong is the student's code's doing
        results.write(READY)
        results.flush()
    facts["timing"]["student_s"] = facts["timing"]["collect_s"] = 0.0
    for number, stage in enumerate(job.stages or (Stage(next(iter(job.files))),)):
        if number:  # a fresh start: new graph, no session, the student's modules re-imported
            if tfc is not None:
                tfc.reset()
            for name in job.files:
                sys.modules.pop(os.path.splitext(name)[0], None)
        namespace = _run_stage(job, stage, sources[stage.file], facts)
        _collect_stage(job, stage, namespace, inputs, facts, arrays, tfc, np)
        if facts.get("exception"):
            break
    if results is not None and job.isolation.calls_fd >= 0:  # the grader's drawn calls, now
        try:
            fd, timeout = job.isolation.calls_fd, job.call_timeout_s
            collect_drawn(fd, results, namespace, facts, arrays, tfc, np, timeout)
        except BaseException as exc:  # noqa: BLE001
            facts["collect_error"] = short(exc)
    facts["timing"]["child_total_s"] = time.perf_counter() - t_start

    if results is not None:
        _send(results, facts, arrays, savez, dumps)
    return Exit.OK


def _send(results, facts: dict, arrays: dict, savez, dumps) -> None:
    """The manifest and the arrays, framed, on the results pipe."""
    import io

    packed = io.BytesIO()
    savez(packed, **arrays)
    facts[ManifestFields.ARRAYS] = {
        k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()
    }
    manifest = dumps(facts).encode("utf-8")
    results.write(RESULTS_MAGIC)
    for frame in (manifest, packed.getvalue()):
        results.write(len(frame).to_bytes(8, "big"))
        results.write(frame)
    results.flush()


def _prepare_runtime(job: JobSpec, timing: dict, np):
    """Seeds fixed, plots that never block, and TensorFlow as the assignment's API wants it;
    the TF1 layer (`tfcompat`) when the code is TF1 graph code, else None."""
    import random
    import warnings

    random.seed(job.seed)
    np.random.seed(job.seed)
    os.environ["MPLBACKEND"] = "Agg"
    warnings.filterwarnings("ignore")
    if not job.tensorflow:
        return None
    t0 = time.perf_counter()
    from grader.sandbox import tfcompat

    tfc = None
    if job.api == "keras":
        tfcompat.install_tf2(job.seed)
    else:
        tfcompat.install(job.seed)
        tfc = tfcompat
    timing["import_s"] = time.perf_counter() - t0
    return tfc


def _run_stage(job: JobSpec, stage: Stage, source: str, facts: dict) -> dict:
    """Run one of the student's files as `__main__`; what it raised goes into `facts`."""
    wheres = {os.path.abspath(name): list(where) for name, where in job.files.items()}
    namespace: dict = {
        # Not "__main__" when the spec says so (CIFAR-10 absent): the file is loaded as a
        # module and its `if __name__ == "__main__":` training part does not run.
        "__name__": "__main__" if job.run_as_main else "submission",
        "__file__": stage.file if len(job.files) > 1 else job.display_name,
        "__builtins__": __builtins__,
    }
    sys.argv = [namespace["__file__"]]  # as if run as `python <their file>`: no grader paths
    t0 = time.perf_counter()
    try:
        compiled = compile(source, os.path.abspath(stage.file), "exec", dont_inherit=True)
        exec(compiled, namespace)
    except SystemExit as exc:
        facts["status"] = Status.EXIT
        facts["exception"] = (
            f"your code called sys.exit({'' if exc.code is None else repr(exc.code)}); "
            f"the rest of it did not run"
        )
    except MemoryError as exc:
        facts["status"] = Status.MEMORY
        facts["exception"] = _student_frames(exc, wheres)
    except BaseException as exc:  # noqa: BLE001 - a student's exception is a result
        facts["status"] = Status.EXCEPTION
        facts["exception"] = _student_frames(exc, wheres)
    if facts.get("exception") and len(job.files) > 1:
        facts["exception"] = f"while running {stage.file}:\n" + facts["exception"]
    facts["timing"]["student_s"] += time.perf_counter() - t0
    return namespace


def _collect_stage(job: JobSpec, stage: Stage, namespace, inputs, facts, arrays, tfc, np) -> None:
    """Collect what the stage (or the job) asks for. An earlier stage (prefix "train:") hands
    back its arrays and per-stage facts under its prefix; the last stage's facts are the run's."""
    t0 = time.perf_counter()
    prefix = stage.prefix
    got_facts = facts if not prefix else {k: {} for k in ManifestFields.COLLECTED}
    got_arrays = arrays if not prefix else {}
    try:
        collect(
            stage.collect or job.collect,
            namespace,
            inputs,
            got_facts,
            got_arrays,
            tfc,
            np,
            job.call_timeout_s,
            {os.path.abspath(name): list(where) for name, where in job.files.items()},
        )
    except BaseException as exc:  # noqa: BLE001
        facts["collect_error"] = short(exc)
    for key, value in got_arrays.items() if prefix else ():
        arrays[prefix + key] = value
    for field in ManifestFields.PER_STAGE if prefix else ():
        for key, value in got_facts[field].items():
            facts[field][prefix + key] = value
    facts["timing"]["collect_s"] += time.perf_counter() - t0


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    # Student threads may still run: leave without waiting for them (the runner kills the group).
    os._exit(code)
