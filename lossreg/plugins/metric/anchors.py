"""Per-anchor pair-weighting losses: multi-similarity and circle (one value per anchor row)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import check_embeddings, label_masks, neg_inf

__all__ = ["Circle", "MultiSimilarity", "masked_logsumexp"]


def masked_logsumexp(z: torch.Tensor, mask: torch.Tensor, add_one: bool = False) -> torch.Tensor:
    """Row-wise :math:`\\log(\\mathbb 1[\\text{add\\_one}] + \\sum_{j\\in\\text{mask}} e^{z_j})`.

    Masked entries are set to the dtype's most negative finite value (not -inf, whose
    gradient through logsumexp can be NaN when a whole row is masked).
    """
    z = z.masked_fill(~mask, neg_inf(z))
    if add_one:
        z = torch.cat([z, z.new_zeros(z.shape[0], 1)], dim=1)
    return torch.logsumexp(z, dim=1)


class MultiSimilarity(LossModule):
    r"""Multi-similarity loss with its pair mining, one value per anchor.

    .. math::

        \ell_i = \frac1\alpha\log\Big[1+\sum_{k\in\mathcal P_i}e^{-\alpha(S_{ik}-\lambda)}\Big]
               + \frac1\beta\log\Big[1+\sum_{k\in\mathcal N_i}e^{\beta(S_{ik}-\lambda)}\Big]

    with cosine similarities :math:`S`. Mining (on detached similarities) keeps a negative
    when :math:`S_{ik}+\epsilon > \min_{p} S_{ip}` and a positive when
    :math:`S_{ip}-\epsilon < \max_{n} S_{in}`. An anchor left without a mined positive or a
    mined negative has loss 0 and still counts in the mean, as in the official code (which
    divides by the batch size).

    Input: embeddings (N, D) float; target: int labels (N,). Output of ``reduction="none"``: (N,).

    Parameters
    ----------
    alpha : float in (0, inf), default=2.0
        Scale of the positive term.
    beta : float in (0, inf), default=50.0
        Scale of the negative term.
    base : float, default=1.0
        :math:`\lambda`, the similarity margin.
    epsilon : float in [0, inf) or None, default=0.1
        Mining margin :math:`\epsilon`; ``None`` switches mining off (every pair is used).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Defaults follow the catalogue's reading of the paper (:math:`\alpha=2, \beta=50,
    \lambda=1, \epsilon=0.1`); PML's ``MultiSimilarityLoss`` defaults to ``base=0.5`` and, with
    its ``MultiSimilarityMiner``, keeps the positive (or negative) term of an anchor whose other
    side mined nothing and averages over anchors with pairs - the official code skips such
    anchors, which is followed here. Needs an m-per-class sampler.

    References
    ----------
    X. Wang, X. Han, W. Huang, D. Dong, M. R. Scott. "Multi-Similarity Loss with General Pair
    Weighting for Deep Metric Learning." CVPR 2019, arXiv:1904.06627.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> loss = MultiSimilarity(reduction="none")
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 1, 0, 1])).tolist()]
    [1.0635, 1.0635, 1.0635, 1.0635]
    """

    def __init__(
        self,
        *,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 1.0,
        epsilon: float | None = 0.1,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.beta = beta
        self.base = base
        self.epsilon = epsilon

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        x = F.normalize(check_embeddings(input), dim=1)
        sim = x @ x.T
        pos, neg = label_masks(as_class_target(target))
        if self.epsilon is not None:
            s = sim.detach()
            hardest_pos = s.masked_fill(~pos, float("inf")).min(dim=1, keepdim=True).values
            hardest_neg = s.masked_fill(~neg, float("-inf")).max(dim=1, keepdim=True).values
            neg = neg & (s + self.epsilon > hardest_pos)
            pos = pos & (s - self.epsilon < hardest_neg)
            both = pos.any(dim=1, keepdim=True) & neg.any(dim=1, keepdim=True)
            pos, neg = pos & both, neg & both
        pos_term = masked_logsumexp(-self.alpha * (sim - self.base), pos, add_one=True)
        neg_term = masked_logsumexp(self.beta * (sim - self.base), neg, add_one=True)
        return pos_term / self.alpha + neg_term / self.beta

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, base={self.base}, epsilon={self.epsilon}, "
            f"reduction={self.reduction!r}"
        )


class Circle(LossModule):
    r"""Circle loss (pair form with class labels), one value per anchor.

    .. math::

        \ell_i = \log\Big[1+\sum_{n}e^{\gamma\alpha_n(s_n-\Delta_n)}
                 \sum_{p}e^{-\gamma\alpha_p(s_p-\Delta_p)}\Big]

    with cosine similarities to the anchor's positives :math:`s_p` and negatives :math:`s_n`,
    :math:`\alpha_p=[1+m-s_p]_+`, :math:`\alpha_n=[s_n+m]_+` (detached, as in the paper),
    :math:`\Delta_p=1-m`, :math:`\Delta_n=m`. Computed as softplus of two logsumexps. Anchors
    without a positive or a negative have loss 0 (and count in the mean).

    Input: embeddings (N, D) float; target: int labels (N,). Output of ``reduction="none"``: (N,).

    Parameters
    ----------
    m : float in [0, 1], default=0.25
        Relaxation margin (paper: 0.25 for face recognition, 0.4 for fine-grained retrieval).
    gamma : float in (0, inf), default=256.0
        Scale (paper: 256 face recognition, 128 re-identification, 80 fine-grained retrieval).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Matches PML's ``CircleLoss`` per anchor (PML defaults to m=0.4, gamma=80, the
    fine-grained setting, and averages over non-zero anchors). Needs an m-per-class sampler.

    References
    ----------
    Y. Sun, C. Cheng, Y. Zhang, C. Zhang, L. Zheng, Z. Wang, Y. Wei. "Circle Loss: A Unified
    Perspective of Pair Similarity Optimization." CVPR 2020, arXiv:2002.10857.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> loss = Circle(gamma=80.0, m=0.4, reduction="none")
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.0001, 6.4017, 6.4017, 0.0001]
    """

    def __init__(self, *, m: float = 0.25, gamma: float = 256.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.m = m
        self.gamma = gamma

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        x = F.normalize(check_embeddings(input), dim=1)
        sim = x @ x.T
        pos, neg = label_masks(as_class_target(target))
        alpha_p = F.relu(1 + self.m - sim.detach())
        alpha_n = F.relu(sim.detach() + self.m)
        pos_logits = -self.gamma * alpha_p * (sim - (1 - self.m))
        neg_logits = self.gamma * alpha_n * (sim - self.m)
        loss = F.softplus(masked_logsumexp(pos_logits, pos) + masked_logsumexp(neg_logits, neg))
        return torch.where(pos.any(dim=1) & neg.any(dim=1), loss, loss.new_zeros(()))

    def extra_repr(self) -> str:
        return f"m={self.m}, gamma={self.gamma}, reduction={self.reduction!r}"
