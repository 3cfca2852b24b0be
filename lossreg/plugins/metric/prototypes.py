"""Losses against in-batch neighbours and class prototypes: prototype triplet, ICNN score."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import BatchLoss, check_embeddings

__all__ = ["ICNN", "ProtoTriplet"]


class ProtoTriplet(LossModule):
    r"""Prototype triplet loss: own in-batch class mean against the closest other class mean.

    .. math::

        \ell_i = [\,d(f_i, \mu_{y_i}) - \min_{c\ne y_i} d(f_i, \mu_c) + m\,]_+, \qquad
        d(u, v) = \sqrt{\lVert u-v\rVert^2 + 10^{-6}}

    with :math:`\mu_c` the mean of the batch rows of label :math:`c` (the anchor included).
    A batch with a single label gives 0 for every row.

    Input: embeddings (N, D) float; target: int labels (N,). Output of ``reduction="none"``: (N,).

    Parameters
    ----------
    margin : float in [0, inf), default=0.5
        :math:`m`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against the authors' ``proto_triplet_loss`` (distance
    :math:`\sqrt{\lVert\cdot\rVert^2+10^{-6}}`, margin 0.5, mean over rows; the
    :math:`10^{-6}` also keeps the gradient finite at zero distance). There, prototypes are
    few-shot support-set means and the rows are separate queries; here, as the catalogue
    adapts it, prototypes are in-batch class means that include the anchor. Needs at least two
    rows per class in each batch. Predict labels by the nearest prototype stored at fit (an
    estimator feature).

    References
    ----------
    "SuSana Distancia is all you need: Enforcing class separability in metric learning via
    two novel distance-based loss functions for few-shot image classification." 2023.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> loss = ProtoTriplet(reduction="none")
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.0, 0.0, 0.0, 0.0]
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 1, 0, 1])).tolist()]
    [0.0669, 0.8909, 0.8909, 0.0669]
    """

    def __init__(self, *, margin: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = margin

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        x = check_embeddings(input)
        labels = as_class_target(target)
        classes, index = torch.unique(labels, return_inverse=True)
        onehot = F.one_hot(index, classes.shape[0]).to(x.dtype)  # (N, K)
        prototypes = (onehot.T @ x) / onehot.sum(dim=0).unsqueeze(1)
        dist = ((x.unsqueeze(1) - prototypes.unsqueeze(0)).square().sum(-1) + 1e-6).sqrt()
        if classes.shape[0] < 2:
            return dist.sum(dim=1) * 0
        own = dist.gather(1, index.unsqueeze(1)).squeeze(1)
        other = dist.masked_fill(onehot.bool(), float("inf")).min(dim=1).values
        return F.relu(own - other + self.margin)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class ICNN(BatchLoss):
    r"""ICNN loss: :math:`-\log` of a neighbourhood class-separability score (batch-level).

    For each row, its ``neighbors`` nearest other rows (distance
    :math:`\sqrt{\lVert\cdot\rVert^2+10^{-6}}`) are split into same-class and
    different-class neighbours:

    * :math:`\lambda_{same} = 1 - \overline{\text{mean same-class distance}}`, the first
      :math:`k` neighbours' distances divided by the row's nearest different-class distance
      and by :math:`\max(1, \text{row max})`, averaged per row (over same-class ones) and over
      rows that have any;
    * :math:`\lambda_{diff}` = the mean different-class distance among the first :math:`k`
      neighbours over the largest such distance of the batch (1 when there is none);
    * :math:`\gamma` = the mean fraction of same-class rows among the first :math:`k`
      neighbours (no gradient);

    :math:`\mathrm{score} = ((\lambda_{same}+\lambda_{diff})/2 + \gamma)/2`,
    :math:`L = -\log \mathrm{score}`.

    Input: embeddings (N, D) float; target: int labels (N,). ``reduction`` is "mean" or "sum"
    (one term either way); ``sample_weight`` is not supported.

    Parameters
    ----------
    k : int in [1, inf), default=4
        Neighbours scored (reduced to N - 2 for small batches, as the reference).
    neighbors : int in [1, inf) or None, default=None
        Neighbours searched (``None``: k + 1, the reference's default; its full-batch mode
        passes the rows per class). Capped at N - 1.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Follows the authors' ``modified_score`` / ``get_icnn_loss`` ("fullicnn" term) line by line,
    including its small constants (1e-7). The official training averages CE, ICNN and
    proto-triplet terms over their count; compose with ``proto_triplet`` if wanted.

    References
    ----------
    "SuSana Distancia is all you need: Enforcing class separability in metric learning via
    two novel distance-based loss functions for few-shot image classification." 2023.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8], [1.0, 0.1]])
    >>> round(ICNN(k=2)(x, torch.tensor([0, 0, 1, 1, 0])).item(), 4)
    0.3027
    """

    def __init__(
        self, *, k: int = 4, neighbors: int | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.k = k
        self.neighbors = neighbors

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if sample_weight is not None:
            raise ValueError(
                "icnn is one score of the whole batch and cannot honour sample_weight."
            )
        x = check_embeddings(input)
        labels = as_class_target(target)
        n = x.shape[0]
        if n < 3:
            raise ValueError("icnn needs at least 3 rows per batch.")
        eps = 1e-7
        k = n - 2 if self.k + 2 >= n else int(self.k)
        searched = min(k + 1 if self.neighbors is None else int(self.neighbors), n - 1)
        dist = ((x.unsqueeze(1) - x.unsqueeze(0)).square().sum(-1) + 1e-6).sqrt()
        values, index = dist.topk(searched + 1, dim=1, largest=False)
        d, index = values[:, 1:], index[:, 1:]  # the nearest is the row itself
        same = (labels[index] == labels.unsqueeze(1)).to(x.dtype)
        diff = 1 - same
        diff_dist = d * diff
        nearest_diff = diff_dist.masked_fill(diff == 0, float("inf")).min(dim=1).values
        nd = (d / (nearest_diff.unsqueeze(1) + eps))[:, :k]
        nd = nd / nd.max(dim=1, keepdim=True).values.clamp_min(1.0)
        same_k, diff_k = same[:, :k], diff[:, :k]
        same_counts = same_k.sum(dim=1)
        same_mean = (nd * same_k).sum(dim=1) / (same_counts + eps)
        # Row counts are cast to the input dtype: an int64 count plus a float would be float32.
        lambda_same = 1 - same_mean.sum() / ((same_counts > 0).to(x.dtype).sum() + eps)
        diff_near = diff_dist[:, :k]
        diff_near = diff_near / (diff_near.max() + eps)
        diff_counts = diff_k.sum(dim=1)
        diff_mean = diff_near.sum(dim=1) / (diff_counts + eps)
        offset = -1.0 if bool((diff_k == 0).all()) else 0.0
        lambda_diff = (diff_mean.sum() / ((diff_counts > 0).to(x.dtype).sum() + eps) + offset).abs()
        gamma = (same_counts / k).sum() / n if k + 2 < n else x.new_ones(())
        score = ((lambda_same + lambda_diff) / 2 + gamma) / 2
        return -torch.log(score)

    def extra_repr(self) -> str:
        return f"k={self.k}, neighbors={self.neighbors}, reduction={self.reduction!r}"
