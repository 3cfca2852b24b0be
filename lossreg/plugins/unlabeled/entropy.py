"""Entropy objectives on unlabeled rows: entropy minimisation, prior KL, marginal entropy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import LossModule

from ._private import (
    check_batch_reduction,
    check_logits,
    labeled_mask,
    row_weights,
    vector_buffer,
    weighted_mean,
)

__all__ = ["EntropyMinimization", "EntropyPriorKL", "MarginalEntropy", "weighted_entropy"]


def weighted_entropy(input: torch.Tensor, class_weights: torch.Tensor | None) -> torch.Tensor:
    r"""Return :math:`-\sum_c w_c p_{ic}\log p_{ic}` per row of (N, C) logits."""
    log_p = input.log_softmax(dim=1)
    terms = log_p.exp() * log_p
    if class_weights is not None:
        if class_weights.numel() != input.shape[1]:
            raise ValueError(
                f"class_weights has {class_weights.numel()} values but the output has "
                f"{input.shape[1]} classes; pass one weight per class."
            )
        terms = terms * class_weights.to(dtype=input.dtype, device=input.device)
    return -terms.sum(dim=1)


def _batch_mean_log_probs(input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\log\bar p_c` of the weighted batch mean of softmax(input), in log space."""
    log_w = torch.log(weight / weight.sum())
    return torch.logsumexp(input.log_softmax(dim=1) + log_w[:, None], dim=0)


class EntropyMinimization(LossModule):
    r"""Entropy minimisation: the (class-weighted) entropy of each row's prediction.

    .. math::

        \ell_i = -\sum_c w_c\, p_{ic}\log p_{ic}, \qquad p_i = \mathrm{softmax}(z_i)

    Input (N, C) logits; the target is ignored (labels or -1 for unlabeled rows): every row
    counts, labelled or not. Use it in a ``weighted_sum`` with a supervised loss (e.g.
    ``cross_entropy``, which must then skip the -1 rows) or with ``entropy_prior_kl``.

    Parameters
    ----------
    class_weights : sequence of C floats >= 0, or None, default=None
        Per-class weights :math:`w_c`; ``None`` gives plain entropy minimisation.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against ``EntKLProp`` / ``SelfEntropy`` of mathilde-b/SFDA (``losses.py``):
    ``-einsum(p * w, log p) / sum(p)``; :math:`\sum_{i,c}p_{ic}=N`, so it is this per-row
    mean. Computed with ``log_softmax`` instead of ``log(p + 1e-10)``. Alone it collapses to
    one class.

    References
    ----------
    Y. Grandvalet, Y. Bengio. "Semi-supervised Learning by Entropy Minimization." NIPS 2004.
    M. Bateson, H. Kervadec, J. Dolz, H. Lombaert, I. Ben Ayed. "Source-Free Domain
    Adaptation for Image Segmentation." Medical Image Analysis 2022, arXiv:2108.03152.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, -5.0], [-1.0, 1.0]])
    >>> loss = EntropyMinimization(reduction="none")
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, -1, -1, 1])).tolist()]
    [0.3653, 0.6931, 0.0005, 0.3653]
    """

    def __init__(
        self, *, class_weights: Sequence[float] | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.class_weights = class_weights
        self.register_buffer("class_weights_", vector_buffer(class_weights))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        check_logits(input, "entropy_min")
        return weighted_entropy(input, self.class_weights_)

    def extra_repr(self) -> str:
        return f"class_weights={self.class_weights}, reduction={self.reduction!r}"


class EntropyPriorKL(nn.Module):
    r"""Entropy minimisation plus a KL term pulling the batch's class proportions to a prior.

    .. math::

        L = \lambda_{se}\,\mathrm{mean}_i\Big(-\sum_c w_c p_{ic}\log p_{ic}\Big)
            + \lambda_{prior}\,\mathrm{KL}(\bar p\,\Vert\,\tau),
        \qquad \bar p = \mathrm{mean}_i\, p_i

    Input (N, C) logits; the target is ignored (every row counts, -1 or not). :math:`\tau` is
    ``prior`` if given, else the data param ``class_priors`` (the estimator must compute it
    from the labelled training rows only).

    Parameters
    ----------
    lambda_se : float in [0, inf), default=1.0
        Weight of the entropy term.
    lambda_prior : float in [0, inf), default=1.0
        Weight of the prior KL term.
    class_weights : sequence of C floats >= 0, or None, default=None
        Per-class weights of the entropy term.
    prior : sequence of C floats in [0, 1], or None, default=None
        The class-ratio prior :math:`\tau`; overrides ``class_priors``.
    class_priors : sequence of C floats
        Class frequencies of the training fold (data param).
    reduction : {"mean", "sum"}, default="mean"
        Batch-level (:math:`\bar p`): ``"none"`` is refused; ``"sum"`` multiplies by the
        total weight.

    Notes
    -----
    Checked against ``EntKLProp`` of mathilde-b/SFDA: the KL direction is
    :math:`\sum_c \bar p_c(\log\bar p_c - \log\tau_c)` (predicted proportion first),
    :math:`\lambda_{se}=\lambda_{prior}=1` in its defaults, and the reference adds
    :math:`10^{-10}` inside the logarithm of :math:`\tau`, done here too so a class with
    prior 0 gives a large finite penalty. :math:`\log\bar p` is computed with
    ``logsumexp``. The SFDA segmentation loss averages proportions per image; here the
    "image" is the batch, so batches must be large enough for :math:`\bar p` to mean
    something. Sample weights weight both the entropy mean and :math:`\bar p`.

    References
    ----------
    M. Bateson, H. Kervadec, J. Dolz, H. Lombaert, I. Ben Ayed. "Source-Free Domain
    Adaptation for Image Segmentation." Medical Image Analysis 2022, arXiv:2108.03152.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, -5.0], [-1.0, 1.0]])
    >>> loss = EntropyPriorKL(class_priors=[0.5, 0.5])
    >>> round(loss(logits, torch.tensor([0, -1, -1, 1])).item(), 4)
    0.3877
    """

    def __init__(
        self,
        *,
        lambda_se: float = 1.0,
        lambda_prior: float = 1.0,
        class_weights: Sequence[float] | None = None,
        prior: Sequence[float] | None = None,
        class_priors: Sequence[float],
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.lambda_se = lambda_se
        self.lambda_prior = lambda_prior
        self.class_weights = class_weights
        self.prior = prior
        self.class_priors = class_priors
        self.reduction = check_batch_reduction(reduction, "entropy_prior_kl")
        self.register_buffer("class_weights_", vector_buffer(class_weights))
        self.register_buffer("prior_", vector_buffer(prior if prior is not None else class_priors))

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input, "entropy_prior_kl")
        weight = row_weights(sample_weight, input.shape[0], input)
        if not bool((weight > 0).any()):
            raise ValueError("entropy_prior_kl needs at least one row of positive weight.")
        if self.prior_.numel() != input.shape[1]:
            raise ValueError(
                f"The class prior has {self.prior_.numel()} values but the output has "
                f"{input.shape[1]} classes."
            )
        entropy = weighted_mean(weighted_entropy(input, self.class_weights_), weight)
        log_mean_p = _batch_mean_log_probs(input, weight)
        # 1e-10 as in the reference: a class with prior 0 costs a large, finite penalty.
        log_prior = torch.log(self.prior_.to(dtype=input.dtype, device=input.device) + 1e-10)
        kl = (log_mean_p.exp() * (log_mean_p - log_prior)).sum()
        value = self.lambda_se * entropy + self.lambda_prior * kl
        return value * weight.sum() if self.reduction == "sum" else value

    def extra_repr(self) -> str:
        return (
            f"lambda_se={self.lambda_se}, lambda_prior={self.lambda_prior}, "
            f"prior={self.prior}, reduction={self.reduction!r}"
        )


class MarginalEntropy(nn.Module):
    r"""Cross-entropy on labelled rows plus the negative entropy of the batch's mean prediction.

    .. math::

        L = \mathrm{mean}_{i: y_i \ne -1}\big(-\log p_{i y_i}\big)
            + \lambda \sum_c \bar p_c \log \bar p_c,
        \qquad \bar p = \mathrm{mean}_{\text{all } i}\, p_i

    The second term is :math:`-H(\bar p)`: minimising it spreads the batch's predictions over
    the classes (a diversity term against collapse). Input (N, C) logits; target: class
    indices, -1 for unlabeled rows (pseudo-labels may be passed as labels). The supervised
    term uses the labelled rows only (0 when the batch has none); the marginal term all rows.

    Parameters
    ----------
    lam : float in [0, inf), default=0.3
        Weight :math:`\lambda` of the marginal-entropy term (0.3 in the authors' code).
    reduction : {"mean", "sum"}, default="mean"
        Batch-level: ``"none"`` is refused; ``"sum"`` multiplies by the total weight.

    Notes
    -----
    Checked against the authors' code (wlb12345/TFUP): ``marginal_loss`` is
    :math:`\sum_c\bar p_c\log(\bar p_c+10^{-6})` and the training loss is
    ``ce_loss + 0.3 * mg_loss``, so :math:`\lambda = 0.3` (the catalogue assumed 1). There
    the CE uses pseudo-labels of a second, weak view with confidence above 0.9 (two views:
    an estimator feature); here labelled rows (or pseudo-labels the caller puts in ``y``)
    play that part. :math:`\log\bar p` comes from ``logsumexp`` without the
    :math:`10^{-6}`. Pushes the class marginals toward uniform, which hurts on imbalanced
    data; ``entropy_prior_kl`` is the prior-aware alternative. Sample weights weight both
    terms (and :math:`\bar p`).

    References
    ----------
    S. Long, L. Wang, Z. Zhao, Z. Tan, Y. Wu, S. Wang, J. Wang. "Training-Free Unsupervised
    Prompt for Vision-Language Models." arXiv:2404.16339, 2024.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, -5.0], [-1.0, 1.0]])
    >>> loss = MarginalEntropy()
    >>> round(loss(logits, torch.tensor([0, -1, -1, 1])).item(), 4)
    -0.0715
    """

    def __init__(self, *, lam: float = 0.3, reduction: str = "mean") -> None:
        super().__init__()
        self.lam = lam
        self.reduction = check_batch_reduction(reduction, "marginal_entropy")

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input, "marginal_entropy")
        weight = row_weights(sample_weight, input.shape[0], input)
        if not bool((weight > 0).any()):
            raise ValueError("marginal_entropy needs at least one row of positive weight.")
        labeled = labeled_mask(target)
        labels = torch.where(labeled, target.reshape(-1).long(), 0)
        nll = F.cross_entropy(input, labels, reduction="none")
        supervised = weighted_mean(nll, weight * labeled.to(input.dtype))
        log_mean_p = _batch_mean_log_probs(input, weight)
        neg_entropy = (log_mean_p.exp() * log_mean_p).sum()
        value = supervised + self.lam * neg_entropy
        return value * weight.sum() if self.reduction == "sum" else value

    def extra_repr(self) -> str:
        return f"lam={self.lam}, reduction={self.reduction!r}"
