"""Count regression: the Poisson negative log-likelihood on a log-rate output, and its exp link."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import Link, LossModule, as_float_target

from ._private import per_row

__all__ = ["EXP_LINK", "PoissonNLL"]


def _expected_count(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return output.exp()


#: Predicts the expected count exp(log-rate).
EXP_LINK = Link("exp", _expected_count, "value", "expected count exp(log-rate)")


def _counts(target: torch.Tensor, input: torch.Tensor) -> torch.Tensor:
    """Return the count targets as ``input``'s dtype and shape, refusing negative ones."""
    target = as_float_target(target, input)
    if bool((target < 0).any()):
        bad = target[target < 0].reshape(-1)[0].item()
        raise ValueError(
            f"Poisson losses need non-negative count targets. Got {bad!r}; use a "
            "regression loss such as 'mse' for signed targets."
        )
    return target


class PoissonNLL(LossModule):
    r"""Poisson negative log-likelihood of counts given a log-rate output.

    .. math::

        \ell_i = \mathrm{mean}_k \big(e^{\eta_{ik}} - y_{ik}\,\eta_{ik}
                 + [\text{full}]\; s(y_{ik})\big), \quad
        s(y) = y\log y - y + \tfrac12\log(2\pi y) \text{ for } y > 1, \text{ else } 0

    The output :math:`\eta` (N,) or (N, K) is the log-rate; predictions are
    :math:`e^\eta` (link ``exp``). Targets are non-negative counts (a ValueError names a
    negative one).

    Parameters
    ----------
    full : bool, default=False
        Add the Stirling approximation of :math:`\log y!` (a constant in :math:`\eta`; it
        only changes the reported value).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Equals ``torch.nn.PoissonNLLLoss(log_input=True, full=full)``, including torch's rule of
    adding the Stirling term only where :math:`y > 1`. The Poisson deviance of
    ``sklearn.metrics.mean_poisson_deviance`` is :math:`2(\ell + y\log y - y)`. With a
    rate-space output use :math:`\hat\mu - y\log(\hat\mu + \epsilon)` instead (not this loss).

    References
    ----------
    J. Terven, D. M. Cordova-Esparza, A. Ramirez-Pedraza, E. A. Chavez-Urbiola, J. A.
    Romero-Gonzalez. "Loss Functions and Metrics in Deep Learning." arXiv:2307.02694.

    Examples
    --------
    >>> import torch
    >>> log_rate, counts = torch.tensor([0.0, 1.0, -1.0, 2.0]), torch.tensor([0.0, 1.0, 2.0, 5.0])
    >>> out = PoissonNLL(reduction="none")(log_rate, counts)
    >>> [round(v, 4) for v in out.tolist()]
    [1.0, 1.7183, 2.3679, -2.6109]
    """

    def __init__(self, *, full: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.full = full

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        target = _counts(target, input)
        loss = input.exp() - target * input
        if self.full:
            # Only y > 1 gets the term (torch's rule); the where keeps log(0) out of the graph.
            safe = torch.where(target > 1, target, torch.ones_like(target))
            stirling = safe * safe.log() - safe + 0.5 * torch.log(2 * math.pi * safe)
            loss = loss + torch.where(target > 1, stirling, torch.zeros_like(stirling))
        return per_row(loss)

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        # torch's kernel: the same exp(z) - y z, and with full=True the same Stirling term
        # for y > 1 only; rows have equal widths, so its element mean is the row-mean mean.
        target = _counts(target, input)
        return F.poisson_nll_loss(input, target, log_input=True, full=self.full)

    def extra_repr(self) -> str:
        return f"full={self.full}, reduction={self.reduction!r}"
