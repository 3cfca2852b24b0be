"""Directional losses for signed targets (returns): the MADL metric and its trainable smoothings."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lossreg import LossModule, as_float_target

__all__ = ["GMADL", "SoftMADL", "madl_score", "make_madl_scorer"]


def madl_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    r"""Mean Absolute Directional Loss (lower is better), a metric for model selection.

    .. math::

        \mathrm{MADL} = \frac1N\sum_i -\mathrm{sign}(R_i\hat R_i)\,|R_i|

    Rows where the predicted direction matches the realised return :math:`R` add :math:`-|R|`
    (a gain), wrong directions add :math:`+|R|`. Its gradient in :math:`\hat R` is zero almost
    everywhere, so it is a selection metric: train with ``gmadl`` or ``soft_madl``. Use
    :func:`make_madl_scorer` in scikit-learn searches (negated: greater is better).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (N,) or (N, K)
        Realised and predicted returns; multi-output arrays are averaged over all entries.
    sample_weight : array-like of shape (N,), optional

    References
    ----------
    J. Michańków, P. Sakowski, R. Ślepaczuk. "Mean Absolute Directional Loss as a New Loss
    Function for Machine Learning Problems in Algorithmic Investment Strategies."
    arXiv:2309.10546, 2023.

    Examples
    --------
    >>> round(madl_score([0.02, -0.01, 0.03, -0.04], [0.5, 0.2, -0.1, -1.0]), 4)
    -0.005
    """
    y = np.asarray(y_true, dtype=np.float64)
    r = np.asarray(y_pred, dtype=np.float64).reshape(y.shape)
    per_row = (-np.sign(y * r) * np.abs(y)).reshape(y.shape[0], -1).mean(axis=1)
    return float(np.average(per_row, weights=sample_weight))


def make_madl_scorer() -> Any:
    """Return a scikit-learn scorer for :func:`madl_score` (negated: greater is better)."""
    from sklearn.metrics import make_scorer

    return make_scorer(madl_score, greater_is_better=False)


class SoftMADL(LossModule):
    r"""Smooth MADL surrogate with a tanh in place of the sign.

    .. math::

        \ell_i = -\tanh(k R_i\hat R_i)\,|R_i|

    Input predictions (N,) or (N, K); float targets of the same shape (per-row mean over
    outputs). Prediction: identity; the traded direction is :math:`\mathrm{sign}(\hat R)`.

    Parameters
    ----------
    k : float in (0, inf), default=5.0
        Sharpness of the tanh; :math:`k\to\infty` recovers MADL.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Not proposed by the MADL paper; the form follows TensAurpheus/capstone ``SoftMADL`` as
    the catalogue records. Saturating in :math:`\hat R`: the prediction scale is not
    identified, so add weight decay (or a small MSE term); expect a worse RMSE than ``mse``.

    References
    ----------
    J. Michańków, P. Sakowski, R. Ślepaczuk. "Mean Absolute Directional Loss as a New Loss
    Function for Machine Learning Problems in Algorithmic Investment Strategies."
    arXiv:2309.10546, 2023.

    Examples
    --------
    >>> import torch
    >>> loss = SoftMADL(reduction="none")
    >>> out = loss(torch.tensor([0.5, 0.2, -0.1, -1.0]), torch.tensor([0.2, -0.1, 0.3, -0.4]))
    >>> [round(v, 4) for v in out.tolist()]
    [-0.0924, 0.01, 0.0447, -0.3856]
    """

    def __init__(self, *, k: float = 5.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.k = k

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        r = as_float_target(target, input)
        loss = -torch.tanh(self.k * r * input) * r.abs()
        return loss.reshape(input.shape[0], -1).mean(dim=1)

    def extra_repr(self) -> str:
        return f"k={self.k}, reduction={self.reduction!r}"


class GMADL(LossModule):
    r"""Generalized Mean Absolute Directional Loss: a sigmoid-smoothed, |R|^b-weighted MADL.

    .. math::

        \ell_i = -\Big[\sigma(a R_i\hat R_i)-\tfrac12\Big]\,|R_i|^{b}

    Input predictions (N,) or (N, K); float targets of the same shape (per-row mean over
    outputs). Prediction: identity; the traded direction is :math:`\mathrm{sign}(\hat R)`.

    Parameters
    ----------
    a : float in (0, inf), default=10.0
        Slope of the sigmoid at 0. It depends on the target scale: about 1-10 on standardised
        targets, :math:`10^2`-:math:`10^3` on raw returns.
    b : float in [0, inf), default=1.0
        Exponent that up-weights large moves (1-5 reported); ``b=1`` weights by :math:`|R|`
        as MADL does.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The formula agrees with the paper's definition (checked on its arXiv abstract page and
    summaries: :math:`-(\frac1{1+e^{-aR\hat R}}-0.5)|R|^b`, averaged). The paper tunes
    :math:`a, b` per asset and frequency and states no universal default; lossreg's defaults
    are for standardised targets and are a lossreg choice. Saturating in :math:`\hat R`: add
    weight decay or a small MSE term.

    References
    ----------
    J. Michańków, P. Sakowski, R. Ślepaczuk. "Generalized Mean Absolute Directional Loss as a
    Solution to Overfitting and High Transaction Costs in Machine Learning Models Used in
    High-Frequency Algorithmic Investment Strategies." arXiv:2412.18405, 2024.

    Examples
    --------
    >>> import torch
    >>> loss = GMADL(reduction="none")
    >>> out = loss(torch.tensor([0.5, 0.2, -0.1, -1.0]), torch.tensor([0.2, -0.1, 0.3, -0.4]))
    >>> [round(v, 4) for v in out.tolist()]
    [-0.0462, 0.005, 0.0223, -0.1928]
    """

    def __init__(self, *, a: float = 10.0, b: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.a = a
        self.b = b

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        r = as_float_target(target, input)
        loss = -(torch.sigmoid(self.a * r * input) - 0.5) * r.abs().pow(self.b)
        return loss.reshape(input.shape[0], -1).mean(dim=1)

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}, reduction={self.reduction!r}"
