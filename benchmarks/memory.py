"""The peak memory of a whole Gradescope run: the trusted grader and its sandboxed job together.

For each assignment, grades its reference solution (`reference/<name>.py`, or the folder
`reference/<name>/`) exactly as `run_autograder` does on Gradescope:

    python -m grader.integrations.gradescope run --course ROOT --assignment NAME \\
        --submission DIR --results DIR/results/results.json

as a subprocess, and samples every `--interval` seconds (default 0.02) the resident memory
(RSS, `/proc/PID/stat`) of the whole process tree below it. It prints, per assignment:

    tree MB    the peak of the summed RSS of every process of the run (the grader, bwrap, the
               child and whatever it started): what a container's memory limit must hold
    grader MB  the peak of the trusted grading process alone (its kernel high-water mark,
               VmHWM, read at every sample, so a spike between two samples is not missed)
    job MB     the peak of the summed RSS of everything below the grader (the sandboxed job)
    score      the score the run wrote (a reference must score full marks)
    imports    what the trusted process had imported at the end that it should import only
               when used (TensorFlow never), read from a `sys.modules` dump

Summed RSS counts the pages processes share (libraries mapped by bwrap and the child) once per
process: it errs on the high side of what a cgroup charges, which is what a limit must hold.
The tree peak may be below grader + job: the two peak at different moments.

The runs are one at a time, in the order given (`--repeat K` runs each K times round-robin and
keeps the highest peak). With `--limit-mb N` the run is told that the container has N MB
(`GRADER_MEMORY_LIMIT_MB`), to see the entry point refuse a run too big for it.

Usage (from the course root, as root or as a user):
    .venv/bin/python benchmarks/memory.py [--assignment perceptron mnist_mlp ...] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.run.procs import descendants, usage

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("recursion", "intro_numpy", "perceptron", "mnist_mlp", "keras_mnist")
# Modules the trusted process must not hold unless this run used them (TensorFlow: never).
WATCHED = ("tensorflow", "keras", "tf_keras", "matplotlib", "sklearn", "nbformat", "scipy")

# Runs the entry point as `python -m` would, then writes the top-level modules it imported.
DRIVER = """
import json, os, runpy, sys
sys.argv = ["grader.integrations.gradescope", *sys.argv[1:]]
try:
    runpy.run_module("grader.integrations.gradescope", run_name="__main__", alter_sys=True)
finally:
    with open(os.environ["MEMORY_BENCH_MODULES"], "w") as fh:
        json.dump(sorted({m.split(".")[0] for m in sys.modules}), fh)
"""


def _hwm_mb(pid: int) -> float:
    """The kernel's high-water mark of one process's RSS (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def measure(name: str, interval: float, limit_mb: int | None) -> dict:
    ref = ROOT / "reference" / name
    ref = ref if ref.is_dir() else ref.with_suffix(".py")
    with tempfile.TemporaryDirectory(prefix=f"memory-{name}-") as tmp:
        top = Path(tmp)
        top.chmod(0o755)  # the sandbox's uids (as root) must reach the job folders below
        submission = top / "submission"
        if ref.is_dir():
            shutil.copytree(ref, submission)
        else:
            submission.mkdir()
            shutil.copy(ref, submission / ref.name)
        results = top / "results" / "results.json"
        modules = top / "modules.json"
        env = dict(os.environ, MEMORY_BENCH_MODULES=str(modules))
        env.pop("GRADER_COURSE", None)
        if limit_mb is not None:
            env["GRADER_MEMORY_LIMIT_MB"] = str(limit_mb)
        argv = ["--course", str(ROOT), "--assignment", name]
        argv += ["--submission", str(submission), "--results", str(results)]
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, "run", *argv],
            cwd=top,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        tree = grader = job = 0.0
        while proc.poll() is None:
            pids = descendants(proc.pid)
            own = usage([proc.pid]).rss_mb
            below = usage([p for p in pids if p != proc.pid]).rss_mb
            tree = max(tree, own + below)
            grader = max(grader, own, _hwm_mb(proc.pid))
            job = max(job, below)
            time.sleep(interval)
        output = proc.stdout.read() if proc.stdout else ""
        seconds = time.monotonic() - started
        try:
            data = json.loads(results.read_text())
        except (OSError, ValueError):
            data = {}
        try:
            imported = set(json.loads(modules.read_text()))
        except (OSError, ValueError):
            imported = set()
    tests = data.get("tests") or []
    max_score = sum(t.get("max_score", 0) for t in tests)
    return {
        "assignment": name,
        "tree_mb": tree,
        "grader_mb": grader,
        "job_mb": job,
        "seconds": seconds,
        "exit": proc.returncode,
        "score": f"{data.get('score', '?')}/{max_score:g}" if tests else str(data.get("score")),
        "imports": sorted(imported & set(WATCHED)),
        "output": output.strip().splitlines()[-1:] if output.strip() else [],
        "message": (data.get("output") or "").strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", nargs="+", default=list(ASSIGNMENTS))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between samples")
    parser.add_argument("--limit-mb", type=int, help="pretend the container has this many MB")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for name in args.assignment:
            row = measure(name, args.interval, args.limit_mb)
            old = best.get(name)
            if old is None or row["tree_mb"] > old["tree_mb"]:
                best[name] = row
            print(f"  {name}: {row['tree_mb']:.0f} MB, {row['seconds']:.1f} s", file=sys.stderr)

    head = f"{'assignment':<14} {'tree MB':>8} {'grader MB':>10} {'job MB':>8} {'s':>6}"
    print(f"{head} {'exit':>4} {'score':>7}  imports (trusted side)")
    for name in args.assignment:
        r = best[name]
        print(
            f"{name:<14} {r['tree_mb']:>8.0f} {r['grader_mb']:>10.0f} {r['job_mb']:>8.0f} "
            f"{r['seconds']:>6.1f} {r['exit']:>4} {r['score']:>7}  {', '.join(r['imports']) or '-'}"
        )
        if r["exit"] and r["message"]:
            print(f"{'':<14} {r['message'].splitlines()[0]}")
    if args.json:
        args.json.write_text(json.dumps(list(best.values()), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
