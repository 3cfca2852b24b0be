"""Softmax contrastive losses on in-batch similarities: SupCon and two-view InfoNCE."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import label_masks, neg_inf, split_views

__all__ = ["InfoNCE", "SupCon", "per_original_row"]


def per_original_row(per_anchor: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Average the anchors of the two views of each original row ((2N,) -> (N,))."""
    if per_anchor.shape[0] == n_rows:
        return per_anchor
    return per_anchor.reshape(2, n_rows).mean(dim=0)


def _log_softmax_off_diagonal(logits: torch.Tensor) -> torch.Tensor:
    """Row-wise log-softmax whose denominator leaves out the diagonal (the anchor itself)."""
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    return logits - torch.logsumexp(logits.masked_fill(eye, neg_inf(logits)), dim=1, keepdim=True)


class SupCon(LossModule):
    r"""Supervised contrastive loss (SupCon, the :math:`\mathcal L^{sup}_{out}` form).

    .. math::

        \ell_i = -\frac{1}{|P(i)|}\sum_{p\in P(i)}
                 \log\frac{e^{s_{ip}}}{\sum_{a\ne i}e^{s_{ia}}}, \qquad
        s_{ij} = \hat f_i^\top\hat f_j/\tau

    with :math:`P(i)` the other rows of the same label. Anchors without positives have loss 0
    and count in the mean, as in the official code (which averages over all anchors).

    Input: embeddings (N, D), or (2N, D) holding two views (rows i and i+N are views of row i,
    the labels (N,) are shared); target: int labels (N,). ``reduction="none"`` returns (N,):
    one value per original row, the mean of its two views' anchor losses, so "mean" equals the
    mean over all 2N anchors.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.1
        :math:`\tau` (0.07-0.1 in the paper).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Matches PML's ``SupConLoss`` per anchor (PML then averages over non-zero anchors only).
    Needs an m-per-class sampler, or two views per row.

    References
    ----------
    P. Khosla, P. Teterwak, C. Wang, A. Sarna, Y. Tian, P. Isola, A. Maschinot, C. Liu,
    D. Krishnan. "Supervised Contrastive Learning." NeurIPS 2020, arXiv:2004.11362.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> loss = SupCon(reduction="none")
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.0003, 0.1272, 0.1272, 0.0003]
    """

    def __init__(self, *, temperature: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        x, labels, n_rows = split_views(input, target)
        if labels is None:
            raise ValueError("SupCon needs class labels as the target.")
        x = F.normalize(x, dim=1)
        log_prob = _log_softmax_off_diagonal(x @ x.T / self.temperature)
        pos, _ = label_masks(labels)
        n_pos = pos.sum(dim=1)
        total = torch.where(pos, log_prob, log_prob.new_zeros(())).sum(dim=1)
        per_anchor = -total / n_pos.clamp_min(1)  # anchors without positives: 0 / 1 = 0
        return per_original_row(per_anchor, n_rows)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class InfoNCE(LossModule):
    r"""InfoNCE / NT-Xent: the self-supervised two-view contrastive loss of SimCLR.

    .. math::

        \ell_i = -\log\frac{e^{s_{ii'}/\tau}}{\sum_{k\ne i}e^{s_{ik}/\tau}}, \qquad
        s_{ij} = \hat f_i^\top\hat f_j

    over the 2N anchors of a (2N, D) batch, where rows i and i' = i+N (mod 2N) are two views of
    the same original row; the denominator runs over the 2N-1 other embeddings.

    Input: embeddings (2N, D) - the estimator stacks the network's outputs on two augmented
    copies of the batch; target: ignored (labels (N,) or None). ``reduction="none"`` returns
    (N,): per original row, the mean of its two anchors' losses.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.5
        :math:`\tau` (SimCLR's CIFAR setting; PML defaults to 0.07). Small values focus on
        hard negatives.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Equals PML's ``NTXentLoss`` with labels ``cat(arange(N), arange(N))`` (one positive pair
    per anchor). Large batches matter; the two views come from an augmentation hook of the
    estimator (feature corruption, dropout noise ...).

    References
    ----------
    T. Chen, S. Kornblith, M. Norouzi, G. Hinton. "A Simple Framework for Contrastive
    Learning of Visual Representations." ICML 2020, arXiv:2002.05709.
    A. van den Oord, Y. Li, O. Vinyals. "Representation Learning with Contrastive Predictive
    Coding." arXiv:1807.03748.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> loss = InfoNCE(reduction="none")
    >>> [round(v, 4) for v in loss(x, None).tolist()]
    [0.4302, 0.4302]
    """

    def __init__(self, *, temperature: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor | None, **extras: Any
    ) -> torch.Tensor:
        if target is not None and input.shape[0] != 2 * target.shape[0]:
            raise ValueError(
                "InfoNCE takes a (2N, D) batch of two views (rows i and i+N are views of row i) "
                f"and at most N targets. Got {input.shape[0]} embeddings and "
                f"{target.shape[0]} targets."
            )
        x, _, n_rows = split_views(input, None)
        x = F.normalize(x, dim=1)
        log_prob = _log_softmax_off_diagonal(x @ x.T / self.temperature)
        partner = torch.arange(2 * n_rows, device=x.device).roll(n_rows)
        per_anchor = -log_prob.gather(1, partner.unsqueeze(1)).squeeze(1)
        return per_original_row(per_anchor, n_rows)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"
