"""An example plugin for grader: the check `record_length`, registered through the
`grader.checks` entry point of this package's pyproject.toml (README, "Adding a check")."""

from __future__ import annotations

import numpy as np

from grader.checks import Evidence, Verdict, check


@check("record_length")
def check_record_length(ev: Evidence, *, name: str, minimum: int = 1) -> Verdict:
    """The record `name` (a list the student's code appends to, such as `loss_record`) has at
    least `minimum` entries.

    Args:
        ev: the run's evidence; the spec collects `name` with `[collect] arrays`.
        name: the student's variable.
        minimum: the fewest entries that pass. Defaults to `1`.
    """
    record = np.asarray(ev.array(name)).ravel()  # not produced: `Missing`, which names it
    expected, got = f">= {minimum} entries", f"{record.size} entries"
    if record.size < minimum:
        return Verdict(
            0.0,
            f"`{name}` has {record.size} entries; expected at least {minimum} "
            f"(append one per training step)",
            expected=expected,
            got=got,
        )
    return Verdict(1.0, f"`{name}` has {record.size} entries", expected=expected, got=got)
