"""Reading a submission: `.py` or `.ipynb` into one script with a map back to the student's lines.

Nothing here runs student code. Blanks and syntax errors are found from the text alone, so a
template is graded zero with one message per blank without ever starting a sandbox.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import SubmissionError

BLANK = "___"


@dataclass(frozen=True)
class Source:
    """A submission as one script.

    `where[i]` is the student's name for line i+1 of `code` ("line 12" for a `.py`,
    "cell 4, line 2" for a notebook).
    """

    path: Path
    code: str
    where: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    def locate(self, lineno: int) -> str:
        if 1 <= lineno <= len(self.where):
            return self.where[lineno - 1]
        return f"line {lineno}"

    def line(self, lineno: int) -> str:
        lines = self.code.splitlines()
        return lines[lineno - 1].strip() if 1 <= lineno <= len(lines) else ""


@dataclass(frozen=True)
class Problem:
    """Something wrong with the text of a submission, found before running it."""

    where: str
    text: str
    message: str


def _statement_starts(lines: list[str]) -> set[int]:
    """0-based indices of lines that begin a logical line: not inside a bracket left open on an
    earlier line, not inside a multi-line string. Only such a line can be an IPython magic."""
    starts: set[int] = set()
    expect = True
    skip = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    failed_at = len(lines)
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            if tok.type in skip:
                continue
            if expect:
                starts.add(tok.start[0] - 1)
                expect = False
            if tok.type == tokenize.NEWLINE:
                expect = True
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        # Tokenizing stopped (a shell line with an odd quote, say): from there on, judge lines
        # one by one as IPython's own line-based transformer does.
        failed_at = exc.args[1][0] - 1 if len(exc.args) > 1 and exc.args[1] else 0
        failed_at = min(failed_at, max(starts, default=-1) + 1)
    starts.update(range(failed_at, len(lines)))
    return starts


def _neutralise_magics(lines: list[str], where: list[str], notes: list[str]) -> list[str]:
    """Comment out IPython magics and shell escapes; they are never executed in the sandbox."""
    starts = _statement_starts(lines)
    out = []
    for i, (line, loc) in enumerate(zip(lines, where, strict=True)):
        stripped = line.lstrip()
        if i in starts and stripped.startswith(("%", "!")) and not stripped.startswith("!="):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}pass  # not run by the grader: {stripped}")
            notes.append(
                f"{loc}: `{stripped.strip()}` is an IPython magic or shell command; not run"
            )
        else:
            out.append(line)
    return out


MAX_PY_BYTES = 1 << 20  # 1 MiB of Python is far beyond any assignment
MAX_NOTEBOOK_BYTES = 20 << 20  # notebooks carry outputs (plots); they are not graded
MAX_CELLS = 2000
MAX_LINES = 50_000


def read_no_links(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, opened without following a link, at most `limit` of them;
    SubmissionError for a link, a special file or a larger file."""
    try:
        fd = os.open(
            path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SubmissionError(f"{path.name} is a link; submit the file itself") from exc
        raise SubmissionError(f"cannot read {path.name}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise SubmissionError(
                f"{path.name} is too large: {info.st_size:,} bytes; the limit is {limit:,}"
            )
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise SubmissionError(f"{path.name} is too large: more than {limit:,} bytes")
    return data


def load(path: str | Path) -> Source:
    """Read a `.py` or `.ipynb` submission; raises SubmissionError naming what is wrong."""
    path = Path(path)
    if path.suffix not in (".py", ".ipynb"):
        raise SubmissionError(f"{path}: a submission must be a .py or .ipynb file")
    raw = read_no_links(path, MAX_NOTEBOOK_BYTES if path.suffix == ".ipynb" else MAX_PY_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    notes: list[str] = []
    try:
        if path.suffix == ".ipynb":
            lines, where = _notebook_lines(path, text, notes)
        else:
            lines = text.splitlines()
            where = [f"line {i}" for i in range(1, len(lines) + 1)]
            lines = _neutralise_magics(lines, where, notes)
    except RecursionError as exc:
        raise SubmissionError(f"{path.name} is too deeply nested to read") from exc
    except MemoryError as exc:
        raise SubmissionError(f"{path.name} is too large to read") from exc
    if len(lines) > MAX_LINES:
        raise SubmissionError(f"{path.name} has {len(lines):,} lines; the limit is {MAX_LINES:,}")
    return Source(path=path, code="\n".join(lines) + "\n", where=tuple(where), notes=tuple(notes))


def _notebook_lines(path: Path, text: str, notes: list[str]) -> tuple[list[str], list[str]]:
    """The code cells' lines. Read as plain JSON: saved outputs (plots, tables) are never
    validated or converted, only skipped, so a notebook heavy with outputs costs little."""
    try:
        raw = json.loads(text)
        cells = raw["cells"] if isinstance(raw, dict) and raw.get("nbformat") == 4 else None
    except (ValueError, RecursionError, KeyError) as exc:
        raise SubmissionError(f"{path} is not a readable Jupyter notebook: {exc}") from exc
    if cells is None:  # an older format: let nbformat convert it
        import nbformat

        try:
            cells = nbformat.reads(text, as_version=4).cells
        except Exception as exc:  # nbformat raises several unrelated types for bad JSON
            raise SubmissionError(f"{path} is not a readable Jupyter notebook: {exc}") from exc
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise SubmissionError(f"{path} is not a readable Jupyter notebook: no list of cells")
    if len(cells) > MAX_CELLS:
        raise SubmissionError(f"{path.name} has {len(cells):,} cells; the limit is {MAX_CELLS:,}")
    lines: list[str] = []
    where: list[str] = []
    # Cells are numbered as the student sees them: every cell, markdown included, from 1.
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        if "source" not in cell:
            raise SubmissionError(
                f"{path} is not a readable Jupyter notebook: cell {number} has no source"
            )
        source = cell["source"]
        if isinstance(source, list):  # the notebook format allows a list of lines
            source = "".join(str(part) for part in source)
        if not isinstance(source, str):
            raise SubmissionError(f"{path.name}: cell {number} has no readable source")
        if source.lstrip().startswith("%%"):
            notes.append(f"cell {number}: cell magic `{source.strip().splitlines()[0]}`; not run")
            continue
        cell_lines = source.splitlines()
        cell_where = [f"cell {number}, line {i}" for i in range(1, len(cell_lines) + 1)]
        lines.extend(_neutralise_magics(cell_lines, cell_where, notes))
        where.extend(cell_where)
    # Saved outputs are ignored: only the code of the cells is graded.
    return lines, where


def load_parts(folder: Path, names: list[str]) -> list[tuple[str, Source]]:
    """A multi-file submission: a folder holding each named file (or its `.ipynb`); every
    line is then named with its file ("Train_NN.py, line 12")."""
    if folder.is_symlink():
        raise SubmissionError(f"{folder.name} is a link; submit the folder itself")
    if not folder.is_dir():
        raise SubmissionError(
            f"{folder}: this assignment is several files ({', '.join(names)}): submit a folder"
        )
    parts = []
    for name in names:
        stem = Path(name).stem
        found = [c for c in (folder / name, folder / f"{stem}.ipynb") if c.is_file()]
        if not found:
            raise SubmissionError(f"{folder}: {name} (or {stem}.ipynb) is missing")
        src = load(found[0])
        where = tuple(f"{name}, {w}" for w in src.where)
        notes = tuple(f"{name}: {n}" for n in src.notes)
        parts.append((name, Source(src.path, src.code, where, notes)))
    return parts


def find_blanks(source: Source) -> list[Problem]:
    """Every unfilled blank (`___`, or `?` as the lecture notes write them), one per occurrence."""
    problems: list[Problem] = []
    readline = io.StringIO(source.code).readline
    gave_up = False
    try:
        for tok in tokenize.generate_tokens(readline):
            if tok.type == tokenize.NAME and tok.string == BLANK:
                problems.append(_blank(source, tok.start[0]))
            elif tok.type == tokenize.ERRORTOKEN and tok.string == "?":
                problems.append(_blank(source, tok.start[0]))
            elif tok.type == tokenize.OP and tok.string == "?":  # Python >= 3.12 tokenizer
                problems.append(_blank(source, tok.start[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # The syntax check reports these; the blanks found so far still count.
        gave_up = True
    problems = _number_per_line(problems)
    if gave_up and not problems:
        # A `?` the tokenizer gave up on (3.12+ raises at the first one): fall back to text.
        for lineno, line in enumerate(source.code.splitlines(), start=1):
            code = line.split("#", 1)[0]
            if "?" in code and "'" not in code and '"' not in code:
                for _ in range(code.count("?")):
                    problems.append(_blank(source, lineno))
        problems = _number_per_line(problems)
    return problems


def _number_per_line(problems: list[Problem]) -> list[Problem]:
    """`blank 2 of 3` where one line holds several blanks, so each message is distinct."""
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.where] = counts.get(p.where, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for p in problems:
        if counts[p.where] == 1:
            out.append(p)
            continue
        seen[p.where] = seen.get(p.where, 0) + 1
        msg = f"{p.where}: unfilled blank {seen[p.where]} of {counts[p.where]} in `{p.text}`"
        out.append(Problem(p.where, p.text, msg))
    return out


def _blank(source: Source, lineno: int) -> Problem:
    return Problem(
        where=source.locate(lineno),
        text=source.line(lineno),
        message=f"{source.locate(lineno)}: unfilled blank in `{source.line(lineno)}`",
    )


def check_syntax(source: Source) -> Problem | None:
    """The first syntax error, at the student's line, or None."""
    try:
        compile(source.code, str(source.path), "exec", dont_inherit=True)
    except (RecursionError, MemoryError) as exc:
        what = "too deeply nested" if isinstance(exc, RecursionError) else "too large"
        return Problem(
            where=source.path.name,
            text="",
            message=f"{source.path.name} is {what} for Python to compile: simplify the expressions",
        )
    except SyntaxError as exc:
        lineno = exc.lineno or 0
        return Problem(
            where=source.locate(lineno),
            text=source.line(lineno),
            message=f"{source.locate(lineno)}: syntax error ({exc.msg}) in `{source.line(lineno)}`",
        )
    return None


def mentions(source: Source, module: str) -> bool:
    """Whether the code imports `module` (a plain token scan; the sandbox decides nothing from it
    but whether to prepare the TensorFlow 1 compatibility layer before running)."""
    return module in source.code
