"""Exceptions and warnings of the grader (operator errors name the fix)."""

from __future__ import annotations


class GraderError(Exception):
    """An operator error: a bad spec, a missing file, a wrong option. The message names the fix."""


class SpecError(GraderError):
    """An assignment spec is invalid; the message names the file and the key."""


class MarkerError(GraderError):
    """A reference has unbalanced or malformed solution markers; the message names file and line."""


class SubmissionError(GraderError):
    """A submission file cannot be read at all (not UTF-8, not a notebook, ...)."""


class ArtifactError(Exception):
    """The artifacts a sandboxed run handed back are malformed (never trusted, always validated)."""
