"""Cross-modal alignment losses with identity labels: the triplet alignment loss (TAL)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import neg_inf, split_views

__all__ = ["TripletAlignment"]


def _direction(scores: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, tau: float, m: float):
    """Per-row TAL term for the anchors on the rows of ``scores``."""
    alpha = (scores.detach() / tau).masked_fill(~pos, neg_inf(scores)).softmax(dim=1)
    alpha = alpha.masked_fill(~pos, 0)  # a row without positives has no positive term
    negatives = torch.logsumexp((scores / tau).masked_fill(~neg, neg_inf(scores)), dim=1)
    return F.relu(m - (alpha * scores).sum(dim=1) + tau * negatives)


class TripletAlignment(LossModule):
    r"""Triplet alignment loss (TAL): a log-sum-exp bound over all negatives, both directions.

    .. math::

        S = \hat e^{a}\,\hat e^{b\top}, \qquad
        \ell_i = \Big[m - \sum_{j\in P_i}\alpha_{ij}S_{ij}
                 + \tau\log\sum_{k\in N_i}e^{S_{ik}/\tau}\Big]_+ + (\text{same on } S^\top)_i

    with :math:`P_i` the columns of the same identity (label), :math:`N_i` the others, and
    :math:`\alpha_{ij}=\mathrm{softmax}_{j\in P_i}(S_{ij}/\tau)` detached. The soft log-sum-exp
    replaces the hardest negative of a triplet loss.

    Input: embeddings (2N, D), rows 0..N-1 one modality (or view) :math:`e^a` and N..2N-1 the
    other :math:`e^b` (pairs i, i+N); or (N, D) for a single view, where the diagonal is left
    out of both sets. Target: identity / class labels (N,). ``reduction="none"`` returns (N,).

    Parameters
    ----------
    tau : float in (0, inf), default=0.02
        Temperature :math:`\tau`.
    margin : float in [0, inf), default=0.1
        :math:`m` (0.1-0.2).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against QinYang79/RDE ``2024-CVPR-RDE/model/objectives.py`` (``compute_TAL_per``,
    with the defaults of ``compute_rbs``): the reference clamps the sum of exponentials at
    1e35 before the log, here a logsumexp; it weights rows by clean-consensus weights and
    **sums** them - pass those weights as ``sample_weight`` with ``reduction="sum"`` to
    reproduce it.

    References
    ----------
    Y. Qin, Y. Chen, D. Peng, X. Peng, J. T. Zhou, P. Hu. "Noisy-Correspondence Learning for
    Text-to-Image Person Re-identification." CVPR 2024.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> loss = TripletAlignment(margin=0.5, reduction="none")
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 1])).tolist()]
    [0.3, 0.3]
    """

    def __init__(self, *, tau: float = 0.02, margin: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.tau = tau
        self.margin = margin

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        x, labels, n_rows = split_views(input, target)
        if labels is None:
            raise ValueError("TripletAlignment needs identity labels as the target.")
        x = F.normalize(x, dim=1)
        labels = labels[:n_rows]
        same = labels.unsqueeze(1) == labels.unsqueeze(0)
        if x.shape[0] == 2 * n_rows:
            scores, pos, neg = x[:n_rows] @ x[n_rows:].T, same, ~same
        else:
            eye = torch.eye(n_rows, dtype=torch.bool, device=x.device)
            scores, pos, neg = x @ x.T, same & ~eye, ~same
        return _direction(scores, pos, neg, self.tau, self.margin) + _direction(
            scores.T, pos.T, neg.T, self.tau, self.margin
        )

    def extra_repr(self) -> str:
        return f"tau={self.tau}, margin={self.margin}, reduction={self.reduction!r}"
