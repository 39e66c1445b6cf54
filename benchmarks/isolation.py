"""What the sandbox costs per job: the same jobs with bubblewrap's walls and without, side by side.

Runs each job N times under both runners, interleaved (walls, none, walls, none, ...), and
prints the median time to run it, the difference and the ratio. Two jobs: a trivial NumPy one
(the sandbox's own start-up dominates) and one that imports TensorFlow (the usual job).

With `--before CHECKOUT` (an earlier checkout of the grader with its own `.venv`, e.g. made
with `git worktree add /tmp/before 775bbe0 && cd /tmp/before && python3 -m venv .venv &&
.venv/bin/pip install -e .`), that checkout's own runner (the child isolating itself with
`unshare` and mounts) runs the same jobs in the same loop, as a third column.

Usage (from the course root, as root or as a user):
    .venv/bin/python benchmarks/isolation.py [--repeat 10] [--before CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from grader.run.runner import ColdRunner, Job
from grader.wire import Collect, Limits

JOBS = {
    "numpy (trivial)": "import numpy as np\nresult = np.arange(3)\n",
    "tensorflow import": "import tensorflow as tf\nresult = [1]\n",
}


def job(code: str) -> Job:
    lines = code.count("\n") + 1
    return Job(
        display_name="bench.py",
        code=code,
        where=tuple(f"line {i}" for i in range(1, lines + 1)),
        collect=Collect(arrays=("result",)),
        inputs={},
        seed=0,
        tensorflow="tensorflow" in code,
        limits=Limits(timeout_s=120, memory_mb=4096),
    )


# Runs in the earlier checkout's interpreter: its own runner, one job per line read.
BEFORE_DRIVER = r"""
import json, sys, time
from grader._sandbox.runner import ColdRunner, Job
runner = ColdRunner(slots=1)
for line in sys.stdin:
    code = json.loads(line)
    lines = code.count("\n") + 1
    job = Job(display_name="bench.py", code=code, where=tuple(f"line {i}" for i in range(1, lines + 1)),
              collect={"arrays": ["result"]}, inputs={}, seed=0, tensorflow="tensorflow" in code,
              timeout_s=120, memory_mb=4096)
    t0 = time.perf_counter()
    out = runner.run(job)
    print(json.dumps([time.perf_counter() - t0, out.status]), flush=True)
runner.close()
"""


class Before:
    """The earlier checkout's runner, kept running in its own interpreter."""

    def __init__(self, checkout: Path):
        self.proc = subprocess.Popen(
            [str(checkout / ".venv/bin/python"), "-c", BEFORE_DRIVER],
            cwd=checkout,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, code: str) -> float:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(code) + "\n")
        self.proc.stdin.flush()
        seconds, status = json.loads(self.proc.stdout.readline())
        if status != "completed":
            raise SystemExit(f"before: {status}")
        return float(seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=10, help="runs per job and runner (default 10)")
    ap.add_argument("--before", type=Path, help="an earlier checkout (with .venv) to compare")
    args = ap.parse_args(argv)
    runners = {"bubblewrap": ColdRunner(slots=1), "none": ColdRunner(slots=1, sandbox="none")}
    before = Before(args.before) if args.before else None
    head = f"{'job':20} {'walls (s)':>10} {'none (s)':>10} {'cost (s)':>9} {'ratio':>6}"
    print(head + (f" {'before (s)':>11} {'walls/before':>13}" if before else ""))
    for name, code in JOBS.items():
        times: dict[str, list[float]] = {k: [] for k in [*runners, "before"]}
        for _ in range(args.repeat):
            for mode, runner in runners.items():
                t0 = time.perf_counter()
                out = runner.run(job(code))
                times[mode].append(time.perf_counter() - t0)
                if out.status != "completed":
                    raise SystemExit(f"{mode}: {out.status}: {out.message} {out.stderr[-500:]}")
            if before:
                times["before"].append(before.run(code))
        walls, none = (statistics.median(times[k]) for k in ("bubblewrap", "none"))
        row = f"{name:20} {walls:10.3f} {none:10.3f} {walls - none:9.3f} {walls / none:6.2f}"
        if before:
            old = statistics.median(times["before"])
            row += f" {old:11.3f} {walls / old:13.2f}"
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
