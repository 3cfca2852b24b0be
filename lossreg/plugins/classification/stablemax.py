"""Stablemax cross-entropy and its predict link (stablemax probabilities)."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import Link, LossModule

from ._private import target_log_prob

__all__ = ["STABLEMAX_LINK", "StablemaxCrossEntropy", "log_stablemax", "stablemax"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _log_s(x: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\log s(x)`: :math:`\log(1+x)` for x >= 0, :math:`-\log(1-x)` for x < 0."""
    # Each branch sees only its own half-line, so neither produces NaN gradients.
    return torch.where(x >= 0, torch.log1p(x.clamp_min(0)), -torch.log1p((-x).clamp_min(0)))


def log_stablemax(logits: torch.Tensor) -> torch.Tensor:
    """Return the log of the stablemax probabilities over the last dimension."""
    log_s = _log_s(logits)
    return log_s - torch.logsumexp(log_s, dim=-1, keepdim=True)


def stablemax(logits: torch.Tensor) -> torch.Tensor:
    """Return the stablemax probabilities over the last dimension."""
    return log_stablemax(logits).exp()


def _stablemax_link(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return stablemax(output)


STABLEMAX_LINK = Link(
    "stablemax",
    _stablemax_link,
    "proba",
    "class probabilities s(z)/sum s(z) with s(x) = x+1 (x >= 0), 1/(1-x) (x < 0)",
)


class StablemaxCrossEntropy(LossModule):
    r"""Cross-entropy on stablemax probabilities instead of softmax.

    .. math::

        s(x) = \begin{cases} x + 1 & x \ge 0 \\ 1/(1-x) & x < 0 \end{cases}, \qquad
        \ell_i = -\log \frac{s(z_{i,y_i})}{\sum_j s(z_{ij})}

    :math:`s` is continuous with a continuous first derivative at 0. Computed in log space
    (``log1p`` per branch, ``logsumexp`` over classes). Input logits have shape (N, C);
    targets are class indices (N,). Predictions must use the stablemax link, not softmax.

    Parameters
    ----------
    dtype : {"float32", "float64"} or None, default=None
        Precision of the loss computation; ``None`` keeps the input's dtype. The result is
        returned in the input's dtype either way. The official code computes in float64.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Not shift-invariant, so the output bias matters. Checked against the official
    repository's ``s`` / ``log_stablemax`` (as reproduced in 0-5788719150923125/praxis
    ``praxis/losses/stablemax.py``): same :math:`s`; that code adds 1e-30 to the
    :math:`x<0` denominator, which the log-space form here does not need. The companion
    optimizer ⊥Grad is not part of the loss.

    References
    ----------
    L. Prieto, M. Barsbey, P. A. M. Mediano, T. Birdal. "Grokking at the Edge of Numerical
    Stability." ICLR 2025, arXiv:2501.04697.

    Examples
    --------
    >>> import torch
    >>> loss = StablemaxCrossEntropy(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 1.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 1, 0, 0])).tolist()]
    [0.2877, 0.2877, 0.6931, 1.6094]
    """

    def __init__(self, *, dtype: str | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.dtype = dtype

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        logits = input if self.dtype is None else input.to(_DTYPES[self.dtype])
        return -target_log_prob(log_stablemax(logits), target).to(input.dtype)

    def extra_repr(self) -> str:
        return f"dtype={self.dtype!r}, reduction={self.reduction!r}"
