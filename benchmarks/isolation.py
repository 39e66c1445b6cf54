"""What the sandbox costs per job: the same jobs with bubblewrap's walls and without, side by side.

Runs each job N times under both runners, interleaved (walls, none, walls, none, ...), and
prints the median time to run it, the difference and the ratio. Two jobs: a trivial NumPy one
(the sandbox's own start-up dominates) and one that imports TensorFlow (the usual job).

Usage (from the course root, as root or as a user):
    .venv/bin/python benchmarks/isolation.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=10, help="runs per job and runner (default 10)")
    args = ap.parse_args(argv)
    runners = {"bubblewrap": ColdRunner(slots=1), "none": ColdRunner(slots=1, sandbox="none")}
    print(f"{'job':20} {'walls (s)':>10} {'none (s)':>10} {'cost (s)':>9} {'ratio':>6}")
    for name, code in JOBS.items():
        times: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.repeat):
            for mode, runner in runners.items():
                t0 = time.perf_counter()
                out = runner.run(job(code))
                times[mode].append(time.perf_counter() - t0)
                if out.status != "completed":
                    raise SystemExit(f"{mode}: {out.status}: {out.message} {out.stderr[-500:]}")
        walls, none = (statistics.median(times[k]) for k in ("bubblewrap", "none"))
        print(f"{name:20} {walls:10.3f} {none:10.3f} {walls - none:9.3f} {walls / none:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
