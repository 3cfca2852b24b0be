"""Signal-decay MAE: absolute errors of ordered outputs (horizons) weighted by (l + 1)^(-power)."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_float_target

__all__ = ["SignalDecayMAE"]


class SignalDecayMAE(LossModule):
    r"""Signal-decay-based MAE: near horizons count more than far ones.

    .. math::

        \ell_i = \frac{1}{L\,C}\sum_{l=0}^{L-1}\sum_{c}(l+1)^{-p}\,|\hat y_{ilc}-y_{ilc}|

    Input predictions (N, L) or (N, L, C) with the outputs in horizon order; float targets of
    the same shape. Prediction: identity.

    Parameters
    ----------
    power : float in [0, inf), default=0.5
        Decay exponent :math:`p`; 0 gives plain MAE.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against wxie9/CARD (``exp_long_term_forecasting.py``): it multiplies predictions
    and targets by :math:`\max(1/\sqrt{l+1}, 0)` along the horizon axis and applies
    ``nn.L1Loss``; identical for :math:`p=0.5`. CARD uses the same weighting for validation
    but reports unweighted MSE/MAE at test time; score with a plain metric.

    References
    ----------
    X. Wang, T. Zhou, Q. Wen, J. Gao, B. Ding, R. Jin. "CARD: Channel Aligned Robust Blend
    Transformer for Time Series Forecasting." ICLR 2024, arXiv:2305.12095.

    Examples
    --------
    >>> import torch
    >>> loss = SignalDecayMAE(reduction="none")
    >>> pred = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    >>> out = loss(pred, torch.zeros(4, 3))
    >>> [round(v, 4) for v in out.tolist()]
    [0.7615, 0.0, 0.6667, 0.5774]
    """

    def __init__(self, *, power: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.power = power

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        error = (input - y).abs()
        if error.ndim == 1:
            error = error.unsqueeze(1)
        steps = torch.arange(error.shape[1], dtype=input.dtype, device=input.device)
        weight = (steps + 1).pow(-self.power)
        weight = weight.reshape(1, -1, *([1] * (error.ndim - 2)))
        return (weight * error).reshape(error.shape[0], -1).mean(dim=1)

    def extra_repr(self) -> str:
        return f"power={self.power}, reduction={self.reduction!r}"
