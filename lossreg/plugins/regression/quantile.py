"""Quantile losses: pinball, quantile Huber and the weighted interval score, and their link.

Column layout shared by the three losses and the ``quantiles`` link: with K target columns and
Q quantile levels :math:`\\tau_1 < \\dots < \\tau_Q`, the output has K*Q columns and column
``k*Q + j`` is the predicted :math:`\\tau_j`-quantile of target column k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import Link, LossModule, as_float_target

__all__ = [
    "QUANTILES_LINK",
    "Pinball",
    "QuantileHuber",
    "WeightedIntervalScore",
    "sort_quantiles",
]


def _levels_of(criterion: Any, width: int) -> int:
    """Number of quantile levels per target column (all columns when no criterion is known)."""
    levels = getattr(criterion, "levels_", None)
    return width if levels is None else int(levels.numel())


def sort_quantiles(output: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Sort each target column's Q quantiles in increasing order (never raises pinball/WIS).

    Independent heads can cross; sorting them is the monotone rearrangement, which cannot
    increase the pinball loss summed over levels nor the weighted interval score.
    """
    n = output.shape[0]
    return output.reshape(n, -1, n_levels).sort(dim=-1).values.reshape(n, -1)


def _quantile_columns(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return sort_quantiles(output, _levels_of(criterion, output.shape[-1]))


#: Returns the predicted quantile columns (layout ``k*Q + j``), sorted within each target.
QUANTILES_LINK = Link(
    "quantiles",
    _quantile_columns,
    "value",
    "quantile columns k*Q + j (target k, level j), sorted in each target's Q levels",
)


class _QuantileLoss(LossModule):
    """Shared shape handling and prediction helpers; subclasses hold a ``levels_`` buffer."""

    levels_: torch.Tensor

    def _split(
        self, input: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return predictions (N, K, Q) and targets (N, K, 1)."""
        q = self.levels_.numel()
        if input.ndim == 1 and q == 1:
            input = input[:, None]  # one target column, one level: (N,) is (N, 1)
        if input.ndim != 2 or input.shape[1] % q != 0:
            raise ValueError(
                f"{type(self).__name__} needs an output of shape (N, K*{q}): {q} quantile "
                f"columns per target column. Got shape {tuple(input.shape)}."
            )
        pred = input.reshape(input.shape[0], -1, q)
        target = as_float_target(target.reshape(target.shape[0], -1), pred[:, :, 0])
        return pred, target.unsqueeze(-1)

    def predict_quantiles(self, output: torch.Tensor) -> torch.Tensor:
        """Return the sorted predicted quantiles, shape (N, K, Q), levels in ``levels_``."""
        q = self.levels_.numel()
        return sort_quantiles(output, q).reshape(output.shape[0], -1, q)

    def predict_point(self, output: torch.Tensor) -> torch.Tensor:
        """Return the quantile whose level is closest to 0.5, shape (N, K)."""
        j = int((self.levels_ - 0.5).abs().argmin())
        return self.predict_quantiles(output)[:, :, j]

    def predict_interval(
        self, output: torch.Tensor, alpha: float = 0.1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the central :math:`1-\\alpha` interval (lower, upper), each (N, K).

        Its bounds are the predicted quantiles at levels :math:`\\alpha/2` and
        :math:`1-\\alpha/2`, which must be among the fitted levels: quantile heads are not
        interpolated (a ``ValueError`` names the levels there are).
        """
        levels = self.levels_.detach().cpu().double()
        wanted = (alpha / 2, 1 - alpha / 2)
        found = [int((levels - w).abs().argmin()) for w in wanted]
        if any(abs(float(levels[j]) - w) > 1e-9 for j, w in zip(found, wanted, strict=True)):
            raise ValueError(
                f"A {1 - alpha:g} interval needs the quantile levels {wanted[0]:g} and "
                f"{wanted[1]:g}; this loss was fitted with {[round(float(v), 6) for v in levels]}. "
                f"Fit it with loss__quantiles including both, or pass alpha = 2 * (a lower level)."
            )
        sorted_q = self.predict_quantiles(output)
        return sorted_q[:, :, found[0]], sorted_q[:, :, found[1]]


def _pinball(residual: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    # max(τu, (τ-1)u) for u = y - q
    return torch.maximum(tau * residual, (tau - 1) * residual)


class Pinball(_QuantileLoss):
    r"""Pinball (quantile) loss averaged over fixed quantile levels.

    .. math::

        \rho_\tau(u) = \max(\tau u, (\tau - 1) u), \quad
        \ell_i = \mathrm{mean}_{k,j}\; \rho_{\tau_j}(y_{ik} - \hat q_{ik,j})

    Output (N, K*Q): column ``k*Q + j`` is the :math:`\tau_j`-quantile of target column k
    (K = 1: (N, Q)); float targets (N,) or (N, K). Predict with the ``quantiles`` link (the
    sorted quantile columns), :meth:`predict_quantiles` or :meth:`predict_point` (the level
    closest to 0.5).

    Parameters
    ----------
    quantiles : sequence of float in (0, 1), strictly increasing, default=(0.5,)
        The levels :math:`\tau_j`; the default gives median regression (half the ``mae``).
        Typical sets: (0.1, 0.5, 0.9) or (0.05, 0.1, ..., 0.95).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The survey's time-series reference sums over levels; this loss averages (a factor Q).
    Independent heads can cross: the link sorts them, which never increases the loss.
    Equals the average over levels of ``sklearn.metrics.mean_pinball_loss``. The estimator
    must give the network ``n_outputs * len(quantiles)`` outputs.

    References
    ----------
    R. Koenker, G. Bassett. "Regression Quantiles." Econometrica 46(1), 1978.

    Examples
    --------
    >>> import torch
    >>> loss = Pinball(quantiles=(0.1, 0.5, 0.9), reduction="none")
    >>> pred = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    >>> [round(v, 4) for v in loss(pred, torch.tensor([1.0, 0.0, 2.0, 0.0])).tolist()]
    [0.0667, 0.0667, 1.0, 0.7333]
    """

    def __init__(self, *, quantiles: Sequence[float] = (0.5,), reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.quantiles = quantiles
        levels = torch.as_tensor(list(quantiles), dtype=torch.float64).reshape(-1)
        if levels.numel() == 0 or not bool(((levels > 0) & (levels < 1)).all()):
            raise ValueError(f"quantiles must lie in (0, 1). Got {quantiles!r} instead.")
        if bool((levels.diff() <= 0).any()):
            raise ValueError(
                f"quantiles must be strictly increasing, e.g. (0.1, 0.5, 0.9). Got {quantiles!r}."
            )
        self.register_buffer("quantiles_", levels)

    @property
    def levels_(self) -> torch.Tensor:  # type: ignore[override]
        return self.quantiles_

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        pred, target = self._split(input, target)
        tau = self.quantiles_.to(input.dtype)
        return _pinball(target - pred, tau).mean(dim=(1, 2))

    def extra_repr(self) -> str:
        return f"quantiles={tuple(self.quantiles)!r}, reduction={self.reduction!r}"


class QuantileHuber(_QuantileLoss):
    r"""Quantile Huber loss at Q evenly spaced midpoint levels (QR-DQN / IQN).

    .. math::

        \rho^\kappa_\tau(u) = |\tau - \mathbb 1[u < 0]|\; h_\kappa(u)/\kappa, \quad
        \ell_i = \mathrm{mean}_{k,j}\; \rho^\kappa_{\hat\tau_j}(y_{ik} - \theta_{ik,j}), \quad
        \hat\tau_j = \frac{2j - 1}{2Q}

    with :math:`h_\kappa` the Huber loss at :math:`\delta=\kappa`; :math:`\kappa = 0` is the
    pinball limit (an explicit branch). Output (N, K*Q) in the ``k*Q + j`` layout; float
    targets (N,) or (N, K). Predict with the ``quantiles`` link.

    Parameters
    ----------
    n_quantiles : int in [1, inf), default=32
        Number of levels Q (QR-DQN uses 200; IQN samples its levels). The estimator must give
        the network ``n_outputs * n_quantiles`` outputs.
    kappa : float in [0, inf), default=1.0
        Huber threshold (target units); 0 gives the pinball loss.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    QR-DQN sums over the predicted quantiles (a factor Q relative to this mean) and pairs
    them with sampled target quantiles; with one observed target per row the RL target
    machinery is out of scope. The levels are the buffer ``levels_``.

    References
    ----------
    W. Dabney, M. Rowland, M. G. Bellemare, R. Munos. "Distributional Reinforcement Learning
    with Quantile Regression." AAAI 2018, arXiv:1710.10044.

    Examples
    --------
    >>> import torch
    >>> loss = QuantileHuber(n_quantiles=2, kappa=1.0, reduction="none")
    >>> pred = torch.tensor([[0.0, 1.0], [0.0, 0.0], [-2.0, 2.0], [1.0, 3.0]])
    >>> [round(v, 4) for v in loss(pred, torch.tensor([0.5, 0.0, 0.0, 0.0])).tolist()]
    [0.0312, 0.0, 0.375, 0.5]
    """

    def __init__(
        self, *, n_quantiles: int = 32, kappa: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_quantiles = n_quantiles
        self.kappa = kappa
        steps = torch.arange(1, n_quantiles + 1, dtype=torch.float64)
        self.register_buffer("levels_", (2 * steps - 1) / (2 * n_quantiles))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        pred, target = self._split(input, target)
        residual = target - pred
        tau = self.levels_.to(input.dtype)
        asymmetry = (tau - (residual < 0).to(input.dtype)).abs()
        abs_residual = residual.abs()
        if self.kappa == 0:
            return (asymmetry * abs_residual).mean(dim=(1, 2))
        quadratic = abs_residual.clamp(max=self.kappa)
        huber = 0.5 * quadratic.square() + self.kappa * (abs_residual - quadratic)
        return (asymmetry * huber / self.kappa).mean(dim=(1, 2))

    def extra_repr(self) -> str:
        return f"n_quantiles={self.n_quantiles}, kappa={self.kappa}, reduction={self.reduction!r}"


class WeightedIntervalScore(_QuantileLoss):
    r"""Weighted interval score of central prediction intervals plus the median.

    .. math::

        IS_\alpha(l, u; y) = (u - l) + \tfrac{2}{\alpha}(l - y)_+ + \tfrac{2}{\alpha}(y - u)_+,
        \quad
        \mathrm{WIS} = \frac{1}{K_\alpha + \frac12}\Big(\tfrac12 |y - m|
                       + \sum_{k=1}^{K_\alpha} \tfrac{\alpha_k}{2} IS_{\alpha_k}\Big)

    per target column, averaged over columns. The output holds, per target column, the
    :math:`2K_\alpha + 1` quantiles at the sorted levels
    :math:`\{\alpha_k/2\} \cup \{\tfrac12\} \cup \{1 - \alpha_k/2\}` (layout ``c*Q + j``,
    levels in ``levels_``); float targets (N,) or (N, K).

    Parameters
    ----------
    alphas : sequence of float in (0, 1), distinct, default=(0.2,)
        Miscoverage of each central interval; the default is one 80% interval plus the
        median (Q = 3 columns per target).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against Bracher et al. (2021): weights :math:`w_0 = 1/2`,
    :math:`w_k = \alpha_k/2`, normaliser :math:`K + 1/2`. Identity (tested):
    :math:`\mathrm{WIS} = \frac{2}{2K+1}\sum_\text{levels}\rho_\tau(y - q_\tau)`, twice the
    average ``pinball`` over the levels — it holds for crossing quantiles too. Sorting
    crossing quantiles (the ``quantiles`` link does) never increases WIS.

    References
    ----------
    J. Bracher, E. L. Ray, T. Gneiting, N. G. Reich. "Evaluating epidemic forecasts in an
    interval format." PLoS Computational Biology 17(2), 2021,
    doi:10.1371/journal.pcbi.1008618.

    Examples
    --------
    >>> import torch
    >>> loss = WeightedIntervalScore(alphas=(0.2,), reduction="none")
    >>> pred = torch.tensor([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0], [-2.0, 0.0, 2.0]])
    >>> [round(v, 4) for v in loss(pred, torch.tensor([0.0, 3.0, 0.0, 0.0])).tolist()]
    [0.1333, 2.4667, 0.4667, 0.2667]
    """

    def __init__(self, *, alphas: Sequence[float] = (0.2,), reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.alphas = alphas
        values = sorted(float(a) for a in alphas)
        if not values or not all(0 < a < 1 for a in values) or len(set(values)) != len(values):
            raise ValueError(
                f"alphas must be distinct values in (0, 1), e.g. (0.2,) or (0.1, 0.5). "
                f"Got {alphas!r} instead."
            )
        lower = [a / 2 for a in values]  # increasing
        upper = [1 - a / 2 for a in values]  # decreasing
        levels = [*lower, 0.5, *reversed(upper)]
        n = len(values)
        self.register_buffer("alphas_", torch.tensor(values, dtype=torch.float64))
        self.register_buffer("levels_", torch.tensor(levels, dtype=torch.float64))
        self.register_buffer("lower_index_", torch.arange(n))
        self.register_buffer("upper_index_", torch.arange(2 * n, n, -1))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        pred, target = self._split(input, target)
        n = self.alphas_.numel()
        alpha = self.alphas_.to(input.dtype)
        low = pred[:, :, self.lower_index_]
        high = pred[:, :, self.upper_index_]
        interval = (
            (high - low)
            + 2 / alpha * (low - target).clamp_min(0)
            + 2 / alpha * (target - high).clamp_min(0)
        )
        median_error = (target[:, :, 0] - pred[:, :, n]).abs()
        score = (0.5 * median_error + (alpha / 2 * interval).sum(dim=-1)) / (n + 0.5)
        return score.mean(dim=1)

    def extra_repr(self) -> str:
        return f"alphas={tuple(self.alphas)!r}, reduction={self.reduction!r}"
