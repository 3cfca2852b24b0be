"""Lovász hinge: the Lovász extension of the Jaccard loss on hinge errors (batch-level)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._private import as_label_matrix, check_batch_reduction

__all__ = ["LovaszHinge"]


def _lovasz_grad(sorted_labels: torch.Tensor) -> torch.Tensor:
    """Return the Jaccard-loss increments down each column's sorted order, shape (N, L).

    ``sorted_labels`` holds each label column's 0/1 targets in the order of its decreasing
    errors; the result is the Lovász extension's weights, column by column.
    """
    positives = sorted_labels.sum(dim=0)
    intersection = positives - sorted_labels.cumsum(dim=0)
    # Never 0: it is at least the positives, and at least 1 once a negative is passed.
    union = positives + (1 - sorted_labels).cumsum(dim=0)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


class LovaszHinge(nn.Module):
    r"""Lovász hinge loss: a convex surrogate of the Jaccard loss over the batch, per label.

    With hinge errors :math:`e_i = 1 - z_i(2y_i - 1)` sorted in decreasing order
    (permutation :math:`\pi`), :math:`P = \sum_i y_i` and

    .. math::

        J_j = 1 - \frac{P - \sum_{k\le j} y_{\pi_k}}{P + \sum_{k\le j}(1 - y_{\pi_k})},\quad
        g_1 = J_1,\ g_j = J_j - J_{j-1},\qquad
        L = \sum_j \mathrm{relu}(e_{\pi_j})\, g_j

    computed per label over the rows of the batch and averaged over labels. Logits (N,) or
    (N, L); 0/1 targets. Predict with ``sigmoid(z)`` (or the sign of z).

    Parameters
    ----------
    reduction : {"mean", "sum"}, default="mean"
        ``mean`` returns L; ``sum`` returns N L.

    Notes
    -----
    Follows bermanmaxim/LovaszSoftmax ``lovasz_hinge_flat`` (as used by
    ``segmentation_models_pytorch.losses.LovaszLoss(mode="binary", per_image=False)``);
    gradients flow through the errors only (the sort is piecewise constant). Sample weights
    have no place in the Lovász extension: non-uniform ones raise.

    References
    ----------
    M. Berman, A. Rannen Triki, M. B. Blaschko. "The Lovász-Softmax loss: A tractable
    surrogate for the optimization of the intersection-over-union measure in neural
    networks." CVPR 2018, arXiv:1705.08790.

    Examples
    --------
    >>> import torch
    >>> loss = LovaszHinge()
    >>> logits = torch.tensor([2.0, -1.0, 0.5, -0.5])
    >>> round(loss(logits, torch.tensor([1.0, 0.0, 0.0, 1.0])).item(), 4)
    1.0
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_batch_reduction("lovasz_hinge", reduction)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if sample_weight is not None:
            weight = torch.as_tensor(sample_weight)
            if weight.numel() and not bool((weight == weight.reshape(-1)[0]).all()):
                raise ValueError(
                    "lovasz_hinge cannot honour per-row sample weights (the Lovász extension "
                    "has no row weights); fit without sample_weight or use dice/jaccard."
                )
        z, y = as_label_matrix(input, target)
        # All label columns at once: one sort along the rows, the targets gathered into each
        # column's order, then each column's dot product as a sum down the rows.
        errors = 1 - z * (2 * y - 1)
        errors_sorted, order = torch.sort(errors, dim=0, descending=True)
        grad = _lovasz_grad(y.gather(0, order))
        loss = (F.relu(errors_sorted) * grad).sum(dim=0).mean()
        return loss if self.reduction == "mean" else loss * z.shape[0]
