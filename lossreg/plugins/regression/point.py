"""Point regression losses: squared, absolute and Huber error."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_float_target

from ._private import per_row as _per_row


class SquaredError(LossModule):
    r"""Squared error, :math:`\ell_i = \mathrm{mean}_k (y_{ik} - \hat y_{ik})^2`.

    Predictions and targets have shape (N,) or (N, K); a row's value is the mean over its
    K outputs. Sensitive to outliers and heavy tails.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    References
    ----------
    A. Jadon, A. Patil, S. Jadon. "A Comprehensive Survey of Regression Based Loss Functions
    for Time Series Forecasting." arXiv:2211.02989.

    Examples
    --------
    >>> import torch
    >>> SquaredError(reduction="none")(torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.zeros(4))
    tensor([0., 1., 4., 9.])
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        # torch's fused elementwise kernel: one op forward and backward instead of a chain.
        return _per_row(F.mse_loss(input, as_float_target(target, input), reduction="none"))

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        # Rows have equal widths: the mean of row means is the mean of all elements.
        return F.mse_loss(input, as_float_target(target, input))

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class AbsoluteError(LossModule):
    r"""Absolute error, :math:`\ell_i = \mathrm{mean}_k |y_{ik} - \hat y_{ik}|`.

    Predicts the conditional median. The gradient has constant magnitude (0 at a zero
    residual), so convergence with a fixed learning rate is slow at the end.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    References
    ----------
    A. Jadon, A. Patil, S. Jadon. "A Comprehensive Survey of Regression Based Loss Functions
    for Time Series Forecasting." arXiv:2211.02989.

    Examples
    --------
    >>> import torch
    >>> AbsoluteError(reduction="none")(torch.tensor([0.0, 1.0, 2.0, -3.0]), torch.zeros(4))
    tensor([0., 1., 2., 3.])
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return _per_row(F.l1_loss(input, as_float_target(target, input), reduction="none"))

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        return F.l1_loss(input, as_float_target(target, input))

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class Huber(LossModule):
    r"""Huber loss: quadratic near zero, linear in the tails.

    .. math::

        h_\delta(e) = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
                      \delta (|e| - \tfrac12 \delta) & |e| > \delta \end{cases}

    with residual :math:`e = y - \hat y`; a row's value is the mean over its outputs. Equal to
    ``torch.nn.HuberLoss(delta=δ)``; ``torch.nn.SmoothL1Loss(beta)`` is :math:`h_\beta/\beta`,
    a different scale. :math:`\delta` is in target units, so scale the target.

    Parameters
    ----------
    delta : float in (0, inf), default=1.0
        Where the loss turns linear (useful range 0.1 to 10).
    reduction : {"mean", "sum", "none"}, default="mean"

    References
    ----------
    P. J. Huber. "Robust Estimation of a Location Parameter." The Annals of Mathematical
    Statistics 35(1), 1964, doi:10.1214/aoms/1177703732.

    Examples
    --------
    >>> import torch
    >>> Huber(delta=1.0, reduction="none")(torch.tensor([0.0, 0.5, 2.0, -3.0]), torch.zeros(4))
    tensor([0.0000, 0.1250, 1.5000, 2.5000])
    """

    def __init__(self, *, delta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        # torch's fused kernel computes exactly h_delta (HuberLoss, not SmoothL1Loss); the
        # reference tests check it against a float64 loop of the piecewise formula.
        target = as_float_target(target, input)
        return _per_row(F.huber_loss(input, target, reduction="none", delta=self.delta))

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        return F.huber_loss(input, as_float_target(target, input), delta=self.delta)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, reduction={self.reduction!r}"
