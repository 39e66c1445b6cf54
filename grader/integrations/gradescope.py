"""Gradescope autograder bundles, and the entry point the bundle runs on Gradescope.

`build_bundle` writes the zip an instructor uploads as a Gradescope "autograder"; inside it,
`run_autograder` calls this module's entry point once per submission:

    python -m grader.integrations.gradescope run --course DIR --assignment NAME \\
        --submission PATH --results PATH

which grades with ALL the checks of the spec (the hidden ones too, unlike `grader check`), in
the same sandbox as `grader grade`, and always writes a `results.json`: when grading fails
for the grader's own reasons, the student gets score 0 and an output saying it is not their
fault, and the exit status is 1 (for the instructor's log).

Gradescope runs `run_autograder` as root in a Docker container that may refuse the mount and
network namespaces the sandbox uses as root. This entry point probes for them first; where
they are refused, it grades as an unprivileged uid of its own instead (the sandbox then falls
back to what it does on a student's laptop), says so in the results' `extra_data`, and kills
whatever is left running as that uid afterwards.

Before grading, it reads the container's memory limit (`container_memory_mb`) and, when it is
below what the assignment needs (`memory_needed_mb`, measured by `benchmarks/memory.py`),
writes a `results.json` with score 0 that names the memory setting to choose, and exits 1:
never an out-of-memory kill halfway through, with no results at all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.integrations.container import (  # re-exported: the bundle's check
    autograder_notes,
    container_memory_mb,
    memory_needed_mb,
    size_text,
)

__all__ = [
    "autograder_notes",
    "build_bundle",
    "container_memory_mb",
    "find_submission",
    "main",
    "memory_needed_mb",
    "memory_refusal",
]

# No account has it (so ending its processes ends nobody else's); below the sandbox's own
# slot uids, and within the 16-bit range every container maps.
FALLBACK_UID = 64_999


SKIP_NAMES = {"__pycache__", ".pytest_cache", ".ruff_cache", ".git", ".ipynb_checkpoints"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")

# A fixed timestamp: the same course gives the same zip, byte for byte.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (network: PyPI).
# It installs the grader shipped in this bundle, and its dependencies, into a virtual
# environment beside the bundle: $AUTOGRADER_ROOT/venv (/autograder/venv on Gradescope).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3 python3-venv python3-pip bubblewrap
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "setup.sh: the grader needs Python >= 3.10 (found $(python3 -V 2>&1));" \
        "choose an Ubuntu 22.04 or later base image in the autograder settings" >&2
    exit 1
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install "$SOURCE"
# The reference solution ships only for drawn calls (their expected values come from its run):
# readable by root alone, so neither the sandbox nor the no-walls fallback uid can read it.
if [ -d "$SOURCE/reference" ]; then
    chown -R 0:0 "$SOURCE/reference" 2>/dev/null || true
    chmod -R go-rwx "$SOURCE/reference"
fi
# Fail the image build now, not at the first submission, if the install is broken.
"$VENV/bin/python" -c "import grader.integrations.gradescope, grader.pipeline"
echo "setup.sh: grader installed in $VENV"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission. Paths follow the Gradescope autograder
# specification under $AUTOGRADER_ROOT (default /autograder): the bundle in source/, the
# student's files in submission/, the results in results/results.json.
# $GRADER_PYTHON picks the interpreter (default: the venv setup.sh made, else python3).
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
SUBMISSION="$ROOT/submission"
RESULTS="$ROOT/results/results.json"
ASSIGNMENT=@ASSIGNMENT@
if [ -n "${GRADER_PYTHON:-}" ]; then
    PY="$GRADER_PYTHON"
elif [ -x "$ROOT/venv/bin/python" ]; then
    PY="$ROOT/venv/bin/python"
else
    PY=python3
fi
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$ROOT" || exit 1
"$PY" -m grader.integrations.gradescope run --course "$SOURCE" --assignment "$ASSIGNMENT" \
    --submission "$SUBMISSION" --results "$RESULTS"
status=$?
echo "run_autograder: the grader exited with status $status"
if [ ! -s "$RESULTS" ]; then
    # The grader could not even start (interpreter or install broken): Gradescope still
    # gets a results.json, and the student learns it is not their fault.
    cat >"$RESULTS" <<EOF
{"score": 0, "output": "The autograder could not start (exit status $status). This is not your fault: please tell your instructor.", "stdout_visibility": "hidden", "tests": []}
EOF
fi
exit 0
"""


# --------------------------------------------------------------------------- the bundle


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _wanted(path: Path) -> bool:
    return not any(p in SKIP_NAMES or p.endswith(SKIP_SUFFIXES) for p in path.parts)


def _tree(folder: Path, prefix: str) -> list[tuple[str, Path]]:
    """(name in the zip, file) for every file under `folder`, caches and build output left out;
    symlinks are refused (a bundle must not depend on, or leak, what they point to)."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not _wanted(rel):
            continue
        if path.is_symlink():
            raise GraderError(f"{path} is a symbolic link: a Gradescope bundle takes plain files")
        if path.is_file():
            out.append((f"{prefix}/{rel.as_posix()}", path))
    return out


def _add(
    zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False, private: bool = False
) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix: the external attributes carry the file mode
    mode = 0o600 if private else 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    zf.writestr(info, data)


def build_bundle(course, assignment_name: str, out_zip: Path, *, source_root: Path) -> Path:
    """Write the Gradescope autograder zip of one assignment; returns `out_zip`.

    Args:
        course: the `grader.course.discovery.Course` the assignment belongs to.
        assignment_name: an assignment of that course (a `GraderError` names the known ones).
        out_zip: where to write the zip (its folder is created; an existing file is replaced).
        source_root: the grader's source checkout: `source_root/grader/` (the package) and
            `source_root/pyproject.toml` are shipped, so that `setup.sh` installs exactly this
            grader with pip (from PyPI only its dependencies).

    The zip holds, at its root (the Gradescope autograder specification):
        `setup.sh`            installs the bundled grader into a venv ($AUTOGRADER_ROOT/venv)
        `AUTOGRADER.md`       the Gradescope settings it needs: the container's memory above all
                              (`memory_needed_mb`; the default 768 MB is too little for TensorFlow)
        `run_autograder`      executable; grades $AUTOGRADER_ROOT/submission with all checks
                              and writes $AUTOGRADER_ROOT/results/results.json (always)
        `assignments/<name>/` the assignment's spec folder
        `grader/`, `pyproject.toml` (and `README.md`, which pyproject names) the package
        `reference/<name>`    only for an assignment with drawn calls (`[[drawn_calls]]`): the
                              expected values come from the reference's own run on arguments
                              drawn at grading time. Mode 0600, and `setup.sh` makes it root's
                              alone: the sandbox never sees it, nor the no-walls fallback uid.
    and nothing else: no other solutions, no templates, tests or `.git`.

    `$AUTOGRADER_ROOT` defaults to `/autograder`; set it (and `$GRADER_PYTHON`, the
    interpreter, default the venv `setup.sh` made, else `python3`) to run a bundle locally.
    The student submits `<name>.py` or `<name>.ipynb` (or one `.py`/`.ipynb` of any name);
    for a multi-file assignment (`[run] files = [...]`), those files.
    """
    spec = course.assignment(assignment_name)  # GraderError (usage) for an unknown name
    source_root = Path(source_root)
    package = source_root / "grader"
    pyproject = source_root / "pyproject.toml"
    for needed in (package / "__init__.py", pyproject):
        if not needed.is_file():
            raise GraderError(
                f"{needed} not found: source_root must be the grader's source checkout "
                f"(the folder holding grader/ and pyproject.toml)"
            )
    spec_dir = course.assignments_dir / spec.name
    files = _tree(package, "grader") + _tree(spec_dir, f"assignments/{spec.name}")
    files.append(("pyproject.toml", pyproject))
    private: list[tuple[str, Path]] = []
    if spec.drawn_calls:
        ref = course.reference(spec.name)
        if ref.is_file():
            private.append((f"reference/{ref.name}", ref))
        elif ref.is_dir():
            private += _tree(ref, f"reference/{ref.name}")
    if (source_root / "README.md").is_file():  # pyproject's `readme`: pip needs it to build
        files.append(("README.md", source_root / "README.md"))
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            _add(zf, "setup.sh", SETUP_SH.encode(), executable=True)
            script = RUN_AUTOGRADER.replace("@ASSIGNMENT@", _shell_quote(spec.name))
            _add(zf, "run_autograder", script.encode(), executable=True)
            _add(zf, "AUTOGRADER.md", autograder_notes(spec).encode())
            for name, path in files:
                _add(zf, name, path.read_bytes(), executable=bool(path.stat().st_mode & 0o111))
            for name, path in private:
                _add(zf, name, path.read_bytes(), private=True)
        os.replace(tmp, out_zip)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_zip


# --------------------------------------------------------------------------- the submission


class NoSubmission(Exception):
    """The submission folder holds nothing gradeable for this assignment (the student's doing)."""


def _visible_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix in suffixes
        and not any(
            part.startswith(".") or part in SKIP_NAMES for part in p.relative_to(folder).parts
        )
    )


def find_submission(folder: Path, spec) -> Path:
    """The file (or, for a multi-file assignment, the folder) to grade in Gradescope's
    submission folder: `<name>.ipynb` or `<name>.py` (a notebook wins, as in `grader grade`),
    at the top or in a sub-folder; else the only `.py`/`.ipynb` there is. Raises `NoSubmission`
    with a message for the student."""
    folder = Path(folder)
    if folder.is_file():
        return folder
    if not folder.is_dir():
        raise NoSubmission(f"no submission folder at {folder}")
    if spec.files:  # several files: the folder that holds them (load_parts names what is missing)
        first = Path(spec.files[0])
        names = {first.name, f"{first.stem}.ipynb"}
        if any((folder / n).is_file() for n in names):
            return folder
        holders = sorted(
            {p.parent for p in _visible_files(folder, (".py", ".ipynb")) if p.name in names}
        )
        return holders[0] if len(holders) == 1 else folder
    everything = _visible_files(folder, (".py", ".ipynb"))
    for name in (f"{spec.name}.ipynb", f"{spec.name}.py"):
        if (folder / name).is_file():
            return folder / name
        named = [p for p in everything if p.name == name]
        if len(named) == 1:
            return named[0]
    if len(everything) == 1:
        return everything[0]
    found = ", ".join(str(p.relative_to(folder)) for p in everything[:10]) or "no .py or .ipynb"
    raise NoSubmission(
        f"submit {spec.name}.py or {spec.name}.ipynb (found: {found}); rename your file and "
        f"submit again"
    )


# --------------------------------------------------------------------------- memory


def memory_refusal(spec, root: Path = Path("/")) -> dict[str, Any] | None:
    """A `results.json` (score 0, saying which memory setting to choose) when this container has
    less memory than grading `spec` needs; None when it has enough, or when nothing says."""
    needed = memory_needed_mb(spec)
    limit, where = container_memory_mb(root)
    if limit is None or limit >= needed:
        return None
    message = (
        f"this autograder needs at least {needed} MB of memory; the container has {limit} MB: "
        f"set the autograder's memory to {size_text(needed)} or more in Gradescope's settings "
        f"(the assignment's Settings, Autograder settings)"
    )
    payload = error_payload(message)
    payload["extra_data"]["memory"] = {"needed_mb": needed, "limit_mb": limit, "read_from": where}
    return payload


# --------------------------------------------------------------------------- grading


def _namespaces_available() -> bool:
    """Whether bubblewrap can build a job's walls in this container (user namespaces allowed)."""
    from grader.run import walls

    return walls.probe() is None


def _no_submission_result(spec, message: str):
    from grader.results import CheckResult, SubmissionResult

    checks = tuple(
        CheckResult(
            c.name, c.check, "failed", 0.0, c.points, "no file to grade", visibility=c.visibility
        )
        for c in spec.checks
    )
    return SubmissionResult(
        assignment=spec.name,
        student="",
        file="",
        run_status="missing",
        checks=checks,
        problems=(message,),
    )


def _grade(
    course_dir: Path,
    assignment: str,
    submission: Path,
    results: Path | None,
    sandbox: str = "auto",
):
    """Grade with every check of the spec; the `SubmissionResult`."""
    from grader.context import grading
    from grader.course.discovery import find_course

    course = find_course(course_dir)
    spec = course.assignment(assignment)
    try:
        path = find_submission(submission, spec)
    except NoSubmission as exc:
        return _no_submission_result(spec, str(exc))
    with grading(course, sandbox=sandbox) as ctx:
        return ctx.grade(spec, path)


def error_payload(message: str, detail: str = "") -> dict[str, Any]:
    """A valid `results.json` for a grading that failed for the grader's own reasons."""
    return {
        "score": 0.0,
        "output": (
            f"The autograder failed: {message}\nThis is not your fault: please tell your "
            f"instructor, who can run the autograder on your submission again."
        ),
        "stdout_visibility": "hidden",
        "tests": [],
        "extra_data": {"grader_error": message, "traceback": detail},
    }


def _write(payload: dict[str, Any], results: Path | None, fd: int | None) -> None:
    text = json.dumps(payload, indent=2) + "\n"
    if fd is not None:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    from grader.results import write_atomic

    if results is None:
        raise ValueError("neither a results file nor a descriptor to write to")
    write_atomic(results, text)


def grade_in_subprocess(argv: list[str], *, user: int | None) -> dict[str, Any]:
    """Run `run ... --results-fd N` in a child process (as uid `user`, if given) and return the
    results it hands back through a pipe. A pipe, not a file: the child's own sandboxed
    children never inherit it, so nothing student code leaves behind can rewrite it."""
    read_end, write_end = os.pipe()
    home = Path(tempfile.mkdtemp(prefix="grader-gradescope-"))
    home.chmod(0o711)  # the sandbox's own unprivileged uids must traverse it to their job folders
    env = dict(os.environ, HOME=str(home), TMPDIR=str(home))
    kwargs: dict[str, Any] = {}
    if user is not None:
        os.chown(home, user, user)
        kwargs = {"user": user, "group": user, "extra_groups": []}
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "grader.integrations.gradescope",
                *argv,
                "--results-fd",
                str(write_end),
            ],
            pass_fds=(write_end,),
            env=env,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )
        os.close(write_end)
        write_end = -1
        with os.fdopen(read_end, "rb") as fh:
            read_end = -1
            data = fh.read()
        proc.wait()
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        if user is not None:
            _kill_user(user)
        shutil.rmtree(home, ignore_errors=True)
    try:
        payload = json.loads(data)
    except ValueError:
        return error_payload(
            f"the grading process ended (status {proc.returncode}) without results"
        )
    if not isinstance(payload, dict):
        return error_payload("the grading process handed back malformed results")
    return payload


def _kill_user(uid: int) -> None:
    """Kill whatever is left running as `uid` (a student's stray background process)."""
    from grader.run.procs import kill_uid

    kill_uid(uid)


def _grade_unprivileged(args: argparse.Namespace) -> dict[str, Any]:
    """Root without namespaces: grade in a child process running as `FALLBACK_UID`."""
    uid = FALLBACK_UID
    scratch = Path(tempfile.mkdtemp(prefix="grader-submission-"))
    try:
        # That uid must be able to read the submission (Gradescope's may be root's alone).
        submission = Path(args.submission)
        if submission.exists():
            copy = scratch / submission.name
            if submission.is_dir():
                shutil.copytree(submission, copy, symlinks=True)
            else:
                shutil.copy2(submission, copy)
            submission = copy
        for path in [scratch, *scratch.rglob("*")]:
            os.lchown(path, uid, uid)
        argv = ["run", "--course", str(args.course), "--assignment", args.assignment]
        argv += ["--unsafe-no-sandbox"]  # no walls can be built here: said in the results
        payload = grade_in_subprocess([*argv, "--submission", str(submission)], user=uid)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    note = (
        f"this container refuses user namespaces, so bubblewrap cannot wall the job in: graded "
        f"as the unprivileged uid {uid} without a sandbox (it can read what that uid can read "
        f"in the container; a reference solution in the bundle is root's alone)"
    )
    extra = payload.setdefault("extra_data", {})
    if isinstance(extra, dict):
        extra["gradescope"] = {"note": note}
    print(note)
    return payload


def _run(args: argparse.Namespace) -> int:
    results = Path(args.results) if args.results else None
    try:
        refusal = None
        if args.results_fd is None:  # the top-level run (a child run was checked by its parent)
            from grader.course.discovery import find_course

            refusal = memory_refusal(find_course(Path(args.course)).assignment(args.assignment))
        if refusal is not None:
            payload, failed = refusal, True
            print(f"grading refused: {refusal['extra_data']['grader_error']}", file=sys.stderr)
        elif args.results_fd is None and os.geteuid() == 0 and not _namespaces_available():
            payload = _grade_unprivileged(args)
            extra = payload.get("extra_data") or {}
            failed = "grader_error" in extra or extra.get("run_status") == "sandbox_error"
        else:
            result = _grade(
                Path(args.course),
                args.assignment,
                Path(args.submission),
                results,
                sandbox="none" if args.unsafe_no_sandbox else "auto",
            )
            payload = result.to_gradescope()
            failed = result.run_status == "sandbox_error"
            print(
                f"{args.assignment}: {result.score:g} / {result.max_score:g} ({result.run_status})"
            )
    except BaseException as exc:  # noqa: BLE001 - whatever broke, Gradescope gets results
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = f"{type(exc).__name__}: {exc}"
        print(f"grading failed: {message}", file=sys.stderr)
        payload, failed = error_payload(message, traceback.format_exc()), True
    _write(payload, results, args.results_fd)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.integrations.gradescope",
        description="Grade one Gradescope submission with all checks; write results.json.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="grade a submission (what run_autograder calls)")
    run.add_argument("--course", required=True, help="the course folder (the bundle: source/)")
    run.add_argument("--assignment", required=True, help="the assignment name")
    run.add_argument(
        "--submission", required=True, help="the student's file, or the folder holding it"
    )
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--results", help="where to write results.json")
    where.add_argument("--results-fd", type=int, help=argparse.SUPPRESS)  # internal: a pipe
    run.add_argument("--unsafe-no-sandbox", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
