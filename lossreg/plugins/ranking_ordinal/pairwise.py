"""Pairwise logistic ranking loss within groups (BPR / RankNet)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import as_float_target

from ._private import check_batch_reduction, row_weights, scores_of

__all__ = ["PairwiseLogistic"]


class PairwiseLogistic(nn.Module):
    r"""Pairwise logistic (BPR / RankNet) loss over the ordered pairs of each group.

    .. math::

        \ell_{ab} = -\log\sigma\big(\sigma_s (s_a - s_b)\big)
                  = \mathrm{softplus}\big(\sigma_s (s_b - s_a)\big),
        \qquad L = \frac{\sum_{(a,b)} w_a w_b\,\ell_{ab}}{\sum_{(a,b)} w_a w_b}

    over all pairs :math:`(a, b)` of rows in the same group with relevance
    :math:`r_a > r_b`. Input: one score per row, shape (N,) or (N, 1); target: relevance
    labels (N,) (any real numbers; only their order inside a group matters); ``group``: one
    query / user / auction id per row (all rows form one group when ``group`` is None).

    Row groups: scores (N, K) with K > 1 and relevance (N, K) make each row a group of K
    items, without ``group`` (the sampled-negatives layout of
    :class:`~lossreg.estimators.LossRecommender`: a positive in column 0 with relevance 1 and
    M sampled negatives with relevance 0 give BPR over the M pairs). The pairs of row
    :math:`r` have weight :math:`w_r`; the cost is :math:`O(NK^2)` instead of the
    :math:`O((NK)^2)` of the same rows flattened with one group per row.

    Parameters
    ----------
    sigma : float in (0, inf), default=1.0
        Score scale :math:`\sigma_s` of RankNet (1 gives BPR).
    reduction : {"mean", "sum"}, default="mean"
        ``"mean"`` averages the pair losses (weighted); ``"sum"`` adds them. Batch-level: the
        terms are pairs, so ``"none"`` is refused.

    Notes
    -----
    A batch-level loss: the estimator must put several rows of each group in a batch
    (group-aware batching); a batch with no ordered pair returns 0 with a gradient of 0.
    Ties (equal relevance) give no pair. Sample weights weight pair :math:`(a,b)` by
    :math:`w_a w_b`. The number of pairs grows as :math:`n_g^2` per group. The RankNet
    soft-target form (:math:`\bar P_{ab}=\tfrac12` for ties) is not implemented: ties are
    skipped, as in BPR and TF-Ranking's ``PairwiseLogisticLoss``. Checked: RankNet's cost
    :math:`C=-\bar P\log P-(1-\bar P)\log(1-P)`, :math:`P=\sigma(\sigma_s(s_a-s_b))`, with
    :math:`\bar P=1` for a preferred pair reduces to the formula above (Burges et al. 2005);
    BPR-Opt (Rendle et al. 2009) is the same term at :math:`\sigma_s=1` without the L2
    prior, which belongs to the optimiser (weight decay).

    References
    ----------
    S. Rendle, C. Freudenthaler, Z. Gantner, L. Schmidt-Thieme. "BPR: Bayesian Personalized
    Ranking from Implicit Feedback." UAI 2009, arXiv:1205.2618.
    C. Burges et al. "Learning to Rank using Gradient Descent." ICML 2005.

    Examples
    --------
    >>> import torch
    >>> loss = PairwiseLogistic()
    >>> scores = torch.tensor([2.0, 0.0, 1.0, 1.0])
    >>> relevance = torch.tensor([1.0, 0.0, 0.0, 1.0])
    >>> round(loss(scores, relevance, group=torch.tensor([0, 0, 1, 1])).item(), 4)
    0.41
    """

    #: takes (N, K) scores whose rows are groups (see "Row groups" above)
    row_groups = True

    def __init__(self, *, sigma: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.sigma = sigma
        self.reduction = check_batch_reduction(reduction, "bpr")

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if input.ndim == 2 and input.shape[1] > 1:
            return self._row_groups(input, target, sample_weight, group)
        scores = scores_of(input, "bpr")
        relevance = as_float_target(target, scores)
        n = scores.shape[0]
        weight = row_weights(sample_weight, n, scores)
        pairs = relevance[:, None] > relevance[None, :]
        if group is not None:
            group = torch.as_tensor(group, device=scores.device).reshape(-1)
            pairs = pairs & (group[:, None] == group[None, :])
        pair_weight = (weight[:, None] * weight[None, :]) * pairs.to(scores.dtype)
        diff = scores[:, None] - scores[None, :]
        pair_loss = F.softplus(-self.sigma * diff)
        total = (pair_weight * pair_loss).sum()
        if self.reduction == "sum":
            return total
        # No ordered pair in the batch: 0 (not NaN), still attached to the graph.
        return total / pair_weight.sum().clamp_min(torch.finfo(scores.dtype).tiny)

    def _row_groups(
        self,
        scores: torch.Tensor,
        target: torch.Tensor,
        sample_weight: torch.Tensor | None,
        group: torch.Tensor | None,
    ) -> torch.Tensor:
        if group is not None:
            raise ValueError(
                "Loss 'bpr' got scores of shape "
                f"{tuple(scores.shape)} (each row a group) and group ids: pass one or the other "
                "(one score per row with group=..., or (N, K) rows without group)."
            )
        relevance = as_float_target(target, scores)
        weight = row_weights(sample_weight, scores.shape[0], scores)
        pairs = relevance[:, :, None] > relevance[:, None, :]  # (N, K, K)
        pair_weight = weight[:, None, None] * pairs.to(scores.dtype)
        pair_loss = F.softplus(-self.sigma * (scores[:, :, None] - scores[:, None, :]))
        total = (pair_weight * pair_loss).sum()
        if self.reduction == "sum":
            return total
        return total / pair_weight.sum().clamp_min(torch.finfo(scores.dtype).tiny)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, reduction={self.reduction!r}"
