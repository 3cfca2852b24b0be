"""Threshold-consistent margin (TCM) regulariser, alone or added to a base metric loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import as_class_target

from ._private import BatchLoss, check_embeddings, label_masks

__all__ = ["TCM_BASES", "ThresholdConsistentMargin"]

#: Base losses tcm can wrap (built with their defaults); "none" is the regulariser alone.
TCM_BASES = ("none", "multi_similarity", "triplet", "contrastive", "supcon", "circle")


def _base_loss(name: str) -> torch.nn.Module | None:
    # Imported here: the base modules are siblings in this plugin, not a registry lookup.
    from .anchors import Circle, MultiSimilarity
    from .nce import SupCon
    from .pairs import Contrastive, Triplet

    factories = {
        "multi_similarity": MultiSimilarity,
        "triplet": Triplet,
        "contrastive": Contrastive,
        "supcon": SupCon,
        "circle": Circle,
    }
    if name == "none":
        return None
    if name not in factories:
        raise ValueError(f"base must be one of {', '.join(map(repr, TCM_BASES))}. Got {name!r}.")
    return factories[name]()


class ThresholdConsistentMargin(BatchLoss):
    r"""Threshold-consistent margin loss (batch-level): base loss plus cosine-margin penalties.

    .. math::

        L^+ = \frac{\sum_{(i,j)\in\mathcal P,\ s_{ij}\le m^+}(m^+-s_{ij})}
                   {|\{(i,j)\in\mathcal P: s_{ij}\le m^+\}|}, \quad
        L^- = \frac{\sum_{(i,j)\in\mathcal N,\ s_{ij}\ge m^-}(s_{ij}-m^-)}
                   {|\{(i,j)\in\mathcal N: s_{ij}\ge m^-\}|}, \quad
        L = L_{base} + \lambda^+L^+ + \lambda^-L^-

    over the ordered in-batch positive pairs :math:`\mathcal P` and negative pairs
    :math:`\mathcal N` with cosine similarity :math:`s`; a term whose set is empty is 0.

    Input: embeddings (N, D) float; target: int labels (N,). ``reduction`` is "mean" or "sum"
    (the base loss is reduced that way; the penalties are means either way).
    ``sample_weight`` is not supported.

    Parameters
    ----------
    base : {"none", "multi_similarity", "triplet", "contrastive", "supcon", "circle"}
        Default "none".
        The base metric loss, built with its defaults; "none" gives the regulariser alone
        (as PML's ``ThresholdConsistentMarginLoss``).
    lambda_plus, lambda_minus : float in [0, inf), default=1.0
    margin_plus : float in [-1, 1], default=0.9
        :math:`m^+`.
    margin_minus : float in [-1, 1], default=0.5
        :math:`m^-`.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    The regulariser matches PML's ``ThresholdConsistentMarginLoss``. The base default "none"
    is a choice of this library (the paper adds TCM to several base losses); set ``base`` to
    compose. Needs an m-per-class sampler.

    References
    ----------
    Q. Zhang, L. Xu, Q. Tang, J. Fang, Y. N. Wu, J. Tighe, Y. Xing. "Threshold-Consistent
    Margin Loss for Open-World Deep Metric Learning." ICLR 2024, arXiv:2307.04047.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> round(ThresholdConsistentMargin()(x, torch.tensor([0, 0, 1, 1])).item(), 4)
    0.2
    """

    def __init__(
        self,
        *,
        base: str = "none",
        lambda_plus: float = 1.0,
        lambda_minus: float = 1.0,
        margin_plus: float = 0.9,
        margin_minus: float = 0.5,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.base = base
        self.lambda_plus = lambda_plus
        self.lambda_minus = lambda_minus
        self.margin_plus = margin_plus
        self.margin_minus = margin_minus
        self.base_loss = _base_loss(base)
        if self.base_loss is not None:
            self.base_loss.reduction = reduction

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if sample_weight is not None:
            raise ValueError("tcm's penalties are pair means and cannot honour sample_weight.")
        x = F.normalize(check_embeddings(input), dim=1)
        labels = as_class_target(target)
        sim = x @ x.T
        pos, neg = label_masks(labels)
        below = pos & (sim <= self.margin_plus)
        above = neg & (sim >= self.margin_minus)
        zero = sim.new_zeros(())
        pos_term = torch.where(below, self.margin_plus - sim, zero).sum() / below.sum().clamp_min(1)
        neg_term = torch.where(above, sim - self.margin_minus, zero).sum() / above.sum().clamp_min(
            1
        )
        loss = self.lambda_plus * pos_term + self.lambda_minus * neg_term
        if self.base_loss is not None:
            loss = loss + self.base_loss(input, labels)
        return loss

    def extra_repr(self) -> str:
        return (
            f"base={self.base!r}, lambda_plus={self.lambda_plus}, "
            f"lambda_minus={self.lambda_minus}, margin_plus={self.margin_plus}, "
            f"margin_minus={self.margin_minus}, reduction={self.reduction!r}"
        )
