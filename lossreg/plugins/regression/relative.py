"""Relative and logarithmic point losses: mean absolute percentage and squared log error."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lossreg import LossModule, as_float_target

from ._private import log_error, per_row

__all__ = ["AbsolutePercentageError", "SquaredLogError"]

#: scikit-learn's floor for |y| in mean_absolute_percentage_error.
FLOAT64_EPS = float(np.finfo(np.float64).eps)


class AbsolutePercentageError(LossModule):
    r"""Absolute percentage error, :math:`|y - \hat y| / \max(|y|, \epsilon)` per element.

    .. math::

        \ell_i = \mathrm{mean}_k\, |y_{ik} - \hat y_{ik}| / \max(|y_{ik}|, \epsilon)

    A fraction, not a percentage (as scikit-learn returns it). Predictions and float targets
    of shape (N,) or (N, K).

    Parameters
    ----------
    eps : float in (0, inf), default=2.220446049250313e-16
        Floor of :math:`|y|`: float64 machine epsilon, as in
        ``sklearn.metrics.mean_absolute_percentage_error``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Explodes for targets near 0 (a row with :math:`y = 0` weighs :math:`1/\epsilon`) and is
    biased toward under-prediction; meant for strictly positive targets away from 0.

    References
    ----------
    A. Jadon, A. Patil, S. Jadon. "A Comprehensive Survey of Regression Based Loss Functions
    for Time Series Forecasting." arXiv:2211.02989.

    Examples
    --------
    >>> import torch
    >>> loss = AbsolutePercentageError(reduction="none")
    >>> out = loss(torch.tensor([1.0, 1.5, 2.0, 6.0]), torch.tensor([1.0, 1.0, 4.0, 4.0]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.0, 0.5, 0.5, 0.5]
    """

    def __init__(self, *, eps: float = FLOAT64_EPS, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.eps = eps

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        target = as_float_target(target, input)
        return per_row((target - input).abs() / target.abs().clamp_min(self.eps))

    def extra_repr(self) -> str:
        return f"eps={self.eps!r}, reduction={self.reduction!r}"


class SquaredLogError(LossModule):
    r"""Squared logarithmic error, :math:`(\log(1+y) - \log(1+\hat y))^2` per element.

    .. math::

        \ell_i = \mathrm{mean}_k\, \big(\log(1+y_{ik}) - \log(1+\hat y_{ik})\big)^2

    For non-negative, right-skewed targets: errors count relative to the size of the target.
    Predictions and float targets of shape (N,) or (N, K). Targets must exceed :math:`-1` (a
    ValueError says which value does not); predictions are clamped at
    :math:`-1 + \epsilon` (machine epsilon of the dtype) so that the logarithm stays finite —
    prefer an output that cannot reach :math:`-1` (e.g. softplus) for training.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Computed with ``log1p``. Equals ``sklearn.metrics.mean_squared_log_error`` on valid
    inputs.

    References
    ----------
    A. Jadon, A. Patil, S. Jadon. "A Comprehensive Survey of Regression Based Loss Functions
    for Time Series Forecasting." arXiv:2211.02989.

    Examples
    --------
    >>> import torch
    >>> out = SquaredLogError(reduction="none")(torch.tensor([0.0, 1.0, 3.0, 7.0]), torch.ones(4))
    >>> [round(v, 4) for v in out.tolist()]
    [0.4805, 0.0, 0.4805, 1.9218]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return per_row(log_error(input, as_float_target(target, input)).square())

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
