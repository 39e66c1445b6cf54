"""Checks of the autoencoder: held-out reconstruction error and latent-space separation,
computed by the grader's rebuild of the student's network."""

from __future__ import annotations

import numpy as np

from grader.checks.base import (
    Evidence,
    Verdict,
    _against,
    _bound_for,
    _finite_params,
)
from grader.checks.measures import (
    heldout_digits,
    latent_codes,
    latent_separation,
    reconstruction_error,
)
from grader.registry import check

# --- autoencoder -------------------------------------------------------------------------------


def _bound_and_params(
    ev: Evidence, table: dict[str, float], what: str
) -> tuple[float, dict[str, np.ndarray]] | Verdict:
    """The bound for this data set and the student's finite weights, or why not."""
    bound = _bound_for(ev, table, what)
    if isinstance(bound, Verdict):
        return bound
    params = _finite_params(ev)
    if isinstance(params, Verdict):
        return params
    return bound, params


@check("reconstruction", needs_task=True)
def check_reconstruction(ev: Evidence, *, maximum: dict[str, float]) -> Verdict:
    """Mean squared reconstruction error of the grader's rebuild of the autoencoder, fed the
    student's weights, on held-out images of the assignment's digits, below a bound calibrated
    per data set."""
    ready = _bound_and_params(ev, maximum, "reconstruction bound")
    if isinstance(ready, Verdict):
        return ready
    bound, params = ready
    try:
        rec = reconstruction_error(ev.task, params, ev.data)
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    err = rec.error
    digits = "/".join(map(str, ev.task.digits)) or "all"
    text = f"mean squared reconstruction error {err:.4f} on {rec.images} held-out images of digits {digits}"
    return _against(text, err, bound, least=False, fmt="g", got=f"{err:.4f}")


@check("latent_separation", needs_task=True)
def check_latent_separation(
    ev: Evidence, *, minimum: dict[str, float], latent_layers: int = 3, neighbours: int = 5
) -> Verdict:
    """The digits are separable in the latent space: k-nearest-neighbour accuracy (5-fold
    cross-validated) on the latent codes of held-out images, computed by the grader's rebuild
    of the encoder fed the student's weights."""
    ready = _bound_and_params(ev, minimum, "separation bound")
    if isinstance(ready, Verdict):
        return ready
    want, params = ready
    images, labels = heldout_digits(ev.task, ev.data)
    try:
        z = latent_codes(ev.task, params, images, latent_layers)
    except ValueError as exc:
        return Verdict(0.0, f"your weights do not fit the lecture's network: {exc}")
    acc = latent_separation(z, labels, neighbours)
    digits = "/".join(map(str, ev.task.digits))
    text = (
        f"a {neighbours}-nearest-neighbour classifier tells digits {digits} apart from their "
        f"{z.shape[1]}-D latent codes with {acc:.1%} accuracy ({len(z)} held-out images, 5-fold)"
    )
    return _against(text, acc, want, least=True, fmt=".1%")
