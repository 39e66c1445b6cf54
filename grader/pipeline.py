"""Grading, as an ordered pipeline:

    load -> find blanks / syntax errors -> run in sandbox -> read artifacts -> checks -> score

The order matters: blanks and syntax errors are found from the text, before any process is
started (a template costs nothing to grade and gets one message per blank); the sandbox is
the only stage that runs student code; the checks see only validated artifacts; the score is
a pure function of the spec and the check results. No stage imports a later one.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader import registry
from grader.checks import Evidence, Missing, Verdict
from grader.checks.base import DrawnRun
from grader.course import draws
from grader.course.data import Splits, splits_for
from grader.course.spec import Assignment, CheckSpec
from grader.errors import SubmissionError
from grader.report import figures as _figures
from grader.results import CheckResult, Status, SubmissionResult
from grader.run import submission as _submission
from grader.run.names import label, name_problem
from grader.run.runner import Job, Runner, RunOutcome
from grader.run.store import NOT_KEPT, ResultStore
from grader.wire import Collect, FunctionCall, call_key

FATAL = {
    "blanks": "not run: the file still has unfilled blanks",
    "syntax": "not run: the file has a syntax error",
    "unreadable": "not run: the file could not be read",
    "timeout": "not checked: your code timed out",
    "memory": "not checked: your code ran out of memory",
    "crash": "not checked: your code's process died",
    "sandbox_error": "not checked: the grader could not run your code (not your fault)",
}


def data_for(assignment: Assignment) -> Splits | None:
    """The data set splits of an image assignment (loaded once per process), or None (not an
    image assignment, or its data set is not on this machine)."""
    task = assignment.task
    if task is None or task.data is None:
        return None
    return splits_for(task.data)


def served(assignment: Assignment, splits: Splits | None) -> dict[str, dict[str, np.ndarray]]:
    """What the sandbox may see of a data set: the training and validation splits only."""
    if splits is None or assignment.task is None or assignment.task.data is None:
        return {}
    return {
        assignment.task.data: {
            "train_x": splits.train_x,
            "train_y": splits.train_y,
            "valid_x": splits.valid_x,
            "valid_y": splits.valid_y,
        }
    }


def probe_inputs(assignment: Assignment, splits=None) -> dict[str, np.ndarray]:
    """Public probe inputs for the wiring and loss checks: points drawn with the grader's seed,
    or, for an image assignment, images of the validation split the sandbox sees anyway."""
    task = assignment.task
    if task is None:
        return {}
    if task.data is not None:
        splits = splits if splits is not None else data_for(assignment)
        if splits is None:  # the data set is not on this machine
            return {}
        images, labels = task.select(splits.valid_x, splits.valid_y)
        n = min(task.probes, len(images))
        probes = {
            "probe_x": task.features(images[:n]).astype(np.float32),
            "probe_y": task.image_targets(images[:n], labels[:n]).astype(np.float32),
        }
        if task.labels == "reconstruction":  # points of the 2-D latent space, for the decoder
            rng = np.random.default_rng(assignment.grading_seed)
            probes["probe_z"] = rng.uniform(-5, 5, (n, 2)).astype(np.float32)
        return probes
    rng = np.random.default_rng(assignment.grading_seed)
    assert task.generator is not None  # a task has a generator or a data set (spec loader)
    points = task.generator.sample(task.probes, rng)
    x = task.features(points)
    if task.labels == "onehot":
        y = np.eye(2)[rng.integers(0, 2, task.probes)]
    elif task.labels == "binary":
        y = rng.integers(0, 2, (task.probes, 1)).astype(float)
    else:
        y = rng.standard_normal(task.probes)
    return {"probe_x": x.astype(np.float32), "probe_y": y.astype(np.float32)}


def _all_failed(checks, reason: str, status: Status = "failed") -> tuple[CheckResult, ...]:
    return tuple(
        CheckResult(c.name, c.check, status, 0.0, c.points, reason, visibility=c.visibility)
        for c in checks
    )


@dataclass(frozen=True)
class Options:
    """`visible_only` runs the public checks only (a student's self-check)."""

    visible_only: bool = False


def grade_file(
    assignment: Assignment,
    path: Path,
    runner: Runner,
    *,
    student: str = "",
    options: Options = Options(),
) -> SubmissionResult:
    """Grade one submission file. Never raises for anything the submission does."""
    done = _Finish(assignment, path, student, time.perf_counter())
    checks = [c for c in assignment.checks if not options.visible_only or c.visibility == "visible"]
    # 1. load: the text alone; blanks and syntax errors end here, before anything runs.
    try:
        if assignment.files:
            parts = _submission.load_parts(path, list(assignment.files))
        else:
            parts = [(path.name, _submission.load(path))]
    except SubmissionError as exc:
        return done("unreadable", _all_failed(checks, FATAL["unreadable"]), [str(exc)])
    notes = [n for _, src in parts for n in src.notes]
    blanks = [b for _, src in parts for b in _submission.find_blanks(src)]
    if blanks:
        reason = f"{FATAL['blanks']} ({len(blanks)})"
        return done("blanks", _all_failed(checks, reason), [b.message for b in blanks], notes)
    syntax = [p for _, src in parts if (p := _submission.check_syntax(src))]
    if syntax:
        return done("syntax", _all_failed(checks, FATAL["syntax"]), [syntax[0].message], notes)
    # 2. run in the sandbox: the only stage that runs student code.
    splits = data_for(assignment)
    # Fresh arguments for this run, from a secret seed: they reach the child only when it asks,
    # after the student's code ran (never in job.json); the reference gives the expected values.
    drawn = draws.draw(_drawn_specs(assignment, checks), draws.fresh_rng())
    job = _job(assignment, path, parts, splits, _collected(assignment, checks), drawn)
    outcome = runner.run(job)
    if outcome.status in FATAL:
        status: Status = "error" if outcome.status == "sandbox_error" else "failed"
        failed = _all_failed(checks, FATAL[outcome.status], status)
        return done(outcome.status, failed, [outcome.message], notes, outcome)
    if not job.run_as_main and assignment.task is not None:
        notes.append(
            f"{assignment.task.data} is not available here: the file was loaded without running "
            f'its `if __name__ == "__main__":` part; the model was checked, not trained'
        )
    problems = [outcome.message] if outcome.message else []
    if outcome.facts.get("collect_error"):
        problems.append(f"collecting results failed: {outcome.facts['collect_error']}")
    # 3. checks on the validated artifacts; 4. figures for the pages (never a score).
    arrays = _capped_records(assignment, outcome.arrays, notes)
    evidence = Evidence(assignment, arrays, outcome.facts, job.inputs, splits)
    if drawn:
        evidence.drawn = _drawn_run(assignment, drawn, outcome, runner, splits)
    t0 = time.perf_counter()
    results = [_run_check(c, evidence) for c in checks]
    timing = {"checks_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    figures = _figures.collect(evidence)
    timing["figures_s"] = time.perf_counter() - t0
    return done(outcome.status, results, problems, notes, outcome, timing, figures)


MAX_RECORD = 100_000  # entries of a loss record the grader reads (plots, messages)


def _capped_records(
    assignment: Assignment, arrays: dict[str, np.ndarray], notes: list[str]
) -> dict[str, np.ndarray]:
    """Loss records longer than MAX_RECORD, thinned to MAX_RECORD evenly spaced entries (the
    first and the last kept): feedback only, and no record makes the grader slow."""
    out = dict(arrays)
    for name in assignment.collect.records:
        record = out.get(name)
        if record is not None and record.size > MAX_RECORD:
            keep = np.linspace(0, record.size - 1, MAX_RECORD).round().astype(np.int64)
            out[name] = record.ravel()[keep]
            notes.append(
                f"`{name}` has {record.size:,} entries; the grader read {MAX_RECORD:,} of them, "
                f"evenly spaced"
            )
    return out


@dataclass(frozen=True)
class _Finish:
    """Builds the `SubmissionResult` of one grading, whichever stage it ended in."""

    assignment: Assignment
    path: Path
    student: str
    started: float

    def __call__(
        self,
        run_status: str,
        results: Iterable[CheckResult],
        problems: Iterable[str] = (),
        notes: Iterable[str] = (),
        outcome: RunOutcome | None = None,
        timing: dict[str, float] | None = None,
        figures: dict | None = None,
    ) -> SubmissionResult:
        all_timing = {**(outcome.timing if outcome else {}), **(timing or {})}
        all_timing["total_s"] = time.perf_counter() - self.started
        splits = data_for(self.assignment)
        return SubmissionResult(
            assignment=self.assignment.name,
            student=self.student,
            file=str(self.path),
            data=splits.describe() if splits is not None else {},
            run_status=run_status,
            checks=tuple(results),
            problems=tuple(problems),
            notes=tuple(notes),
            log=outcome.stdout if outcome else "",
            timing=all_timing,
            isolation=outcome.isolation if outcome else (),
            figures=figures or {},
        )


def _collected(assignment: Assignment, checks: list[CheckSpec]) -> Collect:
    """What the child collects for these checks: a self-check (public checks only) never hands
    the child the inputs of a hidden check (the new numbers a hidden `values` check calls the
    student's functions with)."""
    if len(checks) == len(assignment.checks):
        return assignment.collect
    wanted = set(_strings([c.params for c in checks]))
    return dataclasses.replace(
        assignment.collect,
        calls=tuple(c for c in assignment.collect.calls if call_key(c.id) in wanted),
        call_counts=tuple(c for c in assignment.collect.call_counts if c.function in wanted),
    )


def _drawn_specs(assignment: Assignment, checks: list[CheckSpec]) -> tuple[draws.CallDraw, ...]:
    """The `[[drawn_calls]]` these checks use (a self-check draws none for a hidden check)."""
    wanted = set(_strings([c.params for c in checks]))
    return tuple(d for d in assignment.drawn_calls if d.id in wanted)


def _drawn_run(
    assignment: Assignment,
    drawn: tuple[FunctionCall, ...],
    outcome: RunOutcome,
    runner: Runner,
    splits: Splits | None,
) -> DrawnRun:
    """What the trusted side knows of the drawn calls: whether the runner handed them over, and
    the expected values. Those come from the reference solution, run in the same sandbox with
    the same drawn arguments (and nothing else collected): the course's single source of truth,
    so any assignment gets drawn calls without an oracle written twice, and nothing the
    student's run reported is ever an expected value. Only run when the student's process
    asked for the calls (otherwise nothing it reported about them counts anyway)."""
    calls = {c.id: c for c in drawn}
    if not outcome.drawn_sent:
        return DrawnRun(calls)
    ref = assignment.reference
    if not ref.exists():
        return DrawnRun(calls, True, reference_missing=True)
    try:
        if assignment.files:
            parts = _submission.load_parts(ref, list(assignment.files))
        else:
            parts = [(ref.name, _submission.load(ref))]
    except SubmissionError as exc:
        return DrawnRun(calls, True, reference_problem=f"it could not be read: {exc}")
    got = runner.run(_job(assignment, ref, parts, splits, Collect(), drawn))
    errors = got.facts.get("call_errors", {})
    if got.status != "completed" or not got.drawn_sent or errors:
        why = got.message or "; ".join(f"{k}: {v}" for k, v in errors.items()) or got.status
        return DrawnRun(calls, True, reference_problem=f"{got.status}: {why}")
    expected = {
        c: np.asarray(got.arrays[call_key(c)], dtype=np.float64)
        for c in calls
        if call_key(c) in got.arrays
    }
    return DrawnRun(calls, True, expected)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _job(
    assignment: Assignment,
    path: Path,
    parts: list[tuple[str, _submission.Source]],
    splits: Splits | None,
    collect: Collect,
    drawn: tuple[FunctionCall, ...] = (),
) -> Job:
    """The sandbox job of a submission that loaded: its code, the grader's public inputs."""
    source = parts[0][1]
    uses_tf = any(
        _submission.mentions(src, "tensorflow") or _submission.mentions(src, "keras")
        for _, src in parts
    )
    return Job(
        display_name=path.name,
        code=source.code,
        where=source.where,
        collect=collect,
        inputs=probe_inputs(assignment, splits),
        seed=assignment.seed,
        tensorflow=assignment.api in ("tf1", "keras") and uses_tf,
        modules={name: (src.code, src.where) for name, src in parts} if assignment.files else {},
        stages=assignment.stages,
        api=assignment.api,
        run_as_main=not (assignment.task and assignment.task.data and splits is None),
        limits=assignment.limits,
        datasets=served(assignment, splits),
        drawn=drawn,
    )


def _run_check(spec, evidence: Evidence) -> CheckResult:
    fn = registry.get(spec.check)
    assert fn is not None, spec.check  # the spec loader checked the name
    try:
        verdict: Verdict = fn(evidence, **spec.params)
    except Missing as exc:
        verdict = Verdict(0.0, str(exc))
    except (MemoryError, RecursionError) as exc:  # what the student handed back is too big
        what = "too large" if isinstance(exc, MemoryError) else "too deeply nested"
        verdict = Verdict(0.0, f"what your code handed back is {what} to check")
    except Exception as exc:  # noqa: BLE001 - the grader broke: say so, do not blame the student
        return CheckResult(
            spec.name,
            spec.check,
            "error",
            0.0,
            spec.points,
            f"the grader failed while checking ({type(exc).__name__}: {exc}); not your fault",
            visibility=spec.visibility,
        )
    score = max(0.0, min(1.0, float(verdict.score)))
    if verdict.skipped:  # could not be checked here: says so, never counts as passed
        return CheckResult(
            spec.name,
            spec.check,
            "skipped",
            0.0,
            spec.points,
            verdict.message,
            visibility=spec.visibility,
        )
    return CheckResult(
        spec.name,
        spec.check,
        "passed" if score >= 1.0 else "failed",
        round(score * spec.points, 4),
        spec.points,
        verdict.message,
        verdict.expected,
        verdict.got,
        spec.visibility,
    )


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: Assignment
    path: Path | None  # None: the student has no file for this assignment
    refused: str = ""  # why the grader will not read it: a link, a name it cannot use


def find_submissions(directory: Path, assignments: Iterable[Assignment]) -> list[Submission]:
    """`DIR/<student>/<assignment>.py|.ipynb`, or an nbgrader-style
    `DIR/<student>/<assignment>/<file>.py|.ipynb`. A `.ipynb` wins over a `.py` of the same name.

    Links are never followed (a link could point at a reference, another student's work or any
    file of the machine): a linked folder or file is refused with a message, and so is a
    student folder whose name the outputs cannot use safely (see `grader.run.names`)."""
    assignments = list(assignments)
    subs = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        reason = name_problem(entry.name)
        if reason is None and entry.is_symlink():
            reason = "the student's folder is a link; links are refused"
        if reason is None and not entry.is_dir(follow_symlinks=False):
            continue
        for a in assignments:
            if reason:
                subs.append(Submission(label(entry.name), a, None, f"refused: {reason}"))
            else:
                subs.append(_find_one(Path(entry.path), a))
    return subs


def _find_one(student_dir: Path, a: Assignment) -> Submission:
    student = student_dir.name
    if a.files:  # several files: the submission is the folder that holds them
        folder = student_dir / a.name
        if folder.is_symlink():
            return Submission(student, a, None, f"refused: {a.name} is a link; links are refused")
        return Submission(student, a, folder if folder.is_dir() else None)
    candidates = [student_dir / f"{a.name}.ipynb", student_dir / f"{a.name}.py"]
    inner = student_dir / a.name
    if inner.is_dir() and not inner.is_symlink():
        candidates += sorted(inner.glob("*.ipynb")) + sorted(inner.glob("*.py"))
    for candidate in candidates:
        if (why := name_problem(candidate.name)) is not None:
            return Submission(student, a, None, f"refused: a file's name: {why}")
        if candidate.is_symlink():
            return Submission(
                student, a, None, f"refused: {candidate.name} is a link; links are refused"
            )
        if candidate.is_file():
            return Submission(student, a, candidate)
    return Submission(student, a, None)


def missing_result(sub: Submission) -> SubmissionResult:
    refused = sub.refused
    return SubmissionResult(
        assignment=sub.assignment.name,
        student=sub.student,
        file="",
        run_status="refused" if refused else "missing",
        checks=_all_failed(sub.assignment.checks, refused or "no submission"),
        problems=(
            refused or f"no {sub.assignment.name}.py or {sub.assignment.name}.ipynb submitted",
        ),
    )


def grade_many(
    submissions: list[Submission],
    runner: Runner,
    *,
    jobs: int = 2,
    on_result: Callable[[SubmissionResult], None] | None = None,
    store: ResultStore | None = None,
    force: bool = False,
) -> list[SubmissionResult]:
    """Grade submissions concurrently; one broken submission never stops the others.

    Args:
        submissions: what to grade, in the order of the results returned.
        runner: runs the sandbox jobs.
        jobs: submissions graded at once. Defaults to `2`.
        on_result: called with each result as soon as it is made (and stored), from the
            thread that made it; the store's results come first, marked `reused`.
        store: where results are looked up (by content hash) and kept the moment each one is
            made, so a re-grade runs only what changed and a killed batch resumes. A student
            with no file now keeps their stored grade (returned `reused`). Defaults to `None`:
            grade everything, keep nothing.
        force: grade everything again, even what the store has (results are still stored).
            Defaults to `False`.
    """
    results: list[SubmissionResult | None] = [None] * len(submissions)
    keys: dict[int, str] = {}
    todo: list[int] = []
    # First the store and the submissions without a file (nothing runs for them), so that
    # `on_result` sees them before any grading, and a progress bar's rate counts only work.
    for i, sub in enumerate(submissions):
        found = _without_running(sub, store, force, keys, i)
        if found is None:
            todo.append(i)
            continue
        results[i] = found
        if on_result:
            on_result(found)

    def one(i: int) -> SubmissionResult:
        result = _grade_one(submissions[i], runner)
        if store is not None:
            store.put(result, keys.get(i, ""))
        if on_result:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for i, result in zip(todo, pool.map(one, todo), strict=True):
            results[i] = result
    return [r for r in results if r is not None]


def _without_running(
    sub: Submission, store: ResultStore | None, force: bool, keys: dict[int, str], i: int
) -> SubmissionResult | None:
    """The result of `sub` when nothing needs to run: it has no file (missing, refused), or the
    store has its result for exactly this content. None: grade it (its key put in `keys`)."""
    name = sub.assignment.name
    if sub.path is None:
        if store is not None:
            entry = store.entry(sub.student, name)
            if entry is not None and entry.result.run_status not in NOT_KEPT:
                return dataclasses.replace(entry.result, reused=True)  # its file went away
        result = missing_result(sub)
        if store is not None:
            store.put(result, "")
        return result
    if store is None:
        return None
    try:
        keys[i] = store.key(sub.assignment, sub.path)
    except OSError:  # unreadable: grading says so (and the result is never reused)
        return None
    stored = None if force else store.get(sub.student, name, keys[i])
    if stored is None:
        return None
    return dataclasses.replace(stored, file=str(sub.path), reused=True)


def _grade_one(sub: Submission, runner: Runner) -> SubmissionResult:
    assert sub.path is not None  # the ones without a file never run (_without_running)
    try:
        return grade_file(sub.assignment, sub.path, runner, student=sub.student)
    except Exception as exc:  # noqa: BLE001 - the grader broke on this one: record, go on
        return SubmissionResult(
            assignment=sub.assignment.name,
            student=sub.student,
            file=str(sub.path),
            run_status="grader_error",
            checks=_all_failed(sub.assignment.checks, f"the grader failed: {exc}", "error"),
            problems=(f"the grader failed on this submission: {type(exc).__name__}: {exc}",),
        )
