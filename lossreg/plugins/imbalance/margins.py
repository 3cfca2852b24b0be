"""Training-only logit margins and adjustments: LDAM, LDAM-DRW, vector scaling, logit adjustment.

The margins apply inside the loss only; predictions use the softmax (or sigmoid) of the raw
module output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target, as_float_target

from ._private import (
    counts_buffer,
    effective_number_weights,
    ldam_margins,
    one_hot_like,
    reduce_weighted,
)

__all__ = ["LDAM", "LDAMDRW", "LDAMMultilabel", "LogitAdjusted", "VectorScaling"]


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return -logits.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)


class LDAM(LossModule):
    r"""Label-distribution-aware margin loss.

    .. math::

        \Delta_c = \frac{K}{n_c^{1/4}},\quad \max_c \Delta_c = m_{\max},\qquad
        \ell_i = \mathrm{CE}\bigl(s\,(z_i - \Delta_{y_i} e_{y_i}),\ y_i\bigr)

    Rare classes get larger margins. Input logits (N, C); targets class indices (N,). The
    margin exists only in training: predict with ``softmax(z)``.

    Parameters
    ----------
    max_m : float > 0, default=0.5
        The largest margin (the rarest class's).
    s : float > 0, default=30.0
        Logit scale. 30 assumes cosine logits in [-1, 1] (the official script switches the
        last layer to a normalised linear layer); with raw MLP logits use ``s=1``.
    class_counts : sequence of C ints > 0
        Training rows per class (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against kaidic/LDAM-DRW ``losses.py``: margins ``1/sqrt(sqrt(n))`` rescaled to
    ``max_m``, subtracted from the target logit, then ``cross_entropy(s * output)``: the
    scale multiplies every logit, margined or not. A class with zero training rows raises.

    References
    ----------
    K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma. "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss." NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> import torch
    >>> loss = LDAM(s=1.0, class_counts=[16, 1], reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.1602, 0.2014, 0.8259, 0.9741]
    """

    def __init__(
        self,
        *,
        max_m: float = 0.5,
        s: float = 30.0,
        class_counts: Sequence[int],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.max_m = max_m
        self.s = s
        self.class_counts = class_counts
        self.register_buffer("margin_", ldam_margins(counts_buffer(class_counts), max_m))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        margined = input - one_hot_like(labels, input) * self.margin_.to(input.dtype)
        return _cross_entropy(self.s * margined, labels)

    def extra_repr(self) -> str:
        return f"max_m={self.max_m}, s={self.s}, reduction={self.reduction!r}"


class LDAMDRW(LDAM):
    r"""LDAM with deferred re-weighting (DRW): class weights switch on late in training.

    .. math::

        \ell_i = w_{y_i}\,\mathrm{LDAM}_i, \qquad
        w_c = \begin{cases} 1 & \text{epoch} < \rho\,E_{\max} \\
        C\,\frac{(1-\beta)/(1-\beta^{n_c})}{\sum_k (1-\beta)/(1-\beta^{n_k})} &
        \text{otherwise} \end{cases}

    The estimator calls :meth:`set_epoch` at each epoch start; without it the loss is plain
    LDAM (weights 1). The current weights are the buffer ``class_weight_`` (state, saved
    with ``state_dict``). ``mean`` divides by :math:`\sum_i s_i w_{y_i}`, as the reference's
    ``cross_entropy(weight=...)``.

    Parameters
    ----------
    max_m, s : float
        As :class:`LDAM` (defaults 0.5 and 30).
    beta : float in [0, 1), default=0.9999
        Effective-number parameter of the deferred weights.
    drw_fraction : float in [0, 1], default=0.8
        Re-weighting starts at epoch ``drw_fraction * max_epochs`` (160 of 200 in the paper).
    class_counts : sequence of C ints > 0
        Training rows per class (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against kaidic/LDAM-DRW ``cifar_train.py``: ``idx = epoch // 160``, betas
    ``[0, 0.9999]``, weights ``(1-beta)/(1-beta^n)`` normalised to sum to C, handed to
    ``LDAMLoss(weight=...)``. The switch epoch is a fraction of ``max_epochs`` here so that it
    follows the estimator's epoch budget; the epoch counter is 0-based.

    References
    ----------
    K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma. "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss." NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> import torch
    >>> loss = LDAMDRW(s=1.0, class_counts=[16, 1], reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 0, 1])
    >>> loss.set_epoch(8, 10)
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.0189, 0.3791, 0.0972, 1.8335]
    """

    def __init__(
        self,
        *,
        max_m: float = 0.5,
        s: float = 30.0,
        beta: float = 0.9999,
        drw_fraction: float = 0.8,
        class_counts: Sequence[int],
        reduction: str = "mean",
    ) -> None:
        super().__init__(max_m=max_m, s=s, class_counts=class_counts, reduction=reduction)
        self.beta = beta
        self.drw_fraction = drw_fraction
        counts = counts_buffer(class_counts)
        self.register_buffer("drw_weight_", effective_number_weights(counts, beta))
        self.register_buffer("class_weight_", torch.ones_like(counts))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Switch the deferred class weights on once ``epoch >= drw_fraction * max_epochs``."""
        active = epoch >= self.drw_fraction * max_epochs
        self.class_weight_.copy_(self.drw_weight_ if active else torch.ones_like(self.drw_weight_))

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        labels = as_class_target(target)
        row_weight = self.class_weight_.to(input.dtype)[labels]
        return reduce_weighted(
            self.per_sample_loss(input, labels), row_weight, self.reduction, sample_weight
        )

    def extra_repr(self) -> str:
        return (
            f"max_m={self.max_m}, s={self.s}, beta={self.beta}, "
            f"drw_fraction={self.drw_fraction}, reduction={self.reduction!r}"
        )


class VectorScaling(LossModule):
    r"""Vector-scaling (VS) loss: multiplicative and additive logit adjustment per class.

    .. math::

        z'_{ic} = \Delta_c z_{ic} + \iota_c,\qquad
        \Delta_c = \Bigl(\frac{n_c}{n_{\max}}\Bigr)^{\gamma},\qquad
        \iota_c = \tau \log \pi_c,\qquad
        \ell_i = \mathrm{CE}(z'_i, y_i)

    Input logits (N, C); targets class indices (N,). Training only: predict with
    ``softmax(z)`` of the unadjusted logits. At :math:`\gamma = 0` this is ``logit_adjusted``.

    Parameters
    ----------
    gamma : float >= 0, default=0.3
        Exponent of the multiplicative factor.
    tau : float >= 0, default=1.0
        Strength of the additive (logit-adjustment) term.
    class_counts : sequence of C ints > 0
        Training rows per class (data param); :math:`\pi_c = n_c / \sum_k n_k`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against val-iisc/Saddle-LongTail ``losses.py`` (``VSLoss``): it divides the
    logits by :math:`(n_{\max}/n_c)^\gamma`, the same factor, and adds
    :math:`\tau\log\pi_c`. The optional deferred class weights of the reference are not part
    of this loss (use ``ldam_drw``-style DRW separately).

    References
    ----------
    G. R. Kini, O. Paraskevas, S. Oymak, C. Thrampoulidis. "Label-Imbalanced and
    Group-Sensitive Classification under Overparameterization." NeurIPS 2021,
    arXiv:2103.01550.

    Examples
    --------
    >>> import torch
    >>> loss = VectorScaling(class_counts=[3, 1], reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0441, 0.5376, 0.2245, 1.3863]
    """

    def __init__(
        self,
        *,
        gamma: float = 0.3,
        tau: float = 1.0,
        class_counts: Sequence[int],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = gamma
        self.tau = tau
        self.class_counts = class_counts
        counts = counts_buffer(class_counts)
        self.register_buffer("scale_", (counts / counts.max()).pow(gamma))
        self.register_buffer("offset_", tau * torch.log(counts / counts.sum()))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        adjusted = input * self.scale_.to(input.dtype) + self.offset_.to(input.dtype)
        return _cross_entropy(adjusted, as_class_target(target))

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, tau={self.tau}, reduction={self.reduction!r}"


class LogitAdjusted(LossModule):
    r"""Logit-adjusted cross-entropy (balanced softmax at :math:`\tau = 1`).

    .. math::

        \ell_i = \mathrm{CE}\bigl(z_i + \tau \log \pi,\ y_i\bigr)

    Input logits (N, C); targets class indices (N,). Training only: predict with
    ``softmax(z)`` of the unadjusted logits, which then estimates the balanced posterior.

    Parameters
    ----------
    tau : float >= 0, default=1.0
        Adjustment strength; 0 is plain cross-entropy.
    class_priors : sequence of C floats > 0
        Class frequencies of the training fold (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    At :math:`\tau=1` this equals balanced softmax, :math:`\mathrm{CE}(z + \log n)`, because
    :math:`\log\pi = \log n - \log\sum_k n_k` differs by a constant that softmax ignores
    (checked against jiawei-ren/BalancedMetaSoftmax-Classification, which adds the log class
    counts). The post-hoc variant (train CE, predict :math:`\arg\max(z-\tau\log\pi)`) is not
    this loss. The multilabel per-label form is not registered: a spec has one link.

    References
    ----------
    A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar. "Long-tail learning
    via logit adjustment." ICLR 2021, arXiv:2007.07314.

    Examples
    --------
    >>> import torch
    >>> loss = LogitAdjusted(class_priors=[0.75, 0.25], reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0441, 0.3408, 0.2877, 1.3863]
    """

    def __init__(
        self, *, tau: float = 1.0, class_priors: Sequence[float], reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.tau = tau
        self.class_priors = class_priors
        priors = counts_buffer(class_priors, "class_priors")
        self.register_buffer("offset_", tau * torch.log(priors))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return _cross_entropy(input + self.offset_.to(input.dtype), as_class_target(target))

    def extra_repr(self) -> str:
        return f"tau={self.tau}, reduction={self.reduction!r}"


class LDAMMultilabel(LossModule):
    r"""Multilabel LDAM: a per-label margin subtracted from positive logits, then BCE.

    .. math::

        z'_{ic} = z_{ic} - y_{ic}\,\frac{C_m}{n_c^{1/4}},\qquad
        \ell_i = \frac1L\sum_c \mathrm{bce}(z'_{ic}, y_{ic})

    A label with no positive training row gets the margin :math:`C_m`. Input logits (N, L);
    multi-hot targets (N, L). Training only: predict with ``sigmoid(z)``.

    Parameters
    ----------
    c_m : float >= 0, default=3.0
        Margin scale :math:`C_m` (not max-normalised, unlike ``ldam``).
    class_counts : sequence of L ints >= 0
        Positive training rows per label (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against biplob1ly/TransICD ``code/models.py``: ``class_margin = 1 / n**0.25``
    with zero counts mapped to 1, times ``C = 3.0``, subtracted from the logits of the
    positive labels before ``BCEWithLogitsLoss`` (mean over labels).

    References
    ----------
    B. Biswas, T.-H. Pham, P. Zhang. "TransICD: Transformer Based Code-wise Attention Model
    for Explainable ICD Coding." AIME 2021, arXiv:2104.10652.

    Examples
    --------
    >>> import torch
    >>> loss = LDAMMultilabel(class_counts=[16, 1], reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> [round(v, 4) for v in loss(logits, targets).tolist()]
    [0.5836, 1.0032, 1.5505, 0.6931]
    """

    def __init__(
        self, *, c_m: float = 3.0, class_counts: Sequence[int], reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.c_m = c_m
        self.class_counts = class_counts
        counts = counts_buffer(class_counts, allow_zero=True)
        # An unseen label has no frequency to scale by; the reference gives it the full C_m.
        inverse = torch.where(counts > 0, counts.clamp_min(1).pow(-0.25), torch.ones_like(counts))
        self.register_buffer("margin_", c_m * inverse)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        if input.ndim != 2 or input.shape[1] != self.margin_.numel():
            raise ValueError(
                f"ldam_multilabel expects logits of shape (N, {self.margin_.numel()}), one per "
                f"label in class_counts. Got {tuple(input.shape)}."
            )
        margined = input - y * self.margin_.to(input.dtype)
        bce = y * F.softplus(-margined) + (1 - y) * F.softplus(margined)
        return bce.mean(dim=1)

    def extra_repr(self) -> str:
        return f"c_m={self.c_m}, reduction={self.reduction!r}"
