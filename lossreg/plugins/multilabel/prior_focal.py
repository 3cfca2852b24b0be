"""Prior focal modifier: the multi-grained focal modifier plus a label co-occurrence prior."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import as_label_matrix

__all__ = ["PriorFocalModifier"]

# The reference clamps probabilities at eps = 1e-8 before its logs; the co-occurrence factor
# 1 - a can reach 0 (a label that always co-occurs), so its log is floored the same way.
_EPS = 1e-8


def _power(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    positive = base > 0
    safe = torch.where(positive, base, torch.ones_like(base))
    return torch.where(positive, safe.pow(exponent), (exponent == 0).to(base.dtype))


class PriorFocalModifier(LossModule):
    r"""Multi-grained focal modifier with a label co-occurrence prior (COMIC's PFM loss).

    With :math:`M` the training co-occurrence matrix normalised by its column sums, row i's
    attention :math:`a_i` is the mean of the rows :math:`M_j` of its positive labels j,
    normalised to sum to 1 (:math:`a_i = 0` for a row without positives). Then

    .. math::

        p^+ = p\,(1 - a),\qquad
        q = \min\bigl(1 - p + m, 1\bigr)\cdot\begin{cases}\gamma_{ng} & a \ne 0\\ 1 & a = 0
        \end{cases}\ \text{(clamped at 1)},\qquad
        w_c = \bigl(1 - \log(\pi_c/\pi_{\max})\bigr)^{k}

    .. math::

        \ell_i = -\sum_c w_c\bigl[y_{ic}(1-p^+_{ic})^{\gamma_+}\log p^+_{ic}
                 + (1-y_{ic})(1-q_{ic})^{\gamma_- + w_c}\log q_{ic}\bigr]

    Logits (N, L); multi-hot targets (N, L); the row value sums over labels.

    Parameters
    ----------
    gamma_neg : float >= 0, default=3.0
        :math:`\gamma_-`.
    gamma_pos : float >= 0, default=0.0
        :math:`\gamma_+`.
    clip : float in [0, 1), default=0.05
        Probability margin :math:`m` of the negatives.
    exponent : float > 0, default=1/3
        :math:`k` of the rarity weight.
    gamma_ng : float >= 1, default=1.2
        Factor on the negative probability term where the row attention is non-zero.
    disable_grad_focal : bool, default=True
        Compute the focusing weights without gradient (the reference default).
    class_counts : sequence of L ints > 0
        Positive training rows per label (data param).
    label_cooccurrence : L x L nested sequence of ints
        Training rows where labels j and k are both positive (data param, fitted per fold).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against wannature/COMIC ``loss/PriorFocalModifierLoss.py`` (the class selected by
    ``config/coco/resnet50_plt.yaml``); defaults follow the module's ``create_loss``
    (:math:`\gamma_-=3`, :math:`\gamma_+=0`, clip 0.05; the class signature says
    :math:`\gamma_+=1`). Differences: a row without positive labels has attention 0 here
    (the reference takes the mean of an empty set, NaN); a column of the co-occurrence matrix
    that sums to 0 stays 0; :math:`\log p^+ = \log p + \log(1-a)` with exact
    :math:`\log p` and :math:`1-a` floored at 1e-8 instead of one clamp of the product. The
    attention uses the targets, so it is part of the loss, not of the prediction.

    References
    ----------
    W. Zhang, C. Liu, L. Zeng, B. C. Ooi, S. Tang, Y. Zhuang. "Learning in Imperfect
    Environment: Multi-Label Classification with Long-Tailed Distribution and Partial
    Labels." ICCV 2023, arXiv:2304.10539.

    Examples
    --------
    >>> import torch
    >>> loss = PriorFocalModifier(
    ...     class_counts=[30, 3], label_cooccurrence=[[30, 2], [2, 3]], reduction="none"
    ... )
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    >>> [round(v, 4) for v in loss(logits, targets).tolist()]
    [1.334, 3.7103, 1.6843, 0.0247]
    """

    def __init__(
        self,
        *,
        gamma_neg: float = 3.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
        exponent: float = 1 / 3,
        gamma_ng: float = 1.2,
        disable_grad_focal: bool = True,
        class_counts: Sequence[int],
        label_cooccurrence: Sequence[Sequence[int]],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.exponent = exponent
        self.gamma_ng = gamma_ng
        self.disable_grad_focal = disable_grad_focal
        self.class_counts = class_counts
        self.label_cooccurrence = label_cooccurrence
        counts = torch.as_tensor(class_counts, dtype=torch.float64).reshape(-1)
        if bool((counts <= 0).any()):
            raise ValueError(
                "prior_focal_modifier needs at least one positive training row per label; "
                f"got class_counts={list(class_counts)!r}."
            )
        co = torch.as_tensor(label_cooccurrence, dtype=torch.float64)
        if co.shape != (counts.numel(), counts.numel()):
            raise ValueError(
                f"label_cooccurrence must be {counts.numel()} x {counts.numel()} (one row and "
                f"column per label); got shape {tuple(co.shape)}."
            )
        column = co.sum(dim=0, keepdim=True)
        normalised = torch.where(column > 0, co / column.clamp_min(1), torch.zeros_like(co))
        self.register_buffer("cooccurrence_", normalised)
        self.register_buffer("weight_", (1 - torch.log(counts / counts.max())).pow(exponent))

    def attention(self, y: torch.Tensor) -> torch.Tensor:
        """Return each row's normalised co-occurrence attention (N, L); 0 without positives."""
        positive = (y > 0).to(y.dtype)
        summed = positive @ self.cooccurrence_.to(y.dtype)
        mean = summed / positive.sum(dim=1, keepdim=True).clamp_min(1)
        total = mean.sum(dim=1, keepdim=True)
        return torch.where(total > 0, mean / total.clamp_min(1e-300), torch.zeros_like(mean))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        z, y = as_label_matrix(input, target)
        if z.shape[1] != self.weight_.numel():
            raise ValueError(
                f"The output has {z.shape[1]} labels but class_counts has "
                f"{self.weight_.numel()}; pass one positive count per label."
            )
        w = self.weight_.to(z.dtype)
        a = self.attention(y)
        log_pos = -F.softplus(-z) + torch.log((1 - a).clamp_min(_EPS))
        q = torch.sigmoid(-z)
        if self.clip > 0:
            q = (q + self.clip).clamp(max=1)
        q = torch.where(a == 0, q, (q * self.gamma_ng).clamp(max=1))
        # q >= clip > 0 with clipping; without it q = sigmoid(-z) may underflow, hence the floor.
        log_neg = torch.log(q.clamp_min(_EPS)) if self.clip <= 0 else torch.log(q)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.disable_grad_focal):
            p_pos = torch.sigmoid(z) * (1 - a)
            w_pos = _power(1 - p_pos, torch.full_like(p_pos, self.gamma_pos))
            w_neg = _power(1 - q, (self.gamma_neg + w).expand_as(q))
        return -(w * (y * w_pos * log_pos + (1 - y) * w_neg * log_neg)).sum(dim=1)

    def extra_repr(self) -> str:
        return (
            f"gamma_neg={self.gamma_neg}, gamma_pos={self.gamma_pos}, clip={self.clip}, "
            f"exponent={self.exponent}, gamma_ng={self.gamma_ng}, reduction={self.reduction!r}"
        )
