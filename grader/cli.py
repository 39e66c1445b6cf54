"""The `grader` command line.

Exit codes: 0 done (whatever the scores), 1 something failed for the grader's own reasons
(a submission the grader could not grade, `validate` or `generate --check` failing),
2 usage or operator error (bad option, no such assignment, invalid spec).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.errors import GraderError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _course(ctx: click.Context):
    from grader.course.discovery import find_course

    return find_course(ctx.obj)


def _jobs_default() -> int:
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return max(1, len(cpus) if cpus else (os.cpu_count() or 1))


jobs_option = click.option(
    "--jobs",
    "-j",
    default=_jobs_default,
    show_default="the CPUs available",
    type=click.IntRange(1, 256),
    help="Submissions graded at once, each pinned to its own CPU.",
)

runner_option = click.option(
    "--runner",
    "runner",
    type=click.Choice(["auto", "warm", "cold"]),
    default="auto",
    show_default=True,
    help="warm: TensorFlow imported once per worker and each job forked from it, behind its own "
    "walls; cold: a fresh interpreter per job (the fallback, also where fork or nested user "
    "namespaces are not available). auto: warm where it can run. Every result names the "
    "runner it ran on.",
)


force_option = click.option(
    "--force",
    is_flag=True,
    help="Grade every submission again, even those whose stored result is still valid.",
)


unsafe_option = click.option(
    "--unsafe-no-sandbox",
    "unsafe",
    is_flag=True,
    help="Run student code WITHOUT the sandbox, with your own rights (only where bubblewrap "
    "cannot run; see 'grader doctor'). Every result says so.",
)


def _sandbox(unsafe: bool) -> str:
    return "none" if unsafe else "auto"


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GraderError as exc:
            click.echo(f"grader: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--course",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Course folder (with assignments/, reference/, templates/). Default: $GRADER_COURSE, "
    "else the nearest folder above the working directory that has assignments/.",
)
@click.option(
    "--mnist",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="MNIST to grade with: a Keras mnist.npz, or a folder of the original IDX files. "
    "Default: $GRADER_MNIST, else the Keras cache, else the embedded 5,000 real digits.",
)
@click.version_option(package_name="grader")
@click.pass_context
def main(ctx: click.Context, course: Path | None, mnist: Path | None) -> None:
    """Grade TensorFlow course assignments: sandboxed runs, trusted checks, clear feedback.

    \b
    Examples:
      grader list
      grader check my_perceptron.py --assignment perceptron
      grader grade submissions/ --all --out results/
      grader demo
      grader --mnist /usr/share/datasets/fashion-mnist validate -a mnist_mlp
    """
    if mnist is not None:
        from grader.course.data import ENV_MNIST

        os.environ[ENV_MNIST] = str(mnist)  # read where the data are loaded, once per process
    _memory_ceiling()
    ctx.obj = course


def _memory_ceiling() -> None:
    """The grader's own memory ceiling ($GRADER_MEMORY_MB, default 8192): whatever a
    submission makes the trusted side do, it fails that submission (MemoryError), never the
    machine. A soft limit: the sandbox's launcher lifts it for the jobs, which set their own."""
    import resource

    mb = int(os.environ.get("GRADER_MEMORY_MB", "8192"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = mb * 1024 * 1024
    if hard == resource.RLIM_INFINITY or want < hard:
        resource.setrlimit(resource.RLIMIT_AS, (want, hard))


@main.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """List the assignments: name, title, source in the course notes, points.

    \b
    Example:
      grader list
    """
    course = _course(ctx)
    table = Table(title=f"assignments in {course.root}", title_justify="left")
    for col in ("name", "title", "source", "points"):
        table.add_column(col, justify="right" if col == "points" else "left")
    for a in course.all():
        table.add_row(a.name, a.title, a.source, f"{a.points:g}")
    _console().print(table)


@main.command()
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Write nothing; exit 1 naming the templates that differ.",
)
@click.pass_context
def generate(ctx: click.Context, check_only: bool) -> None:
    """Write templates/ (.py and .ipynb) from the references in reference/.

    \b
    Examples:
      grader generate            # after editing a reference
      grader generate --check    # in CI: are the committed templates up to date?
    """
    from grader.authoring.templates import generate as gen

    course = _course(ctx)
    differ = gen(course, check=check_only)
    if check_only:
        if differ:
            click.echo("templates out of date (run 'grader generate'):", err=True)
            for path in differ:
                click.echo(f"  {path.relative_to(course.root)}", err=True)
            ctx.exit(EXIT_FAILED)
        click.echo(f"templates are up to date ({len(course.names())} assignments)")
        return
    for path in differ:
        click.echo(f"wrote {path.relative_to(course.root)}")
    click.echo(f"templates up to date ({len(differ)} file(s) written)")


@main.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--assignment", "-a", required=True, help="Assignment name (see 'grader list').")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the results.json (Gradescope schema) on stdout."
)
@click.pass_context
def check(ctx: click.Context, file: Path, assignment: str, as_json: bool) -> None:
    """Check your own work before you submit: runs the public checks on FILE (a folder for an
    assignment of several files).

    \b
    Example:
      grader check perceptron.ipynb --assignment perceptron
    """
    from grader.context import grading
    from grader.report.terminal import print_submission

    course = _course(ctx)
    spec = course.assignment(assignment)
    # A self-check runs the student's own code on their own machine: the walls where this
    # machine allows them, else none (and every result says which).
    with grading(course, sandbox="best") as grader_ctx:
        result = grader_ctx.grade(spec, file, visible_only=True)
    if as_json:
        click.echo(json.dumps(result.to_gradescope(), indent=2))
    else:
        print_submission(result, _console())
    if result.run_status == "sandbox_error":
        ctx.exit(EXIT_FAILED)


def _grade_dir(
    ctx,
    directory: Path,
    names: list[str],
    out: Path,
    jobs: int,
    console: Console,
    *,
    missing: bool = True,
    as_json: bool = False,
    nbgrader_db: str | None = None,
    sandbox: str = "auto",
    runner: str = "auto",
    force: bool = False,
    prune: bool = False,
    scheduler: str | None = None,
) -> int:
    from grader.context import grading
    from grader.pipeline import find_submissions
    from grader.references import reference_figures
    from grader.report.terminal import ClassProgress, write_class_outputs
    from grader.run.store import ResultStore

    course = _course(ctx)
    specs = [course.assignment(n) for n in names]
    subs = [
        s for s in find_submissions(directory, specs) if missing or s.path is not None or s.refused
    ]
    if not subs:
        raise GraderError(
            f"no submissions in {directory}: expected {directory}/<student>/<assignment>.py or .ipynb"
        )
    # Every result is stored the moment it is made (OUT/.grader/results): a re-grade runs only
    # what changed, a killed run resumes, and the class outputs are rebuilt from all of it.
    store = ResultStore.under(out, salt={"sandbox": sandbox})
    if prune:
        store.prune(names, {(s.student, s.assignment.name) for s in subs if s.path is not None})
    with (
        grading(course, jobs=jobs, sandbox=sandbox, kind=runner, scheduler=scheduler) as grader_ctx,
        ClassProgress(console, len(subs)) as progress,
    ):
        results = grader_ctx.grade_many(subs, on_result=progress.done, store=store, force=force)
        # The references' own loss curves, for the feedback pages (cached per user).
        progress.say("the references, for comparison")
        everything = store.latest()  # this run's results and every earlier one under OUT
        shown = sorted({r.assignment for r in everything if r.file} & set(course.names()))
        references = reference_figures(grader_ctx, shown)
    gradebook = write_class_outputs(everything, out, references)
    if nbgrader_db:
        from grader.integrations.nbgrader import write_scores

        write_scores(nbgrader_db, [r for r in results if r.run_status != "missing"])
    broken = [r for r in results if r.run_status in ("grader_error", "sandbox_error")]
    if as_json:  # for machines: one object per submission, on stdout, nothing else
        click.echo(json.dumps(_json_summary(results, out, gradebook), indent=2))
    else:
        _print_summary(results, out, gradebook, broken, console)
    return EXIT_FAILED if broken else EXIT_OK


def _json_summary(results: list, out: Path, gradebook: Path) -> dict:
    summary = [
        {
            "student": r.student,
            "assignment": r.assignment,
            "score": r.score,
            "max_score": r.max_score,
            "run_status": r.run_status,
            "reused": r.reused,
            "results": str(out / r.student / r.assignment / "results.json"),
            "feedback": str(out / r.student / r.assignment / "feedback.html"),
        }
        for r in results
    ]
    reused = sum(r.reused for r in results)
    return {
        "gradebook": str(gradebook),
        "graded": len(results) - reused,
        "reused": reused,
        "submissions": summary,
    }


def _print_summary(results: list, out: Path, gradebook: Path, broken: list, console) -> None:
    from grader.report.terminal import class_summary
    from grader.run.names import printable

    console.print(class_summary(results))
    for r in results:
        if r.problems and r.run_status not in ("completed", "missing"):
            line = f"{r.student}/{r.assignment}: {r.problems[0].splitlines()[0]}"
            console.print(Text(printable(line), style="dim"))
    reused = sum(r.reused for r in results)
    console.print(
        f"graded {len(results) - reused}, reused {reused} (unchanged since they were graded; "
        f"--force grades them again); results in {out}/<student>/<assignment>/results.json"
    )
    console.print(f"gradebook: {gradebook}; class page: {out / 'index.html'}")
    if broken:
        console.print(
            f"[magenta]{len(broken)} submission(s) could not be graded for the grader's own reasons[/magenta]"
        )


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--assignment", "-a", "assignment", help="Grade this assignment.")
@click.option("--all", "all_", is_flag=True, help="Grade every assignment found in the course.")
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON summary on stdout instead of tables."
)
@click.option(
    "--nbgrader-db",
    default=None,
    metavar="URL",
    help="Also write the scores into an nbgrader gradebook, e.g. sqlite:///gradebook.db.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Forget the stored results of the assignments graded now whose file is no longer "
    "in DIRECTORY (by default they are kept).",
)
@force_option
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:8786",
    help="Run the submissions on this Dask cluster's workers (each in its own sandbox) instead "
    "of this machine; the checks still run here, on data that never leaves it. --jobs is then "
    "the cluster's worker threads. Needs pip install 'grader[cluster]'.",
)
@jobs_option
@runner_option
@unsafe_option
@click.pass_context
def grade(
    ctx: click.Context,
    directory: Path,
    assignment: str | None,
    all_: bool,
    out: Path,
    as_json: bool,
    nbgrader_db: str | None,
    prune: bool,
    force: bool,
    scheduler: str | None,
    jobs: int,
    runner: str,
    unsafe: bool,
) -> None:
    """Grade a class: DIRECTORY/<student>/<assignment>.py|.ipynb.

    Writes OUT/<student>/<assignment>/results.json (Gradescope schema) and feedback.html,
    OUT/gradebook.csv and the class page OUT/index.html. A broken submission never stops the
    others. Exit 0 when graded (whatever the scores), 1 when some submission could not be
    graded for the grader's own reasons, 2 for a usage error.

    Re-grading and resuming: every result is stored in OUT/.grader/ the moment it is made,
    keyed by a hash of the submission, the spec, the reference, the data set and the grader.
    A new run into the same OUT reuses every result whose key still matches and grades only
    what changed (--force: everything); a run that was killed resumes where it stopped.

    The gradebook and the pages are rebuilt at the end of each run from every result stored
    in OUT (the latest per student and assignment), written atomically: grading another
    assignment or another folder into the same OUT adds to them, and until a run completes
    the previous ones stay as they were. A submission no longer in DIRECTORY keeps its last
    result (nothing graded is lost; a student with no file shows as missing only when nothing
    was graded for them before); --prune forgets those of the assignments graded now.

    \b
    Examples:
      grader grade submissions/ --assignment perceptron --out results/
      grader grade submissions/ --all --out results/ --jobs 2
      grader grade submissions/ --all --out results/ --force   # grade everything again
      grader grade submissions/ --all --out results/ --scheduler tcp://lab01:8786
    """
    if bool(assignment) == bool(all_):
        raise click.UsageError("give --assignment NAME or --all")
    course = _course(ctx)
    names = course.names() if all_ else [str(assignment)]
    console = _console() if not as_json else Console(stderr=True, highlight=False)
    code = _grade_dir(
        ctx,
        directory,
        names,
        out,
        jobs,
        console,
        as_json=as_json,
        nbgrader_db=nbgrader_db,
        sandbox=_sandbox(unsafe),
        runner=runner,
        force=force,
        prune=prune,
        scheduler=scheduler,
    )
    ctx.exit(code)


@main.command()
@click.option(
    "--assignment", "-a", "assignments", multiple=True, help="Validate only these (repeatable)."
)
@jobs_option
@runner_option
@unsafe_option
@click.pass_context
def validate(
    ctx: click.Context, assignments: tuple[str, ...], jobs: int, runner: str, unsafe: bool
) -> None:
    """Check the course itself (what CI runs): every reference scores full marks, every
    template scores zero with one message per unfilled blank, templates are in sync.

    \b
    Example:
      grader validate
      grader validate --assignment perceptron
    """
    from grader.authoring.validate import validate as run_validate

    course = _course(ctx)
    console = _console()
    names = list(assignments) or course.names()
    ok = run_validate(course, names, jobs, console, sandbox=_sandbox(unsafe), kind=runner)
    ctx.exit(EXIT_OK if ok else EXIT_FAILED)


@main.command("nbgrader-export")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--assignment", "-a", "assignments", multiple=True, help="Only these (repeatable).")
@click.pass_context
def nbgrader_export(ctx: click.Context, root: Path, assignments: tuple[str, ...]) -> None:
    """Write an nbgrader course folder: ROOT/source/<name>/<name>.ipynb from the references
    (solution regions marked for nbgrader), ready for `nbgrader generate_assignment`.

    \b
    Example:
      grader nbgrader-export mycourse && cd mycourse && nbgrader generate_assignment perceptron
    """
    from grader.authoring.nbgrader_export import export_course

    course = _course(ctx)
    written = export_course(course, root, list(assignments) or course.names())
    for path in written:
        click.echo(f"wrote {path}")


@main.command()
@click.argument("assignment")
@click.option(
    "--out",
    "-o",
    default=Path("autograder.zip"),
    type=click.Path(dir_okay=False, path_type=Path),
    show_default=True,
)
@click.pass_context
def gradescope(ctx: click.Context, assignment: str, out: Path) -> None:
    """Build a Gradescope autograder bundle (setup.sh, run_autograder, the grader and the spec;
    never the reference solution) for one assignment.

    \b
    Example:
      grader gradescope perceptron --out autograder.zip
    """
    from grader.integrations.gradescope import build_bundle

    course = _course(ctx)
    course.assignment(assignment)  # a usage error naming the fix if unknown
    source = Path(__file__).resolve().parent.parent
    if not (source / "pyproject.toml").is_file():
        source = course.root
    path = build_bundle(course, assignment, out, source_root=source)
    click.echo(f"wrote {path}: upload it as the autograder of {assignment} on Gradescope")


@main.command()
def doctor() -> None:
    """What this machine allows the sandbox to do (namespaces, bubblewrap) and what that means.
    Exit 0 when a class can be graded safely here, 1 otherwise."""
    from grader.report.doctor import diagnose

    rows, verdict, ok = diagnose()
    table = Table(title="grader doctor", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("found", overflow="fold")
    for what, found in rows:
        table.add_row(what, Text(found))
    console = _console()
    console.print(table)
    console.print(Text(verdict, style="green" if ok else "bold red"))
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


@main.command()
@click.option(
    "--out",
    "-o",
    default=Path("demo-results"),
    type=click.Path(file_okay=False, path_type=Path),
    show_default=True,
)
@force_option
@jobs_option
@runner_option
@unsafe_option
@click.pass_context
def demo(ctx: click.Context, out: Path, force: bool, jobs: int, runner: str, unsafe: bool) -> None:
    """Grade the bundled example class (correct, partly correct and broken submissions).

    \b
    Example:
      grader demo --out demo-results
    """
    course = _course(ctx)
    directory = course.examples_dir
    if not directory.is_dir():
        raise GraderError(f"no example class at {directory}")
    console = _console()
    console.print(f"grading the example class in {directory} ...")
    names = sorted(
        {p.stem for p in directory.glob("*/*.*") if p.suffix in (".py", ".ipynb")}
        & set(course.names())
    )
    code = _grade_dir(
        ctx,
        directory,
        names,
        out,
        jobs,
        console,
        missing=False,
        sandbox=_sandbox(unsafe),
        runner=runner,
        force=force,
    )
    console.print(
        f"[bold]demo results are in {out.resolve()}[/bold] (open gradebook.csv, or any results.json)"
    )
    ctx.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
