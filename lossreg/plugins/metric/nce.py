"""Softmax contrastive losses on in-batch similarities: SupCon, InfoNCE and CLIP InfoNCE."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import LossModule

from ._private import label_masks, neg_inf, split_views

__all__ = ["ClipInfoNCE", "InfoNCE", "SupCon", "per_original_row"]


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
    The official code (HobbitLong/SupContrast ``losses.py``, read for this) averages over all
    anchors, as here, but also multiplies by ``temperature / base_temperature`` (0.07) - a
    rescaling absent from the paper's formula and the catalogue, so not applied; its default
    temperature is 0.07, the catalogue's 0.1 is kept. Needs an m-per-class sampler, or two
    views per row.

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


class ClipInfoNCE(LossModule):
    r"""CLIP's symmetric InfoNCE between two towers (or two feature groups), learnable temperature.

    .. math::

        S_{ij} = e^{t}\,\hat u_i^\top\hat v_j, \qquad
        \ell_i = \tfrac12\Big[-\log\mathrm{softmax}_j(S_{i\cdot})_i
                 - \log\mathrm{softmax}_j(S_{\cdot i})_i\Big]

    Only cross-view negatives are used (unlike ``info_nce``). The logit scale
    :math:`e^{t}=1/\tau` starts at ``1 / temperature``; :math:`t` is a learnable parameter
    (``logit_scale``) clamped in place to :math:`[0, \log(\text{max\_logit\_scale})]` at each
    call, as OpenCLIP's training loop does after each optimizer step.

    Input: embeddings (2N, D) - rows 0..N-1 are the first tower :math:`u`, rows N..2N-1 the
    second :math:`v` (pairs i, i+N); target: ignored. ``reduction="none"`` returns (N,), so
    "mean" is OpenCLIP's ``ClipLoss``.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.07
        Initial :math:`\tau`.
    max_logit_scale : float in [1, inf), default=100.0
        Upper bound of :math:`1/\tau`.
    learn_temperature : bool, default=True
        Whether ``logit_scale`` is trained (False keeps :math:`\tau` fixed).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against mlfoundations/open_clip ``src/open_clip/loss.py`` (``ClipLoss``: the mean
    of the two cross-entropies) and its ``logit_scale`` initialisation ``log(1/0.07)``.

    References
    ----------
    E. Fini, P. Astolfi, A. Romero-Soriano, J. Verbeek, M. Drozdzal. "Improved baselines for
    vision-language pre-training." TMLR 2023, arXiv:2305.08675.
    A. Radford et al. "Learning Transferable Visual Models From Natural Language
    Supervision." ICML 2021, arXiv:2103.00020.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> loss = ClipInfoNCE(temperature=0.5, reduction="none")
    >>> [round(v, 4) for v in loss(x, None).tolist()]
    [0.286, 0.286]
    """

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        learn_temperature: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature
        self.max_logit_scale = max_logit_scale
        self.learn_temperature = learn_temperature
        scale = torch.tensor(math.log(1 / temperature))
        if learn_temperature:
            self.logit_scale = nn.Parameter(scale)
        else:
            self.register_buffer("logit_scale", scale)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor | None, **extras: Any
    ) -> torch.Tensor:
        if target is not None and input.shape[0] != 2 * target.shape[0]:
            raise ValueError(
                "ClipInfoNCE takes a (2N, D) batch: rows 0..N-1 from one tower, N..2N-1 from "
                f"the other. Got {input.shape[0]} embeddings and {target.shape[0]} targets."
            )
        x, _, n_rows = split_views(input, None)
        with torch.no_grad():
            self.logit_scale.clamp_(0, math.log(self.max_logit_scale))
        u, v = F.normalize(x[:n_rows], dim=1), F.normalize(x[n_rows:], dim=1)
        logits = self.logit_scale.to(x.dtype).exp() * u @ v.T
        diagonal = torch.diagonal(logits)
        rows = torch.logsumexp(logits, dim=1) - diagonal
        cols = torch.logsumexp(logits, dim=0) - diagonal
        return (rows + cols) / 2

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, max_logit_scale={self.max_logit_scale}, "
            f"learn_temperature={self.learn_temperature}, reduction={self.reduction!r}"
        )
