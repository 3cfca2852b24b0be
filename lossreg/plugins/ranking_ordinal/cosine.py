"""Cosine contrastive loss (SimpleX CCL) for a cosine-score head."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_class_target

__all__ = ["CosineContrastive"]


class CosineContrastive(LossModule):
    r"""Cosine contrastive loss: pull the positive cosine to 1, push negatives below a margin.

    .. math::

        \ell_i = [1 - s_{i,y_i}]_+ + \frac{w}{M}\sum_{c \ne y_i} [s_{ic} - m]_+

    over the :math:`M = C - 1` negative columns. Input: cosine scores (N, C); target: the
    positive column per row (N,). The recommender layout (N, 1+M) with the positive in
    column 0 is the same loss with target 0 on every row.

    Parameters
    ----------
    margin : float in (-1, 1), default=0.5
        Negatives with cosine below :math:`m` cost nothing.
    negative_weight : float in [0, inf), default=10.0
        Weight :math:`w` of the mean negative term.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against RecBole's ``SimpleX.forward`` (``relu(1 - pos_cos)`` plus
    ``negative_weight * relu(neg_cos - margin).mean(1)``) and its default configuration
    (``margin: 0.5``, ``negative_weight: 10``), which are the defaults here; the paper tunes
    :math:`m` in 0.4--0.9 and :math:`w` in 1--150 with hundreds of sampled negatives. The
    scores must be cosines (L2-normalised features and class weights): the loss does not
    normalise; on raw scores it is a multiclass hinge-like loss. No probabilities: predict by
    the largest score.

    References
    ----------
    K. Mao, J. Zhu, J. Wang, Q. Dai, Z. Dong, X. Xiao, X. He. "SimpleX: A Simple and Strong
    Baseline for Collaborative Filtering." CIKM 2021, arXiv:2109.12613.

    Examples
    --------
    >>> import torch
    >>> cos = torch.tensor([[0.9, 0.6, -0.2], [0.1, 0.8, 0.7], [1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    >>> loss = CosineContrastive(reduction="none")
    >>> [round(v, 4) for v in loss(cos, torch.tensor([0, 1, 0, 2])).tolist()]
    [0.6, 1.2, 0.0, 0.5]
    """

    def __init__(
        self, *, margin: float = 0.5, negative_weight: float = 10.0, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.margin = margin
        self.negative_weight = negative_weight

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        if input.ndim != 2 or input.shape[1] < 2:
            raise ValueError(
                "Loss 'cosine_contrastive' takes cosine scores (N, C) with C >= 2 (a positive "
                f"and at least one negative). Got shape {tuple(input.shape)}."
            )
        labels = as_class_target(target)
        positive = input.gather(1, labels[:, None])[:, 0]
        is_negative = torch.ones_like(input, dtype=torch.bool)
        is_negative.scatter_(1, labels[:, None], False)
        negative = (input - self.margin).clamp_min(0) * is_negative.to(input.dtype)
        n_negatives = input.shape[1] - 1
        return (1 - positive).clamp_min(0) + self.negative_weight * negative.sum(
            dim=1
        ) / n_negatives

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, negative_weight={self.negative_weight}, "
            f"reduction={self.reduction!r}"
        )
