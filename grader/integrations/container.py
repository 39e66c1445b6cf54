"""What a grading container has and needs: its memory limit (cgroup v2, cgroup v1, or the
machine's), what an assignment needs (grader and job together), and the refusal a student sees
when the container is smaller: never an out-of-memory kill in the middle of a run.

Used by the Gradescope entry point before it grades (`grader.integrations.gradescope`).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "MEMORY_LIMIT_ENV",
    "MEMORY_NEEDED_MB",
    "autograder_notes",
    "container_memory_mb",
    "memory_needed_mb",
    "size_text",
]

# The memory (MB) a container needs to grade one submission, the grader and its sandboxed job
# together: the one place these numbers live. Measured with `benchmarks/memory.py` (README,
# "Memory"): the whole process tree of a run on the reference peaks at 72-78 MB for the NumPy
# assignments (the job does not import TensorFlow), 725-940 MB for the TensorFlow ones on the
# embedded MNIST (the job's own `import tensorflow` is about 690 MB of it; the grader 42-77 MB),
# and 1.2-1.7 GB with a full-size MNIST (60,000 images). Each need leaves a student's heavier
# code (and forks) about 60% beyond the reference's peak.
MEMORY_NEEDED_MB = {
    "numpy": 512,  # the default container (768 MB) is enough
    "tensorflow": 1536,  # 1.5 GB: the default 768 MB is not, TensorFlow alone takes more
    "tensorflow, full-size data": 3072,  # an instructor's MNIST or the Keras cache's: 3 GB
}
# The grader's own share beside a job whose size only its limit bounds (CIFAR-10, not measured).
GRADER_SHARE_MB = 512
# Set by tests (and the benchmark) to stand for the container's limit; read only by this check.
MEMORY_LIMIT_ENV = "GRADER_MEMORY_LIMIT_MB"
# cgroup v1 writes "no limit" as about 2**63 (rounded down to a page).
_NO_LIMIT = 1 << 60


def _full_size_data(spec) -> bool:
    """Whether this assignment would grade on a full-size data set here (an instructor's MNIST,
    the Keras cache's, CIFAR-10), not on the embedded 5,000 digits; found without loading it."""
    from grader.course import data

    family = spec.task.data if spec.task is not None else None
    if family is None:
        return False
    if os.environ.get(data.FAMILIES[family].env):
        return True
    cache = data.keras_cache_dir()
    if family == "mnist":
        return (cache / "mnist.npz").is_file()
    return any((cache / n).is_dir() for n in ("cifar-10-batches-py", "cifar-10-batches-bin"))


def memory_needed_mb(spec, *, full_size: bool | None = None) -> int:
    """The container memory (MB) grading one submission of `spec` needs (`MEMORY_NEEDED_MB`).
    `full_size`: whether it grades on a full-size data set (default: as found on this machine)."""
    if spec.api == "numpy":
        return MEMORY_NEEDED_MB["numpy"]
    if not (_full_size_data(spec) if full_size is None else full_size and spec.task is not None):
        return MEMORY_NEEDED_MB["tensorflow"]
    if spec.task.data == "mnist":
        return MEMORY_NEEDED_MB["tensorflow, full-size data"]
    # Not measured here (no CIFAR-10 on this machine): the job may use up to its own limit.
    return max(
        MEMORY_NEEDED_MB["tensorflow, full-size data"], spec.limits.memory_mb + GRADER_SHARE_MB
    )


def _read_limit(path: Path) -> int | None:
    """Bytes of a cgroup memory limit file; None when absent, unreadable or unlimited."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():  # cgroup v2 "max": no limit
        return None
    value = int(text)
    return value if 0 < value < _NO_LIMIT else None


def _own_cgroups(root: Path) -> tuple[str | None, str | None]:
    """This process's cgroup v2 path and cgroup v1 memory path, from /proc/self/cgroup."""
    v2 = v1 = None
    try:
        lines = (root / "proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _candidates(mount: Path, own: str | None, name: str) -> list[Path]:
    """The limit file of our own cgroup and of every ancestor, and the mount's own (in a
    container the mount is the container's cgroup, whatever path /proc/self/cgroup shows)."""
    out = []
    if own:
        rel = Path(own.lstrip("/"))
        for folder in (rel, *rel.parents):
            out.append(mount / folder / name)
    out.append(mount / name)
    return list(dict.fromkeys(out))


def _mem_total(root: Path) -> int | None:
    try:
        for line in (root / "proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def container_memory_mb(root: Path = Path("/")) -> tuple[int | None, str]:
    """The memory this container may use, in MB, and where that was read: the cgroup v2
    `memory.max` (of this process's cgroup and its ancestors), else the cgroup v1
    `memory/memory.limit_in_bytes`, never above the machine's `MemTotal` (/proc/meminfo).
    `$GRADER_MEMORY_LIMIT_MB` stands for all of them (tests). (None, why) when nothing says."""
    forced = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if forced:
        try:
            return int(forced), f"${MEMORY_LIMIT_ENV}"
        except ValueError:
            pass
    v2, v1 = _own_cgroups(root)
    found: list[tuple[int, str]] = []
    cgroup = root / "sys/fs/cgroup"
    for path in _candidates(cgroup, v2, "memory.max"):
        if (value := _read_limit(path)) is not None:
            found.append((value, "cgroup v2 memory.max"))
    if not found:
        for path in _candidates(cgroup / "memory", v1, "memory.limit_in_bytes"):
            if (value := _read_limit(path)) is not None:
                found.append((value, "cgroup v1 memory.limit_in_bytes"))
    total = _mem_total(root)
    if total is not None:
        found.append((total, "MemTotal in /proc/meminfo"))
    if not found:
        return None, "no cgroup memory limit and no /proc/meminfo"
    value, where = min(found)
    return value // (1024 * 1024), where


def size_text(mb: int) -> str:
    return f"{mb} MB ({mb / 1024:g} GB)" if mb >= 1024 and mb % 256 == 0 else f"{mb} MB"


AUTOGRADER_MD = """# Gradescope autograder: {name}

{title}

## Settings to choose in Gradescope (the assignment's Settings, Autograder settings)

- **Memory: at least {needed}.** {why} Gradescope's default container has 768 MB{default}.
  Below what it needs, every submission gets score 0 and a message naming this setting
  (`run_autograder` checks the container's limit before grading), never an out-of-memory kill.
{full}- **Timeout**: above the {timeout:g} s of CPU time the student's code may use (`[limits]`),
  plus the grader's own start-up and checks (seconds).
- **Base image**: Ubuntu 22.04 or later (Python >= 3.10); `setup.sh` installs bubblewrap.

Measured with `benchmarks/memory.py` in the grader's source (its README, "Memory").
"""


def autograder_notes(spec) -> str:
    """The bundle's `AUTOGRADER.md`: which Gradescope settings this assignment needs."""
    needed = memory_needed_mb(spec, full_size=False)
    if spec.api == "numpy":
        why = (
            "This assignment's code runs without TensorFlow: the whole run (the grader and the "
            "student's code) peaks near 80 MB on the reference solution."
        )
        default = ", which is enough"
    else:
        why = (
            "The student's code runs with TensorFlow, whose import alone takes about 700 MB "
            "resident: the whole run (the grader and the student's code) peaks at 725-940 MB on "
            "the reference solutions, above the default."
        )
        default = ": not enough"
    full = ""
    if spec.task is not None and spec.task.data is not None:
        from grader.course.data import FAMILIES

        family = FAMILIES[spec.task.data]
        basis = (
            "measured: up to 1.7 GB on 60,000 images"
            if family.name == "mnist"
            else f"not measured: the job's own limit, {spec.limits.memory_mb} MB, and the grader's"
        )
        full = (
            f"  With a full-size {family.label} in the image (`${family.env}` set by your "
            f"setup, or the Keras cache), at least "
            f"{size_text(memory_needed_mb(spec, full_size=True))} ({basis}).\n"
        )
    return AUTOGRADER_MD.format(
        name=spec.name,
        title=spec.title,
        needed=size_text(needed),
        why=why,
        default=default,
        full=full,
        timeout=spec.limits.timeout_s,
    )
