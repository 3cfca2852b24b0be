"""Softmax focal loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import LossModule, as_class_target

from ._weights import class_weight_buffer, select_class_weight


class Focal(LossModule):
    r"""Softmax focal loss: cross-entropy down-weighted on well-classified rows.

    .. math::

        \ell_i = -\alpha_{y_i} (1 - p_{t})^{\gamma} \log p_{t},
        \qquad p_t = \mathrm{softmax}(z_i)_{y_i}

    :math:`\log p_t` comes from ``log_softmax`` and :math:`1-p_t` from ``-expm1(log p_t)``,
    so nothing underflows. At :math:`\gamma = 0` and ``alpha=None`` this is exactly
    ``cross_entropy``. For :math:`0 < \gamma < 1` the factor's derivative is unbounded at
    :math:`p_t \to 1`, so :math:`1-p_t` is clamped at 1e-12 (only for :math:`\gamma > 0`).

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    gamma : float in [0, inf), default=2.0
        Focusing parameter; the paper uses 2 (useful range [0, 5]).
    alpha : sequence of C floats >= 0, or None, default=None
        Per-class weights :math:`\alpha_c`; ``None`` weighs every class 1.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Some implementations write :math:`(1-e^{-\mathrm{CE}})^\gamma \mathrm{CE}`; that equals this
    form only without class weights folded into the inner CE. Focal probabilities tend to be
    under-confident; calibrate post hoc if probabilities matter.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár. "Focal Loss for Dense Object
    Detection." ICCV 2017, arXiv:1708.02002.

    Examples
    --------
    >>> import torch
    >>> loss = Focal(gamma=2.0, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> loss(logits, torch.tensor([0, 1, 0, 1]))
    tensor([0.0018, 0.0018, 0.1733, 0.1733])
    """

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        alpha: Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = gamma
        self.alpha = alpha
        self.register_buffer("alpha_", class_weight_buffer(alpha))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        log_pt = input.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
        loss = -log_pt
        if self.gamma != 0:
            one_minus_pt = (-torch.expm1(log_pt)).clamp_min(1e-12)
            loss = one_minus_pt.pow(self.gamma) * loss
        if self.alpha_ is not None:
            loss = select_class_weight(self.alpha_, labels, input, "alpha") * loss
        return loss

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, reduction={self.reduction!r}"
