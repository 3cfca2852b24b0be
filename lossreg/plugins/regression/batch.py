"""Batch-level regression losses: RMSE, RMSLE, RAE, RSE, NRMSE and RRMSE (no per-row form)."""

from __future__ import annotations

import torch

from ._private import BatchLoss, log_error, weighted_mean

__all__ = [
    "NormalizedRootMeanSquaredError",
    "RelativeAbsoluteError",
    "RelativeRootMeanSquaredError",
    "RelativeSquaredError",
    "RootMeanSquaredError",
    "RootMeanSquaredLogError",
]

_SURVEY = """
    A. Jadon, A. Patil, S. Jadon. "A Comprehensive Survey of Regression Based Loss Functions
    for Time Series Forecasting." arXiv:2211.02989.
"""


def _root(mean_square: torch.Tensor) -> torch.Tensor:
    # sqrt has an infinite derivative at 0 (a perfect fit); the smallest normal number under
    # the root keeps the gradient finite and changes no value above it.
    return (mean_square + torch.finfo(mean_square.dtype).tiny).sqrt()


def _guard(denominator: torch.Tensor) -> torch.Tensor:
    # A zero normaliser (constant predictions at initialisation, all-zero targets) would give
    # inf or nan; flooring it at the smallest normal number keeps the loss finite.
    return denominator.clamp_min(torch.finfo(denominator.dtype).tiny)


def _weighted_center(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Subtract each output's weighted mean over the rows."""
    mean = (values * weight[:, None]).sum(dim=0) / weight.sum()
    return values - mean


class RootMeanSquaredError(BatchLoss):
    __doc__ = rf"""Root mean squared error over the batch.

    .. math::

        L = \sqrt{{\frac{{\sum_i w_i \sum_k (y_{{ik}} - \hat y_{{ik}})^2}}{{K \sum_i w_i}}}}

    Predictions and float targets of shape (N,) or (N, K); sample weights :math:`w_i` count
    as row frequencies. Batch-level: ``reduction`` is ``"mean"`` (the statistic) or ``"sum"``
    (times the total weight); ``"none"`` raises.

    Parameters
    ----------
    reduction : {{"mean", "sum"}}, default="mean"

    Notes
    -----
    The minimiser is that of ``mse`` but the gradient is rescaled by :math:`1/(2L)` per
    batch. The smallest normal float is added under the root so that a perfect fit has a
    finite gradient. Equals ``sklearn.metrics.root_mean_squared_error`` (single output, or
    the flattened multi-output arrays).

    References
    ----------
    {_SURVEY}
    Examples
    --------
    >>> import torch
    >>> loss = RootMeanSquaredError()
    >>> round(loss(torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.zeros(4)).item(), 4)
    1.8708
    """

    def batch_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        return _root(weighted_mean((target - pred).square(), weight))


class RootMeanSquaredLogError(BatchLoss):
    __doc__ = rf"""Root mean squared logarithmic error over the batch.

    .. math::

        L = \sqrt{{\mathrm{{mean}}_{{i,k}}
                  \big(\log(1 + y_{{ik}}) - \log(1 + \hat y_{{ik}})\big)^2}}

    Targets must exceed :math:`-1` (a ValueError names the offending value); predictions are
    clamped at :math:`-1 + \epsilon` (machine epsilon of the dtype) so that the logarithm
    stays finite: prefer an output that cannot reach :math:`-1` (softplus) for training.
    Sample weights count as row frequencies. Batch-level: ``"mean"`` or ``"sum"``.

    Parameters
    ----------
    reduction : {{"mean", "sum"}}, default="mean"

    Notes
    -----
    The survey's TensorFlow reference clamps predictions **and targets** at machine epsilon
    (so at :math:`\ge 0`), not at :math:`> -1`; on non-negative data both agree. We follow
    ``sklearn.metrics.root_mean_squared_log_error``, which refuses targets :math:`\le -1`.

    References
    ----------
    {_SURVEY}
    Examples
    --------
    >>> import torch
    >>> loss = RootMeanSquaredLogError()
    >>> round(loss(torch.tensor([0.0, 1.0, 3.0, 7.0]), torch.ones(4)).item(), 4)
    0.8489
    """

    def batch_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        return _root(weighted_mean(log_error(pred, target).square(), weight))


class RelativeAbsoluteError(BatchLoss):
    __doc__ = rf"""Relative absolute error: total absolute error over that of the batch mean.

    .. math::

        L = \frac{{\sum_{{i,k}} w_i |y_{{ik}} - \hat y_{{ik}}|}}
                 {{\sum_{{i,k}} w_i |y_{{ik}} - \bar y_k| + \epsilon}}

    with :math:`\bar y_k` the (weighted) batch mean of output k. Predictions and float
    targets of shape (N,) or (N, K). Needs at least 2 rows; a batch with constant targets has
    a zero denominator (hence ``eps``). Batch-level: ``"mean"`` or ``"sum"``.

    Parameters
    ----------
    eps : float in [0, inf), default=1e-8
        Added to the denominator.
    reduction : {{"mean", "sum"}}, default="mean"

    Notes
    -----
    Matches the survey's TensorFlow ``RelativeAbsoluteError`` (single output, ``eps=0``).
    The normaliser depends on the batch composition: values are not comparable across
    batch sizes.

    References
    ----------
    {_SURVEY}
    Examples
    --------
    >>> import torch
    >>> pred, target = torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0, 3.0, 3.0])
    >>> round(RelativeAbsoluteError()(pred, target).item(), 4)
    0.5
    """

    min_rows = 2

    def __init__(self, *, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.eps = eps

    def batch_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        numerator = ((target - pred).abs() * weight[:, None]).sum()
        denominator = (_weighted_center(target, weight).abs() * weight[:, None]).sum()
        return numerator / _guard(denominator + self.eps)


class RelativeSquaredError(BatchLoss):
    __doc__ = rf"""Relative squared error, :math:`1 - R^2` on the batch.

    .. math::

        L = \frac{{\sum_{{i,k}} w_i (y_{{ik}} - \hat y_{{ik}})^2}}
                 {{\sum_{{i,k}} w_i (y_{{ik}} - \bar y_k)^2 + \epsilon}}

    with :math:`\bar y_k` the (weighted) batch mean of output k; over several outputs this is
    scikit-learn's ``1 - r2_score(..., multioutput="variance_weighted")``. Needs at least 2
    rows. Batch-level: ``"mean"`` or ``"sum"``.

    Parameters
    ----------
    eps : float in [0, inf), default=1e-8
        Added to the denominator.
    reduction : {{"mean", "sum"}}, default="mean"

    Notes
    -----
    The survey's TensorFlow ``RelativeSquaredError`` has a bug: its denominator is also
    :math:`\sum_i (y_i - \hat y_i)^2`, so it is identically 1 and trains nothing. This is the
    textbook formula, checked against ``sklearn.metrics.r2_score`` instead.

    References
    ----------
    {_SURVEY}
    Examples
    --------
    >>> import torch
    >>> pred, target = torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0, 3.0, 3.0])
    >>> round(RelativeSquaredError()(pred, target).item(), 4)
    0.5
    """

    min_rows = 2

    def __init__(self, *, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.eps = eps

    def batch_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        numerator = ((target - pred).square() * weight[:, None]).sum()
        denominator = (_weighted_center(target, weight).square() * weight[:, None]).sum()
        return numerator / _guard(denominator + self.eps)


def _std(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Population (ddof=0) standard deviation over all elements, rows counted ``weight`` times."""
    centred = values - weighted_mean(values, weight)
    return _root(weighted_mean(centred.square(), weight))


class NormalizedRootMeanSquaredError(BatchLoss):
    __doc__ = rf"""Normalised RMSE: the batch RMSE divided by a scale of the batch.

    .. math::

        L = \mathrm{{RMSE}} / s, \quad s \in \{{\mathrm{{std}}(y), \mathrm{{std}}(\hat y),
            |\bar y|, \max y - \min y\}}

    All statistics pool the N×K elements (rows counted with their weight); standard
    deviations are population ones (ddof=0). Needs at least 2 rows. Batch-level: ``"mean"``
    or ``"sum"``.

    Parameters
    ----------
    normalizer : {{"target_std", "pred_std", "target_mean", "target_range"}}, default="target_std"
        ``pred_std`` is the survey's reference: it rewards spreading the predictions and is
        undefined for constant predictions (e.g. at initialisation), so keep it for
        reproduction only. ``target_mean`` uses :math:`|\bar y|` so that the sign of the
        loss never flips.
    reduction : {{"mean", "sum"}}, default="mean"

    Notes
    -----
    Definitions in the literature vary; the survey's TensorFlow ``NormalizedRootMeanSquaredError``
    divides by ``K.std(y_pred)`` (population std of the predictions), which is
    ``normalizer="pred_std"`` here. A zero normaliser is floored at the smallest normal float.

    References
    ----------
    {_SURVEY}
    Examples
    --------
    >>> import torch
    >>> loss = NormalizedRootMeanSquaredError()
    >>> pred, target = torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0, 3.0, 3.0])
    >>> round(loss(pred, target).item(), 4)
    0.7071
    """

    min_rows = 2

    def __init__(self, *, normalizer: str = "target_std", reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.normalizer = normalizer

    def batch_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        rmse = _root(weighted_mean((target - pred).square(), weight))
        if self.normalizer == "pred_std":
            scale = _std(pred, weight)
        elif self.normalizer == "target_std":
            scale = _std(target, weight)
        elif self.normalizer == "target_mean":
            scale = weighted_mean(target, weight).abs()
        else:
            kept = target[weight > 0]
            scale = kept.max() - kept.min()
        return rmse / _guard(scale)


class RelativeRootMeanSquaredError(BatchLoss):
    __doc__ = rf"""Relative RMSE: the root of the squared error relative to a squared norm.

    .. math::

        L_\text{{target\_norm}} = \sqrt{{\frac{{\sum_{{i,k}} w_i e_{{ik}}^2}}
                                             {{\sum_{{i,k}} w_i y_{{ik}}^2}}}}, \quad
        L_\text{{pred\_norm}} = \sqrt{{\frac{{\sum w_i e_{{ik}}^2}}{{\sum w_i \hat y_{{ik}}^2}}}},
        \quad L_\text{{target\_mean}} = \mathrm{{RMSE}} / |\bar y|

    with :math:`e = y - \hat y`. Batch-level: ``"mean"`` or ``"sum"``.

    Parameters
    ----------
    definition : {{"target_norm", "pred_norm", "target_mean"}}, default="target_norm"
        ``pred_norm`` is the survey's reference; it decreases when :math:`|\hat y|` grows
        (rewarding inflated predictions) and divides by zero when all predictions are 0.
    reduction : {{"mean", "sum"}}, default="mean"

    Notes
    -----
    The survey's TensorFlow ``RelativeRootMeanSquaredError`` computes
    :math:`\sqrt{{\sum e^2 / \sum \hat y^2}}` (``definition="pred_norm"``). The sum/sum forms
    differ from a mean/sum form by :math:`\sqrt N`. Zero denominators are floored at the
    smallest normal float.

    References
    ----------
    {_SURVEY}
    Examples
    --------
    >>> import torch
    >>> loss = RelativeRootMeanSquaredError()
    >>> pred, target = torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0, 3.0, 3.0])
    >>> round(loss(pred, target).item(), 4)
    0.3162
    """

    def __init__(self, *, definition: str = "target_norm", reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.definition = definition

    def batch_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        squared = ((target - pred).square() * weight[:, None]).sum()
        if self.definition == "target_mean":
            rmse = _root(weighted_mean((target - pred).square(), weight))
            return rmse / _guard(weighted_mean(target, weight).abs())
        norm = pred if self.definition == "pred_norm" else target
        return _root(squared / _guard((norm.square() * weight[:, None]).sum()))
