"""Output regularisers meant to be added to cross-entropy: z-loss penalty, softmax-norm penalty."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import LossModule, reduce

__all__ = ["SoftmaxNormPenalty", "ZLossPenalty"]


class ZLossPenalty(LossModule):
    r"""Squared log-partition penalty ("z-loss" of large-model training).

    .. math::

        \ell_i = \big(\mathrm{logsumexp}(z_i)\big)^2

    Input logits have shape (N, C); the target is accepted and ignored. Meant as a
    regulariser in a weighted sum, normally ``cross_entropy + 1e-4 * z_loss_penalty``; on its
    own it only pulls :math:`\log Z` to 0 and learns nothing about the labels.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The composition weight (1e-4 in the paper, sensible range 1e-5 to 1e-2) belongs to the
    composite, not to this term. Not to be confused with ``z_loss_spherical``.

    References
    ----------
    M. Wortsman et al. "Small-scale proxies for large-scale Transformer training
    instabilities." ICLR 2024, arXiv:2309.14322.

    Examples
    --------
    >>> import torch
    >>> loss = ZLossPenalty(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0], [-3.0, -3.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 1, 0, 0])).tolist()]
    [4.5238, 0.4805, 2.8667, 5.3216]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return torch.logsumexp(input, dim=-1).square()


class SoftmaxNormPenalty(nn.Module):
    r"""Log of one plus the squared norm of the softmax probabilities (FedLD marginal term).

    .. math::

        L = \log\big(1 + \lVert P \rVert_F^2\big) \quad\text{(batch form)}, \qquad
        \ell_i = \log\big(1 + \lVert p_i \rVert_2^2\big) \quad\text{(per-sample form)}

    with :math:`P` the (N, C) batch of softmax probabilities. Input logits have shape
    (N, C); the target is accepted and ignored. The paper's criterion is
    ``cross_entropy + 0.03 * softmax_norm_penalty``.

    Parameters
    ----------
    per_sample : bool, default=False
        ``False`` is the reference batch form (grows with the batch size, no per-row value,
        no sample weights); ``True`` the per-row form, reduced by :func:`lossreg.reduce`.
    reduction : {"mean", "sum", "none"}, default="mean"
        In the batch form ``"mean"`` and ``"sum"`` both return :math:`L`; ``"none"`` is an
        error.

    Notes
    -----
    Penalising :math:`\lVert p\rVert` discourages peaked outputs. Checked against the
    catalogue's reading of Zeng-Shuang/FedLD ``methods/fedld.py`` (``MarginalLogLoss``); the
    composition weight (0.03 in the code, 0.1 in README examples) belongs to the composite.

    References
    ----------
    S. Zeng et al. "Tackling Data Heterogeneity in Federated Learning via Loss
    Decomposition." arXiv:2408.12300, 2024.

    Examples
    --------
    >>> import torch
    >>> loss = SoftmaxNormPenalty(per_sample=True, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0], [-3.0, 3.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 1, 0, 0])).tolist()]
    [0.5822, 0.4055, 0.4055, 0.6907]
    >>> round(SoftmaxNormPenalty()(logits, torch.tensor([0, 1, 0, 0])).item(), 4)
    1.3311
    """

    def __init__(self, *, per_sample: bool = False, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"reduction must be one of 'mean', 'sum', 'none'. Got {reduction!r} instead."
            )
        if reduction == "none" and not per_sample:
            raise ValueError(
                "softmax_norm_penalty in its batch form has no per-row value, so "
                "reduction='none' is not available; pass per_sample=True."
            )
        self.per_sample = per_sample
        self.reduction = reduction

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        squared = input.softmax(dim=-1).square().sum(dim=-1)
        if self.per_sample:
            return reduce(torch.log1p(squared), self.reduction, sample_weight)
        if sample_weight is not None:
            raise ValueError(
                "softmax_norm_penalty in its batch form cannot honour sample weights (the "
                "norm is taken over the whole batch); pass per_sample=True."
            )
        return torch.log1p(squared.sum())

    def extra_repr(self) -> str:
        return f"per_sample={self.per_sample}, reduction={self.reduction!r}"
