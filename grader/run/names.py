"""Names that come from students (folder and file names), checked before the grader uses them.

A student's folder name becomes a folder under the output, a row of the gradebook, a cell of a
terminal table and a link on the class page. So a name is refused, with a message that says
why, when it could do harm in any of them: control or format characters (terminal escapes,
bidirectional overrides), a path separator or a dot-name, a name the output folder itself uses
(`index.html`, `gradebook.csv`), or a first character a spreadsheet reads as a formula.
"""

from __future__ import annotations

import unicodedata

__all__ = ["RESERVED", "label", "name_problem", "printable"]

# Names of what `grader grade` writes at the top of its output folder.
RESERVED = frozenset({"index.html", "gradebook.csv", "results.json", "feedback.html"})
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
MAX_NAME = 100


def name_problem(name: str) -> str | None:
    """Why `name` cannot be used as a student's or a file's name, or None when it can."""
    if not name or len(name) > MAX_NAME:
        return f"a name must have 1 to {MAX_NAME} characters (this one has {len(name)})"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes the file system gave that are not UTF-8 (surrogates)
        return "the name is not valid UTF-8"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        return "the name holds control or formatting characters"
    if "/" in name or "\\" in name or name.startswith("."):
        return "the name holds a path separator or starts with a dot"
    if name.lower() in RESERVED:
        return f"{name!r} is a name the grader's output uses itself"
    if name.startswith(FORMULA_STARTS):
        return "the name starts with a character a spreadsheet reads as a formula"
    if ":" in name:
        return "the name holds a colon (a link would read it as a URL scheme: `javascript:`)"
    return None


def label(name: str) -> str:
    """A refused name as it can be shown anywhere (gradebook, pages, terminal): bytes that are
    not UTF-8 and control characters written as escapes."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return printable(text)


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control and formatting characters (escape sequences,
    bidirectional overrides) shown as `\\x1b`-style escapes; newlines and tabs kept."""
    out = []
    for ch in text:
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)
