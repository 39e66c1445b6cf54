"""Checks of the autoencoder: held-out reconstruction error and latent-space separation,
computed by the grader's rebuild of the student's network."""

from __future__ import annotations

import numpy as np

from grader.checks.base import (
    Evidence,
    Missing,
    Verdict,
    _against,
    _bound_for,
)
from grader.checks.graph import _network
from grader.checks.measures import heldout_digits, latent_separation
from grader.checks.measures.student import StudentNetwork
from grader.model.tfgraph import GraphError
from grader.registry import check

# --- autoencoder -------------------------------------------------------------------------------


def _bound_and_network(
    ev: Evidence, table: dict[str, float], what: str
) -> tuple[float, StudentNetwork] | Verdict:
    """The bound for this data set and the student's network with finite weights, or why not."""
    bound = _bound_for(ev, table, what)
    if isinstance(bound, Verdict):
        return bound
    net = _network(ev, finite=True)
    if isinstance(net, Verdict):
        return net
    return bound, net


def codes_and_images(
    net: StudentNetwork, x: np.ndarray, *, encoder: str, decoder: str, code: str, input: str
) -> tuple[np.ndarray, np.ndarray]:
    """The student's encoder's codes of images `x`, and their decoder's images of those codes:
    the student's own network, evaluated by the grader."""
    z = net.run(encoder, {input: x})
    return z, net.run(decoder, {code: z})


@check("reconstruction", needs_task=True)
def check_reconstruction(
    ev: Evidence,
    *,
    maximum: dict[str, float],
    encoder: str = "latent",
    decoder: str = "reconst",
    code: str = "latent_input",
    input: str = "x",
) -> Verdict:
    """Mean squared reconstruction error of the student's own autoencoder (their encoder
    `encoder` from `input`, then their decoder `decoder` from `code`) on held-out images of the
    assignment's digits, below a bound calibrated per data set."""
    ready = _bound_and_network(ev, maximum, "reconstruction bound")
    if isinstance(ready, Verdict):
        return ready
    bound, net = ready
    images, _ = heldout_digits(ev.task, ev.data)
    x = ev.task.features(images)
    try:
        _, out = codes_and_images(net, x, encoder=encoder, decoder=decoder, code=code, input=input)
    except (GraphError, ValueError, Missing) as exc:
        return Verdict(0.0, f"your autoencoder cannot be evaluated on the held-out images: {exc}")
    if out.shape != x.shape:
        return Verdict(0.0, f"`{decoder}` gives images of shape {out.shape}; expected {x.shape}")
    err = float(np.mean((out - x) ** 2))
    digits = "/".join(map(str, ev.task.digits)) or "all"
    text = f"mean squared reconstruction error {err:.4f} on {len(x)} held-out images of digits {digits}"
    return _against(text, err, bound, least=False, fmt="g", got=f"{err:.4f}")


@check("latent_separation", needs_task=True)
def check_latent_separation(
    ev: Evidence,
    *,
    minimum: dict[str, float],
    neighbours: int = 5,
    encoder: str = "latent",
    input: str = "x",
) -> Verdict:
    """The digits are separable in the latent space: k-nearest-neighbour accuracy (5-fold
    cross-validated) on the codes the student's own encoder gives held-out images."""
    ready = _bound_and_network(ev, minimum, "separation bound")
    if isinstance(ready, Verdict):
        return ready
    want, net = ready
    images, labels = heldout_digits(ev.task, ev.data)
    try:
        z = net.run(encoder, {input: ev.task.features(images)})
    except (GraphError, ValueError, Missing) as exc:
        return Verdict(0.0, f"your encoder cannot be evaluated on the held-out images: {exc}")
    if z.ndim != 2 or len(z) != len(images):
        return Verdict(0.0, f"`{encoder}` gives codes of shape {z.shape}; expected (n, 2)")
    acc = latent_separation(z, labels, neighbours)
    digits = "/".join(map(str, ev.task.digits))
    text = (
        f"a {neighbours}-nearest-neighbour classifier tells digits {digits} apart from their "
        f"{z.shape[1]}-D latent codes with {acc:.1%} accuracy ({len(z)} held-out images, 5-fold)"
    )
    return _against(text, acc, want, least=True, fmt=".1%")
