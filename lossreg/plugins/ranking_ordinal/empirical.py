"""iREPO: regression of implicit reward differences onto the logit of empirical preferences."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import as_float_target

from ._private import check_batch_reduction, row_weights, scores_of

__all__ = ["PairwiseLogitRegression"]


class PairwiseLogitRegression(nn.Module):
    r"""Squared error between a scaled score difference and the logit of an empirical preference.

    Rows come in pairs: the two rows of a ``group`` are the two compared items, and row
    :math:`a`'s target :math:`\hat p_a` is the empirical probability that it is preferred over
    its partner :math:`b`. With optional reference scores :math:`s^{ref}`:

    .. math::

        \ell_{ab} = \Big[\beta\big((s_a - s^{ref}_a) - (s_b - s^{ref}_b)\big)
                    - \mathrm{logit}\big(\mathrm{clip}(\hat p_a)\big)\Big]^2

    averaged (weighted by :math:`w_aw_b`) over both orders of every pair in the batch; with
    :math:`\hat p_b = 1-\hat p_a` both orders give the same value. Input: one score per row
    (N,) or (N, 1); target: :math:`\hat p` in [0, 1] (N,); ``group``: the pair id of each
    row; ``teacher_logits``: optional reference scores (N,) (0 when omitted).

    Parameters
    ----------
    beta : float in (0, inf), default=1.0
        Scale :math:`\beta` of the score difference.
    clip : float in (0, 0.5), default=0.001
        :math:`\hat p` is clipped to :math:`[\text{clip}, 1-\text{clip}]` so its logit is finite.
    reduction : {"mean", "sum"}, default="mean"
        Batch-level (pairs): ``"none"`` is refused; ``"sum"`` adds the pair losses.

    Notes
    -----
    From the catalogue's formula; the paper (arXiv:2405.15230) was confirmed to regress the
    implicit reward difference onto the logit of empirical (AI-annotator) preferences, but its
    exact loss and :math:`\beta` were not checked in code. On tabular data the score scale
    absorbs :math:`\beta` (the default 1 is not the paper's LLM value). A row whose partner
    is not in the batch gives no pair (batch whole pairs together); a group with more than two
    rows in a batch is an error.

    References
    ----------
    L. T. Le et al. "iREPO: implicit Reward Pairwise Difference based Empirical Preference
    Optimization." 2024, arXiv:2405.15230.

    Examples
    --------
    >>> import torch
    >>> loss = PairwiseLogitRegression()
    >>> scores = torch.tensor([1.0, 0.0, 0.5, 0.5])
    >>> p_hat = torch.tensor([0.8, 0.2, 0.5, 0.5])
    >>> round(loss(scores, p_hat, group=torch.tensor([0, 0, 1, 1])).item(), 4)
    0.0746
    """

    def __init__(self, *, beta: float = 1.0, clip: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__()
        self.beta = beta
        self.clip = clip
        self.reduction = check_batch_reduction(reduction, "pairwise_logit_regression")

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: Any = None,
        teacher_logits: Any = None,
        **extras: Any,
    ) -> torch.Tensor:
        scores = scores_of(input, "pairwise_logit_regression")
        n = scores.shape[0]
        if group is None:
            raise ValueError("Loss 'pairwise_logit_regression' needs group=: one pair id per row.")
        group = torch.as_tensor(group, device=scores.device).reshape(-1)
        same = group[:, None] == group[None, :]
        if bool((same.sum(dim=1) > 2).any()):
            raise ValueError(
                "Loss 'pairwise_logit_regression' takes pairs: a group holds at most two rows "
                "in a batch."
            )
        p_hat = as_float_target(target.reshape(-1), scores).clamp(self.clip, 1 - self.clip)
        if teacher_logits is not None:
            ref = torch.as_tensor(teacher_logits, dtype=scores.dtype, device=scores.device)
            scores = scores - ref.reshape(-1).detach()
        weight = row_weights(sample_weight, n, scores)
        pairs = same & ~torch.eye(n, dtype=torch.bool, device=scores.device)
        diff = scores[:, None] - scores[None, :]
        pair_loss = (self.beta * diff - torch.logit(p_hat)[:, None]).square()
        pair_weight = weight[:, None] * weight[None, :] * pairs.to(scores.dtype)
        total = (pair_weight * pair_loss).sum()
        if self.reduction == "sum":
            return total
        return total / pair_weight.sum().clamp_min(torch.finfo(scores.dtype).tiny)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, clip={self.clip}, reduction={self.reduction!r}"
