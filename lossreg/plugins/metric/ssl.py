"""Self-supervised two-view objectives without negatives' softmax: align-uniform, Barlow Twins."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ._private import BatchLoss, split_views

__all__ = ["AlignUniform", "BarlowTwins"]


def _two_views(
    loss: BatchLoss, input: torch.Tensor, target: torch.Tensor | None, sample_weight: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    name = type(loss).__name__
    if sample_weight is not None:
        raise ValueError(
            f"{name} is a batch-level statistic of the embeddings and cannot honour "
            "sample_weight; drop it."
        )
    if target is not None and input.shape[0] != 2 * target.shape[0]:
        raise ValueError(
            f"{name} takes a (2N, D) batch of two views (rows i and i+N are views of row i) and "
            f"at most N targets. Got {input.shape[0]} embeddings and {target.shape[0]} targets."
        )
    x, _, n_rows = split_views(input, None)
    return x[:n_rows], x[n_rows:]


class AlignUniform(BatchLoss):
    r"""Alignment and uniformity on the hypersphere (batch-level, two views).

    .. math::

        L = \underbrace{\frac1N\sum_i\lVert\hat f^a_i-\hat f^b_i\rVert^\alpha}_{L_{align}}
          + \lambda\,\frac{L_{unif}(\hat f^a)+L_{unif}(\hat f^b)}{2}, \qquad
        L_{unif}(f) = \log\frac{2}{N(N-1)}\sum_{i<j}e^{-t\lVert f_i-f_j\rVert^2}

    computed with logsumexp over the squared pairwise distances (formed explicitly: no sqrt,
    so duplicate rows have finite gradients).

    Input: embeddings (2N, D), rows i and i+N two views of row i (L2-normalised here); target:
    ignored (None or N values). ``reduction`` is "mean" or "sum" (the same value: one term).
    ``sample_weight`` is not supported. Needs N >= 2.

    Parameters
    ----------
    alpha : float in (0, inf), default=2.0
        Exponent of the alignment distance.
    t : float in (0, inf), default=2.0
        Uniformity kernel scale.
    uniform_weight : float in [0, inf), default=1.0
        :math:`\lambda` (0.5-2).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Follows the authors' reference functions ``align_loss`` / ``uniform_loss`` (mean of
    ``pdist**2`` kernel, then log). The supervised variant (positives from labels) is not
    offered.

    References
    ----------
    T. Wang, P. Isola. "Understanding Contrastive Representation Learning through Alignment
    and Uniformity on the Hypersphere." ICML 2020, arXiv:2005.10242.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> round(AlignUniform()(x, None).item(), 4)
    -3.6
    """

    def __init__(
        self,
        *,
        alpha: float = 2.0,
        t: float = 2.0,
        uniform_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.t = t
        self.uniform_weight = uniform_weight

    def _uniformity(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n < 2:
            raise ValueError("AlignUniform needs at least 2 rows per view.")
        rows, cols = torch.triu_indices(n, n, offset=1, device=x.device)
        squared = (x[rows] - x[cols]).square().sum(dim=1)
        return torch.logsumexp(-self.t * squared, dim=0) - math.log(rows.shape[0])

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        a, b = _two_views(self, input, target, sample_weight)
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        squared = (a - b).square().sum(dim=1)
        # ||.||^alpha = (||.||^2)^(alpha/2); the clamp keeps the derivative finite at 0 when
        # alpha < 2 (identical views).
        align = squared.clamp_min(torch.finfo(a.dtype).tiny).pow(self.alpha / 2).mean()
        uniform = (self._uniformity(a) + self._uniformity(b)) / 2
        return align + self.uniform_weight * uniform

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, t={self.t}, uniform_weight={self.uniform_weight}, "
            f"reduction={self.reduction!r}"
        )


class BarlowTwins(BatchLoss):
    r"""Barlow Twins redundancy reduction (batch-level, two views).

    .. math::

        C = \frac1N\,\tilde z^{a\top}\tilde z^b, \qquad
        L = \sum_k(1-C_{kk})^2 + \lambda\sum_{k\ne l}C_{kl}^2

    with :math:`\tilde z` each dimension standardised over the batch as the official code does
    with ``BatchNorm1d(affine=False)``: :math:`(z-\mu)/\sqrt{\sigma^2_{biased}+10^{-5}}`.

    Input: projector outputs (2N, D), rows i and i+N two views of row i; target: ignored.
    ``reduction`` is "mean" or "sum" (the same value). ``sample_weight`` is not supported.
    Needs N >= 2 (a batch of 128 or more in the paper).

    Parameters
    ----------
    lambda_offdiag : float in [0, inf), default=0.0051
        :math:`\lambda` (official; 1/D has been used for small projectors).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Follows facebookresearch/barlowtwins ``main.py`` (current version, without the earlier
    ``scale_loss`` factor). The projector width is the network's output width.

    References
    ----------
    J. Zbontar, L. Jing, I. Misra, Y. LeCun, S. Deny. "Barlow Twins: Self-Supervised Learning
    via Redundancy Reduction." ICML 2021, arXiv:2103.03230.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> round(BarlowTwins()(x, None).item(), 4)
    0.0102
    """

    def __init__(self, *, lambda_offdiag: float = 0.0051, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.lambda_offdiag = lambda_offdiag

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        a, b = _two_views(self, input, target, sample_weight)
        n = a.shape[0]
        if n < 2:
            raise ValueError("BarlowTwins standardises over the batch and needs N >= 2 rows.")

        def standardise(z: torch.Tensor) -> torch.Tensor:
            return (z - z.mean(dim=0)) / (z.var(dim=0, unbiased=False) + 1e-5).sqrt()

        c = standardise(a).T @ standardise(b) / n
        diagonal = torch.diagonal(c)
        on_diag = (1 - diagonal).square().sum()
        off_diag = c.square().sum() - diagonal.square().sum()
        return on_diag + self.lambda_offdiag * off_diag

    def extra_repr(self) -> str:
        return f"lambda_offdiag={self.lambda_offdiag}, reduction={self.reduction!r}"
