"""LOOK: leave-one-out k-nearest-neighbour classification loss over in-batch neighbours."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import check_embeddings, label_masks, neg_inf

__all__ = ["LeaveOneOutKNN"]


class LeaveOneOutKNN(LossModule):
    r"""Leave-one-out kNN loss (LOOK): each row should share its label with most of its neighbours.

    .. math::

        p_i = \frac{\sum_{j\in N_k(i),\,y_j=y_i} e^{s_{ij}/\tau}}
                   {\sum_{j\in N_k(i)} e^{s_{ij}/\tau}}, \qquad
        \ell_i = -\log p_i, \qquad s_{ij} = \hat f_i^\top\hat f_j

    with :math:`N_k(i)` the :math:`k` rows of the batch most cosine-similar to row :math:`i`,
    row :math:`i` itself left out (all other rows when the batch has fewer than :math:`k+1`).
    A row none of whose neighbours shares its label has no defined loss (:math:`\log 0`): it
    gets 0 and counts in the mean, like an anchor without positives in ``supcon``.

    Input: embeddings (N, D); target: int labels (N,). ``reduction="none"`` returns (N,).

    Parameters
    ----------
    k : int >= 1, default=10
        Neighbours :math:`k`.
    temperature : float in (0, inf), default=0.07
        :math:`\tau`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The formula is the catalogue entry's; it agrees with the paper's description (Feng et al.,
    2021: a weighted kNN classifier whose leave-one-out error is the loss, so that each
    image only needs to share its label with most of its k nearest neighbours and classes may
    stay multi-modal), but the paper's equations and defaults could not be read and no
    official code was found. The paper searches neighbours in a momentum-encoder memory bank
    (hundreds of neighbours); here they are the other rows of the batch (the catalogue's
    tabular simplification), so :math:`k` and :math:`\tau` (defaults 10 and 0.07, from the
    catalogue's range) are not the paper's. Neighbour selection is a hard top-k (no gradient
    through the choice). Use a class-balanced sampler.

    References
    ----------
    Y. Feng, J. Jiang, M. Tang, R. Jin, Y. Gao. "Rethinking Supervised Pre-training for Better
    Downstream Transferring." arXiv:2110.06014, 2021.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> loss = LeaveOneOutKNN(k=2, temperature=0.5, reduction="none")
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.1839, 0.513, 0.513, 0.1839]
    """

    def __init__(self, *, k: int = 10, temperature: float = 0.07, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.k = k
        self.temperature = temperature

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        x = check_embeddings(input)
        if target is None:
            raise ValueError("LeaveOneOutKNN needs class labels as the target.")
        labels = as_class_target(target)
        if x.shape[0] != labels.shape[0]:
            raise ValueError(f"Got {x.shape[0]} embeddings and {labels.shape[0]} labels.")
        n = x.shape[0]
        if n < 2:
            raise ValueError("LeaveOneOutKNN needs at least 2 rows (a row has no neighbour).")
        x = F.normalize(x, dim=1)
        logits = x @ x.T / self.temperature
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        # -inf never wins a top-k over finite values: the row itself is left out.
        top, index = logits.masked_fill(eye, float("-inf")).topk(min(self.k, n - 1), dim=1)
        pos, _ = label_masks(labels)
        same = pos.gather(1, index)
        denominator = torch.logsumexp(top, dim=1)
        # A finite mask value keeps the logsumexp gradient finite on rows without positives.
        numerator = torch.logsumexp(top.masked_fill(~same, neg_inf(top)), dim=1)
        has_positive = same.any(dim=1)
        # Rows without a same-label neighbour get 0 (their log-ratio would be -inf).
        return torch.where(has_positive, denominator - numerator, torch.zeros_like(denominator))

    def extra_repr(self) -> str:
        return f"k={self.k}, temperature={self.temperature}, reduction={self.reduction!r}"
