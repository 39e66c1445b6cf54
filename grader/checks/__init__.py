"""Checks: plain functions, named after what they verify, run in the trusted process.

The public API for a course that adds its own checks: the `check` decorator, the `Evidence` a
check reads, the `Verdict` it returns, and `Missing` (raised by `Evidence.array` when the
student's code did not produce an artifact). Importing this package registers the grader's own
checks; a plugin registers more through the `grader.checks` entry-point group.

A check is a measure and a judge: the measures (`grader.checks.measures`) compute the figures
(an agreement, an accuracy, a loss ratio, ...), the registered check compares its figure with
the spec's threshold and writes the message. The feedback plots and the calibration benchmark
call the same measures, and a plugin's check can call them too.
"""

from grader.checks import autoencoder, graph, keras, training, values  # noqa: F401 - registers them
from grader.checks.base import Evidence, Missing, Verdict
from grader.registry import check

__all__ = ["Evidence", "Missing", "Verdict", "check"]
