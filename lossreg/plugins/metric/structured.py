"""Losses over in-batch pair structures: N-pair, lifted structure and angular (batch-level)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import as_class_target

from ._private import (
    BatchLoss,
    check_embeddings,
    label_masks,
    neg_inf,
    pairwise_distance,
    reduce_terms,
)

__all__ = ["Angular", "LiftedStructure", "NPair"]


def first_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return, for each label with two rows or more, its first row and its second row."""
    order = torch.argsort(labels, stable=True)  # rows grouped by label, in row order
    grouped = labels[order]
    starts = torch.ones_like(grouped, dtype=torch.bool)
    starts[1:] = grouped[1:] != grouped[:-1]
    first = torch.nonzero(starts).squeeze(1)
    second = (first + 1).clamp_max(labels.shape[0] - 1)
    paired = (first + 1 < labels.shape[0]) & (grouped[second] == grouped[first])
    return order[first[paired]], order[second[paired]]


class NPair(BatchLoss):
    r"""Multi-class N-pair loss (batch-level): one positive pair per class in the batch.

    .. math::

        \ell_a = \log\Big(1+\sum_{k\ne a}e^{f_a^\top f_{p_k}-f_a^\top f_{p_a}}\Big), \qquad
        L = \frac{1}{|A|}\sum_a\ell_a
            + \frac{\lambda}{4}\Big(\overline{\lVert f_a\rVert^2}+\overline{\lVert f_p\rVert^2}\Big)

    For each label with at least two rows, its first row is the anchor :math:`a` and its second
    row the positive :math:`p_a`; the other classes' positives are the negatives (a softmax
    cross-entropy over anchor-positive dot products). Embeddings are not normalised; the L2
    penalty on the paired embeddings keeps their norms from growing.

    Input: embeddings (N, D) float; target: int labels (N,). ``reduction`` is "mean" (over
    anchors) or "sum" (the penalty is added once either way); ``sample_weight`` weights each
    anchor's term.

    Parameters
    ----------
    l2_reg : float in [0, inf), default=0.002
        :math:`\lambda` of the embedding-norm penalty.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Needs an N-pair sampler (two rows per class); other rows are unused. The penalty's form and
    its default 0.002 follow TensorFlow's ``npairs_loss`` and Paddle's ``npair_loss`` (the
    catalogue gives no default; the paper's value was not checked). The cross-entropy term
    matches PML's ``NPairsLoss`` with an unnormalised ``DotProductSimilarity`` (PML normalises
    by default), which picks the same pairs.

    References
    ----------
    K. Sohn. "Improved Deep Metric Learning with Multi-class N-pair Loss Objective." NeurIPS
    2016.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> round(NPair()(x, torch.tensor([0, 0, 1, 1])).item(), 4)
    0.4103
    """

    def __init__(self, *, l2_reg: float = 0.002, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.l2_reg = l2_reg

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        x = check_embeddings(input)
        self.check_weight(sample_weight, x.shape[0])
        anchors, positives = first_pairs(as_class_target(target))
        a, p = x[anchors], x[positives]
        logits = a @ p.T
        terms = torch.logsumexp(logits, dim=1) - torch.diagonal(logits)
        loss = reduce_terms(terms, anchors, self.reduction, sample_weight)
        if self.l2_reg and anchors.numel():
            penalty = a.square().sum(dim=1).mean() + p.square().sum(dim=1).mean()
            loss = loss + 0.25 * self.l2_reg * penalty
        return loss

    def extra_repr(self) -> str:
        return f"l2_reg={self.l2_reg}, reduction={self.reduction!r}"


class LiftedStructure(BatchLoss):
    r"""Lifted structured embedding loss (batch-level).

    .. math::

        J_{ij} = \log\Big(\sum_{k\in\mathcal N_i}e^{\alpha-d_{ik}}
                 +\sum_{l\in\mathcal N_j}e^{\alpha-d_{jl}}\Big)+d_{ij}, \qquad
        L = \frac{1}{2|\mathcal P|}\sum_{(i,j)\in\mathcal P}[J_{ij}]_+^2

    over the unordered positive pairs :math:`\mathcal P`, with Euclidean distances :math:`d`
    and :math:`\mathcal N_i` the rows of another label than :math:`i`. Computed with logsumexp.

    Input: embeddings (N, D) float; target: int labels (N,). ``reduction`` is "mean" (the
    formula) or "sum" (:math:`\tfrac12\sum[J]_+^2`); ``sample_weight`` weights each (ordered)
    pair by its first row.

    Parameters
    ----------
    margin : float in (0, inf), default=1.0
        :math:`\alpha`.
    normalize : bool, default=True
        L2-normalise the embeddings first (PML's default; the catalogue does not say).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Matches PML's ``LiftedStructureLoss(neg_margin=margin, pos_margin=0)`` with a mean reducer
    (it averages :math:`[J]_+^2/2` over ordered pairs, which is the same value). Needs an
    m-per-class sampler.

    References
    ----------
    H. O. Song, Y. Xiang, S. Jegelka, S. Savarese. "Deep Metric Learning via Lifted Structured
    Feature Embedding." CVPR 2016, arXiv:1511.06452.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> round(LiftedStructure()(x, torch.tensor([0, 0, 1, 1])).item(), 4)
    1.4328
    """

    def __init__(
        self, *, margin: float = 1.0, normalize: bool = True, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.margin = margin
        self.normalize = normalize

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        self.check_weight(sample_weight, input.shape[0])
        dist = pairwise_distance(check_embeddings(input), "euclidean", self.normalize)
        pos, neg = label_masks(as_class_target(target))
        i, j = torch.nonzero(pos, as_tuple=True)
        hinge = (self.margin - dist).masked_fill(~neg, neg_inf(dist))
        negatives = torch.logsumexp(torch.cat([hinge[i], hinge[j]], dim=1), dim=1)
        terms = 0.5 * F.relu(negatives + dist[i, j]).square()
        return reduce_terms(terms, i, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, normalize={self.normalize}, reduction={self.reduction!r}"


class Angular(BatchLoss):
    r"""Angular loss, N-pair form (batch-level).

    .. math::

        \ell_{ap} = \log\Big(1+\sum_{n\in\mathcal N_a}
                    e^{4\tan^2\alpha\,(x_a+x_p)^\top x_n-2(1+\tan^2\alpha)\,x_a^\top x_p}\Big)

    over every ordered positive pair :math:`(a, p)` of L2-normalised embeddings, with the rows of
    other labels as negatives; the mean runs over positive pairs.

    Input: embeddings (N, D) float; target: int labels (N,). ``reduction`` is "mean" or "sum";
    ``sample_weight`` weights each pair by its anchor.

    Parameters
    ----------
    alpha : float in (0, 90), default=40.0
        The angle :math:`\alpha` in **degrees** (paper range 36-55).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Matches PML's ``AngularLoss`` (also in degrees) with a mean reducer on unit embeddings;
    PML normalises anchors and positives but not the negatives' embeddings, the paper
    normalises every embedding (followed here). The paper's best
    results add the N-pair loss (weight 2); compose it with ``npair`` if wanted.

    References
    ----------
    J. Wang, F. Zhou, S. Wen, X. Liu, Y. Lin. "Deep Metric Learning with Angular Loss." ICCV
    2017, arXiv:1708.01682.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> round(Angular()(x, torch.tensor([0, 0, 1, 1])).item(), 4)
    0.3124
    """

    def __init__(self, *, alpha: float = 40.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        self.check_weight(sample_weight, input.shape[0])
        x = F.normalize(check_embeddings(input), dim=1)
        pos, neg = label_masks(as_class_target(target))
        a, p = torch.nonzero(pos, as_tuple=True)
        tan2 = math.tan(math.radians(self.alpha)) ** 2
        logits = 4 * tan2 * (x[a] + x[p]) @ x.T
        logits = logits - 2 * (1 + tan2) * (x[a] * x[p]).sum(dim=1, keepdim=True)
        logits = torch.cat(
            [logits.masked_fill(~neg[a], neg_inf(logits)), logits.new_zeros(len(a), 1)], dim=1
        )
        terms = torch.logsumexp(logits, dim=1)
        return reduce_terms(terms, a, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, reduction={self.reduction!r}"
