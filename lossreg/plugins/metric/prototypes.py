"""Losses against in-batch class prototypes: the prototype triplet loss (one value per row)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import check_embeddings

__all__ = ["ProtoTriplet"]


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
    As the catalogue's reading of the authors' ``proto_triplet_loss`` (prototypes include the
    anchor; the :math:`10^{-6}` inside the root keeps the gradient finite at zero distance).
    Needs at least two rows per class in each batch. Predict labels by the nearest prototype
    stored at fit (an estimator feature).

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
