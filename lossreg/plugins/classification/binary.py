"""Sigmoid losses for binary and multilabel targets: binary cross-entropy and binary focal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_float_target

from ._private import per_row as _per_row
from ._weights import check_length, class_weight_buffer


class BinaryCrossEntropy(LossModule):
    r"""Binary cross-entropy on logits (the logistic loss).

    .. math::

        \ell = w_+\, y\, \mathrm{softplus}(-f) + (1-y)\, \mathrm{softplus}(f)
             = -[w_+\, y \log\sigma(f) + (1-y)\log(1-\sigma(f))]

    computed with softplus, never :math:`\log\sigma`. The logit has shape (N,) or (N, 1) for
    a binary target, (N, L) for L labels; targets in {0, 1} have the same shape. A row's value
    is the mean over its labels, so ``"mean"`` equals ``torch.nn.BCEWithLogitsLoss``.

    Parameters
    ----------
    pos_weight : sequence of L floats >= 0, or None, default=None
        Weight :math:`w_+` of the positive term, per label.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    On separable data the loss tends to 0 while the weights diverge; the training loss is
    then a poor early-stopping signal.

    References
    ----------
    J. Terven, D.-M. Cordova-Esparza, A. Ramirez-Pedraza, E. A. Chavez-Urbiola,
    J. A. Romero-Gonzalez. "Loss Functions and Metrics in Deep Learning." arXiv:2307.02694.

    Examples
    --------
    >>> import torch
    >>> loss = BinaryCrossEntropy(reduction="none")
    >>> loss(torch.tensor([2.0, -2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    tensor([0.1269, 0.1269, 0.6931, 1.3133])
    """

    def __init__(
        self, *, pos_weight: Sequence[float] | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.pos_weight = pos_weight
        self.register_buffer("pos_weight_", class_weight_buffer(pos_weight))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return _per_row(self._elements(input, target, "none"))

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        # Every row has the same number of labels: the mean of the row means is the mean of
        # all elements, which torch's kernel reduces in place.
        return self._elements(input, target, "mean")

    def _elements(self, input: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
        y = as_float_target(target, input)
        pos_weight = self.pos_weight_
        if pos_weight is not None:
            width = 1 if input.ndim == 1 else input.shape[-1]
            check_length(pos_weight, width, "pos_weight")
            pos_weight = pos_weight.to(input.dtype)
        # torch's fused, softplus-stable kernel; the reference tests compare it with
        # scikit-learn's log_loss.
        return F.binary_cross_entropy_with_logits(
            input, y, pos_weight=pos_weight, reduction=reduction
        )

    def extra_repr(self) -> str:
        return f"pos_weight={self.pos_weight}, reduction={self.reduction!r}"


class BinaryFocal(LossModule):
    r"""Sigmoid focal loss for binary and multilabel targets.

    .. math::

        \ell = -\alpha_t (1-p_t)^\gamma \log p_t, \qquad
        \log p_t = -\mathrm{softplus}(-y^\pm f), \qquad
        \alpha_t = \alpha y + (1-\alpha)(1-y)

    with :math:`y^\pm = 2y - 1`. Shapes as :class:`BinaryCrossEntropy`; a row's value is the
    mean over its labels. ``alpha=None`` drops the :math:`\alpha_t` factor; with it and
    :math:`\gamma=0` the loss is ``bce``.

    Parameters
    ----------
    gamma : float in [0, inf), default=2.0
        Focusing parameter (useful range [0, 5]).
    alpha : float in [0, 1] or None, default=0.25
        Weight of the positive class. 0.25 down-weights positives: counter-intuitive with rare
        positives, but the published default.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Matches ``torchvision.ops.sigmoid_focal_loss``, which computes :math:`p_t` from
    :math:`\sigma(f)` instead of the log-space form used here.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár. "Focal Loss for Dense Object
    Detection." ICCV 2017, arXiv:1708.02002.

    Examples
    --------
    >>> import torch
    >>> loss = BinaryFocal(reduction="none")
    >>> values = loss(torch.tensor([2.0, -2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0005, 0.0014, 0.0433, 0.5264]
    """

    def __init__(
        self, *, gamma: float = 2.0, alpha: float | None = 0.25, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = gamma
        self.alpha = alpha

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        log_pt = -F.softplus(-(2 * y - 1) * input)
        loss = -log_pt
        if self.gamma != 0:
            loss = (-torch.expm1(log_pt)).clamp_min(1e-12).pow(self.gamma) * loss
        if self.alpha is not None:
            loss = (self.alpha * y + (1 - self.alpha) * (1 - y)) * loss
        return _per_row(loss)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, reduction={self.reduction!r}"
