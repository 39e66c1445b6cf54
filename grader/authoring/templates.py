"""Templates from references: the reference solutions are the single source of truth.

A reference is a runnable Python file in jupytext's percent format (`# %%` code cells,
`# %% [markdown]` cells carrying the instructions). Two kinds of solution markers:

* a block, as nbgrader writes it::

      ### BEGIN SOLUTION
      def fib(n): ...
      ### END SOLUTION

  becomes `# YOUR CODE HERE` and a `___` line at the marker's indentation;

* a sub-expression blank, as the lecture notes' `tf.placeholder(tf.float32, [None, ?])`::

      x = tf.placeholder(tf.float32, [None, n_input])  # BLANK: n_input

  Each fragment after `BLANK:` (separated by top-level commas) is found, token for token,
  left to right in the code of that line (after the `=` of an assignment) and replaced by
  `___`; the directive is removed.

Unbalanced or malformed markers raise MarkerError naming the file and line. Templates are
written as `.py` (percent format) and `.ipynb` (with nbgrader cell metadata); `check` mode
reports every file that differs from what would be written.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from grader.errors import MarkerError

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
BLANK_RE = re.compile(r"#\s*BLANK:(?P<frags>.*)$")
# Anything that looks like a solution marker but is not one exactly (`### END SOLUTON`,
# `## BEGIN SOLUTION`, `### begin solution`) is an error, never silently code.
MARKER_LIKE = re.compile(r"#+\s*(BEGIN|END)[\s_-]*SOL", re.IGNORECASE)
BLANK = "___"


@dataclass(frozen=True)
class Template:
    name: str
    text: str  # percent-format .py
    blanks: int  # how many `___` a student must fill


def _split_fragments(text: str, where: str) -> list[str]:
    """Split `a, f(b, c), [d, e]` at top-level commas."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    parts = [p for p in parts if p]
    if not parts or depth != 0:
        raise MarkerError(f"{where}: malformed BLANK directive {text.strip()!r}")
    return parts


def _tokens(code: str) -> list[tokenize.TokenInfo]:
    skip = {
        tokenize.NEWLINE,
        tokenize.NL,
        tokenize.ENDMARKER,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.COMMENT,
    }
    try:
        return [
            t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in skip
        ]
    except (tokenize.TokenError, IndentationError):
        # A line that opens a bracket closed on a later line: tokenize what is there.
        toks = []
        gen = tokenize.generate_tokens(io.StringIO(code).readline)
        try:
            for t in gen:
                if t.type not in skip:
                    toks.append(t)
        except (tokenize.TokenError, IndentationError):
            pass
        return toks


def blank_line(line: str, where: str) -> tuple[str, int]:
    """Apply a `# BLANK:` directive to one line; returns (new line, number of blanks)."""
    match = BLANK_RE.search(line)
    if not match:
        return line, 0
    code = line[: match.start()].rstrip()
    frags = _split_fragments(match.group("frags"), where)
    code_toks = _tokens(code.lstrip())
    indent = len(code) - len(code.lstrip())
    # In an assignment the blanks are on the right-hand side: search after the last top-level
    # `=` or augmented `+=` (so `loss = tf.reduce_mean(loss)  # BLANK: loss` blanks the
    # argument, not the target). A continuation line (it closes a bracket opened on an
    # earlier line) is no statement: its `=` are keyword arguments.
    pos = 0  # index into code_toks where the search continues
    depth = 0
    for i, tok in enumerate(code_toks):
        if tok.type != tokenize.OP:
            continue
        if tok.string in "([{":
            depth += 1
        elif tok.string in ")]}":
            depth -= 1
            if depth < 0:
                pos = 0
                break
        elif depth == 0 and tok.string.endswith("=") and tok.string not in ("==", "<=", ">=", "!="):
            pos = i + 1
    spans = []
    for frag in frags:
        frag_toks = [t.string for t in _tokens(frag)]
        found = None
        for i in range(pos, len(code_toks) - len(frag_toks) + 1):
            if [t.string for t in code_toks[i : i + len(frag_toks)]] == frag_toks:
                found = i
                break
        if found is None or not frag_toks:
            raise MarkerError(f"{where}: BLANK fragment {frag!r} not found in `{code.strip()}`")
        first, last = code_toks[found], code_toks[found + len(frag_toks) - 1]
        spans.append((indent + first.start[1], indent + last.end[1]))
        pos = found + len(frag_toks)
    out = code
    for start, end in reversed(spans):
        out = out[:start] + BLANK + out[end:]
    return out, len(spans)


def make_template(name: str, reference: Path) -> Template:
    """The student template of one reference (percent-format text)."""
    lines = reference.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    blanks = 0
    block_start: int | None = None
    for lineno, line in enumerate(lines, start=1):
        where = f"{reference}:{lineno}"
        stripped = line.strip()
        if stripped.startswith("# %%") and block_start is not None:
            raise MarkerError(
                f"{reference}:{block_start}: {BEGIN} is not closed before the next cell"
            )
        if stripped == BEGIN:
            if block_start is not None:
                raise MarkerError(f"{where}: {BEGIN} inside the block opened at line {block_start}")
            block_start = lineno
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}{BLANK}")
            blanks += 1
            continue
        if stripped == END:
            if block_start is None:
                raise MarkerError(f"{where}: {END} without {BEGIN}")
            block_start = None
            continue
        if MARKER_LIKE.match(stripped):
            raise MarkerError(
                f"{where}: malformed solution marker {stripped!r}; write {BEGIN!r} or {END!r}"
            )
        if block_start is not None:
            if BLANK_RE.search(line):
                raise MarkerError(f"{where}: BLANK directive inside a solution block")
            continue
        new, n = blank_line(line, where)
        blanks += n
        out.append(new)
    if block_start is not None:
        raise MarkerError(f"{reference}:{block_start}: {BEGIN} is never closed")
    return Template(name, "\n".join(out) + "\n", blanks)


def count_blanks(course, name: str) -> int:
    """How many blanks the template(s) of an assignment hold."""
    ref = course.reference(name)
    parts = sorted(ref.glob("*.py")) if ref.is_dir() else [ref]
    return sum(make_template(name, part).blanks for part in parts)


def _has_blank(source: str) -> bool:
    try:
        return any(t.type == tokenize.NAME and t.string == BLANK for t in _tokens(source))
    except SyntaxError:  # pragma: no cover - templates come from runnable references
        return re.search(r"\b___\b", source) is not None


def mark_cells(nb, name: str, is_solution) -> None:
    """nbgrader cell metadata (solution cells unlocked, the rest locked), stable cell ids, no
    outputs, plain notebook metadata; validated. `is_solution(source)` picks the code cells
    a student edits."""
    import nbformat

    for i, c in enumerate(nb.cells):
        solution = c.cell_type == "code" and is_solution(c.source)
        c.metadata = {
            "nbgrader": {
                "grade": False,
                "grade_id": f"{name}-{i:02d}",
                "locked": not solution,
                "schema_version": 3,
                "solution": solution,
                "task": False,
            }
        }
        c["id"] = f"{name}-{i:02d}"
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)


def to_notebook(template: Template) -> str:
    """The `.ipynb` of a template, with nbgrader cell metadata and stable cell ids."""
    import jupytext

    nb = jupytext.reads(template.text, fmt="py:percent")
    # A solution cell is a code cell the student edits: one holding a blank (as code).
    mark_cells(nb, template.name, _has_blank)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def generate(course, *, check: bool = False) -> list[Path]:
    """Write `templates/` from `reference/`; with `check`, write nothing and return the files
    that differ from what would be written (missing, changed, or stale)."""
    wanted: dict[Path, str] = {}
    for name in course.names():
        ref = course.reference(name)
        if ref.is_dir():  # a multi-file assignment: templates/<name>/<file>.py and .ipynb
            for part in sorted(ref.glob("*.py")):
                template = make_template(f"{name}-{part.stem}", part)
                wanted[course.templates_dir / name / part.name] = template.text
                wanted[course.templates_dir / name / f"{part.stem}.ipynb"] = to_notebook(template)
            continue
        if not ref.is_file():
            raise MarkerError(f"no reference at {ref} for assignment {name!r}")
        template = make_template(name, ref)
        wanted[course.templates_dir / f"{name}.py"] = template.text
        wanted[course.templates_dir / f"{name}.ipynb"] = to_notebook(template)
    differ = []
    for path, text in wanted.items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            differ.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if course.templates_dir.is_dir():
        for path in sorted(course.templates_dir.rglob("*")):
            if path.suffix in (".py", ".ipynb") and path not in wanted:
                differ.append(path)
                if not check:
                    path.unlink()
    return differ
