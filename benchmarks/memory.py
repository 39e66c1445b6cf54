"""The peak memory of a whole Gradescope run: the trusted grader and its sandboxed job together.

For each assignment, grades its reference solution (`reference/<name>.py`, or the folder
`reference/<name>/`) exactly as `run_autograder` does on Gradescope:

    python -m grader.integrations.gradescope run --course ROOT --assignment NAME \\
        --submission DIR --results DIR/results/results.json

as a subprocess, and samples every `--interval` seconds (default 0.02) the resident memory
(RSS, `/proc/PID/stat`) of the whole process tree below it. It prints, per assignment:

    tree MB    the peak of the summed RSS of every process of the run (the grader, bwrap, the
               child and whatever it started)
    unique MB  the same tree's peak with each page counted once: the private pages of every
               process plus the largest shared set of any one of them (`/proc/PID/smaps_rollup`;
               a page shared with processes outside the tree, a library, counts once too)
    grader MB  the peak of the trusted grading process alone (its kernel high-water mark,
               VmHWM, read at every sample, so a spike between two samples is not missed)
    job MB     the peak of everything below the grader (the sandboxed job): summed RSS, and
               counted as `unique` counts it

The RSS sum and the unique count differ when the child forks: matplotlib, imported by some
references, runs `fc-list`, and for a moment the forked copy shows its parent's whole RSS
again (copy-on-write: no new memory), which the sum counts twice. PSS is no help on a shared
machine: it divides a library's pages among every process of the machine that maps them (other
TensorFlow processes), where a fresh container is charged for them in full.
    score      the score the run wrote (a reference must score full marks)
    imports    what the trusted process had imported at the end that it should import only
               when used (TensorFlow never), read from a `sys.modules` dump

What a container's limit must hold is the unique column plus what no process maps: files in
the sandbox's tmpfs folders (its copies of the inputs, small with the embedded MNIST) and page
cache the kernel can reclaim. The tree peak may be below grader + job: they peak at different
moments.

The runs are one at a time, in the order given (`--repeat K` runs each K times round-robin and
keeps the highest peak). With `--limit-mb N` the run is told that the container has N MB
(`GRADER_MEMORY_LIMIT_MB`), to see the entry point refuse a run too big for it. With
`--mnist PATH` the MNIST assignments grade on that data set ($GRADER_MNIST: a Keras
`mnist.npz` or an IDX folder, e.g. /usr/share/datasets/fashion-mnist, 60,000 images of
MNIST's shape) instead of the embedded 5,000 digits.

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


def _private_shared_mb(pid: int) -> tuple[float, float]:
    """A process's private and shared resident MB ((0, 0) once it is gone or unreadable)."""
    private = shared = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("Private_Clean", "Private_Dirty"):
                    private += int(rest.split()[0])
                elif key in ("Shared_Clean", "Shared_Dirty"):
                    shared += int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    return private / 1024, shared / 1024


def _unique_mb(pids: list[int]) -> float:
    """Resident MB of `pids` with each page counted once (see the module's docstring)."""
    parts = [_private_shared_mb(p) for p in pids]
    if not parts:
        return 0.0
    return sum(p for p, _ in parts) + max(s for _, s in parts)


def measure(name: str, interval: float, limit_mb: int | None, mnist: str | None) -> dict:
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
        if mnist:
            env["GRADER_MNIST"] = mnist
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
        tree = unique = grader = job = job_unique = 0.0
        while proc.poll() is None:
            pids = descendants(proc.pid)
            below = [p for p in pids if p != proc.pid]
            own, job_rss = usage([proc.pid]).rss_mb, usage(below).rss_mb
            tree = max(tree, own + job_rss)
            unique = max(unique, _unique_mb(pids))
            grader = max(grader, own, _hwm_mb(proc.pid))
            job, job_unique = max(job, job_rss), max(job_unique, _unique_mb(below))
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
        "unique_mb": unique,
        "grader_mb": grader,
        "job_mb": job,
        "job_unique_mb": job_unique,
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
    parser.add_argument("--mnist", help="grade the MNIST assignments on this data set")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for name in args.assignment:
            row = measure(name, args.interval, args.limit_mb, args.mnist)
            old = best.get(name)
            if old is None or row["unique_mb"] > old["unique_mb"]:
                best[name] = row
            print(f"  {name}: {row['tree_mb']:.0f} MB, {row['seconds']:.1f} s", file=sys.stderr)

    head = f"{'':<18} {'tree MB':>15}  {'grader MB':>9}  {'job MB':>15}"
    print(
        f"{head}\n{'assignment':<18} {'RSS':>7} {'unique':>7}  {'':>9}  {'RSS':>7} {'unique':>7}",
        end="",
    )
    print(f" {'s':>5} {'exit':>4} {'score':>7}  imports (trusted side)")
    for name in args.assignment:
        r = best[name]
        print(
            f"{name:<18} {r['tree_mb']:>7.0f} {r['unique_mb']:>7.0f}  {r['grader_mb']:>9.0f}  "
            f"{r['job_mb']:>7.0f} {r['job_unique_mb']:>7.0f} {r['seconds']:>5.1f} {r['exit']:>4} "
            f"{r['score']:>7}  "
            f"{', '.join(r['imports']) or '-'}"
        )
        if r["exit"] and r["message"]:
            print(f"{'':<18} {r['message'].splitlines()[0]}")
    if args.json:
        args.json.write_text(json.dumps(list(best.values()), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
