"""Pair and triplet losses with in-batch mining: contrastive and triplet (batch-level)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import as_class_target

from ._private import BatchLoss, check_embeddings, label_masks, pairwise_distance, reduce_terms

__all__ = ["Contrastive", "Triplet"]


class Triplet(BatchLoss):
    r"""Triplet margin loss over in-batch triplets chosen by a miner (batch-level).

    .. math::

        \ell_{apn} = [\,d(a,p) - d(a,n) + \alpha\,]_+, \qquad
        L = \frac{1}{|T|}\sum_{(a,p,n)\in T} \ell_{apn}

    over the triplets :math:`T` picked by the miner from the batch: ``"all"`` (every anchor,
    positive of the same label, negative of another label), ``"semi_hard"`` (negatives with
    :math:`0 < d(a,n) - d(a,p) \le \alpha`) or ``"hard"`` (per anchor, its farthest positive and
    its closest negative: "batch hard"). Mining runs on detached distances.

    Input: embeddings (N, D) float; target: int labels (N,). No per-row form: ``reduction`` is
    "mean" (over mined triplets) or "sum". ``sample_weight`` weights each triplet by its anchor's
    weight. A batch without any mined triplet gives 0.

    Parameters
    ----------
    margin : float in (0, inf), default=0.2
        :math:`\alpha` (FaceNet's value on unit embeddings; useful range 0.05-1).
    miner : {"semi_hard", "hard", "all"}, default="semi_hard"
    distance : {"squared_euclidean", "euclidean", "cosine"}, default="squared_euclidean"
        ``cosine`` is :math:`1-\cos`.
    normalize : bool, default=True
        L2-normalise the embeddings first (FaceNet does).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Needs a class-balanced ("m per class") batch sampler so that anchors have positives.
    PML's ``TripletMarginLoss`` defaults to margin 0.05, the non-squared distance and an average
    over non-zero triplets only; here the mean runs over every mined triplet (for
    ``semi_hard`` every mined triplet has a positive loss anyway). The Transitive-Invariance
    setting is ``distance="cosine", margin=0.5``; its top-k negative selection is not offered.
    The "all" miner builds an (N, N, N) mask: keep batches below ~500 rows.

    References
    ----------
    F. Schroff, D. Kalenichenko, J. Philbin. "FaceNet: A Unified Embedding for Face
    Recognition and Clustering." CVPR 2015, arXiv:1503.03832.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> round(Triplet(miner="all")(x, y).item(), 4)
    0.0
    >>> round(Triplet(miner="hard", margin=1.0)(x, y).item(), 4)
    0.3
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        miner: str = "semi_hard",
        distance: str = "squared_euclidean",
        normalize: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.margin = margin
        self.miner = miner
        self.distance = distance
        self.normalize = normalize

    def mine(
        self, dist: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return anchor, positive and negative indices of the mined triplets."""
        pos, neg = label_masks(labels)
        dist = dist.detach()
        if self.miner == "hard":
            hardest_pos = dist.masked_fill(~pos, float("-inf")).argmax(dim=1)
            hardest_neg = dist.masked_fill(~neg, float("inf")).argmin(dim=1)
            anchors = torch.nonzero(pos.any(dim=1) & neg.any(dim=1)).squeeze(1)
            return anchors, hardest_pos[anchors], hardest_neg[anchors]
        a, p, n = torch.nonzero(pos.unsqueeze(2) & neg.unsqueeze(1), as_tuple=True)
        if self.miner == "semi_hard":
            gap = dist[a, n] - dist[a, p]
            keep = (gap > 0) & (gap <= self.margin)
            a, p, n = a[keep], p[keep], n[keep]
        elif self.miner != "all":
            raise ValueError(f"miner must be 'all', 'hard' or 'semi_hard'. Got {self.miner!r}.")
        return a, p, n

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        labels = as_class_target(target)
        self.check_weight(sample_weight, input.shape[0])
        dist = pairwise_distance(check_embeddings(input), self.distance, self.normalize)
        a, p, n = self.mine(dist, labels)
        terms = F.relu(dist[a, p] - dist[a, n] + self.margin)
        return reduce_terms(terms, a, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, miner={self.miner!r}, distance={self.distance!r}, "
            f"normalize={self.normalize}, reduction={self.reduction!r}"
        )


class Contrastive(BatchLoss):
    r"""Contrastive (Siamese) pair loss over every in-batch pair (batch-level).

    .. math::

        \ell_{ij} = \tfrac12\, y_{ij}\, [d_{ij} - m_+]_+^2
                  + \tfrac12\, (1-y_{ij})\, [m_- - d_{ij}]_+^2, \qquad
        L = \frac{1}{N(N-1)}\sum_{i\ne j}\ell_{ij}

    with :math:`y_{ij} = 1` for rows of the same label. Every ordered pair :math:`i\ne j` is a
    term. With :math:`m_+=0` the positive term is :math:`\tfrac12 d_{ij}^2`, as in the paper.

    Input: embeddings (N, D) float; target: int labels (N,). ``reduction`` is "mean" (over
    pairs) or "sum"; ``sample_weight`` weights each pair by its first row's weight.

    Parameters
    ----------
    neg_margin : float in (0, inf), default=1.0
        :math:`m_-`, the distance beyond which negative pairs stop contributing.
    pos_margin : float in [0, inf), default=0.0
        :math:`m_+`, the distance below which positive pairs stop contributing.
    distance : {"euclidean", "squared_euclidean", "cosine"}, default="euclidean"
    normalize : bool, default=False
        L2-normalise the embeddings first (the paper does not).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    The paper (Hadsell et al., their eq. 4, checked in secondary transcriptions) has the
    :math:`\tfrac12` factors and squared hinges; the catalogue's formula omits the
    :math:`\tfrac12` - the paper is followed. PML's ``ContrastiveLoss`` uses non-squared hinges,
    normalises embeddings by default and averages positive and negative pairs separately over
    non-zero terms, so it is a different loss; the reference test is a float64 loop.

    References
    ----------
    R. Hadsell, S. Chopra, Y. LeCun. "Dimensionality Reduction by Learning an Invariant
    Mapping." CVPR 2006, doi:10.1109/CVPR.2006.100.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [2.0, 0.0]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> round(Contrastive()(x, y).item(), 4)
    0.403
    """

    def __init__(
        self,
        *,
        neg_margin: float = 1.0,
        pos_margin: float = 0.0,
        distance: str = "euclidean",
        normalize: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.neg_margin = neg_margin
        self.pos_margin = pos_margin
        self.distance = distance
        self.normalize = normalize

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        labels = as_class_target(target)
        self.check_weight(sample_weight, input.shape[0])
        dist = pairwise_distance(check_embeddings(input), self.distance, self.normalize)
        pos, neg = label_masks(labels)
        values = torch.where(
            pos,
            F.relu(dist - self.pos_margin).square(),
            F.relu(self.neg_margin - dist).square(),
        )
        rows, cols = torch.nonzero(pos | neg, as_tuple=True)
        return reduce_terms(0.5 * values[rows, cols], rows, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return (
            f"neg_margin={self.neg_margin}, pos_margin={self.pos_margin}, "
            f"distance={self.distance!r}, normalize={self.normalize}, reduction={self.reduction!r}"
        )
