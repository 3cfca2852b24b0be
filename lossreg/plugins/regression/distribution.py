"""Likelihood losses with a predicted scale: Gaussian, Laplace, Laplace + error-histogram KL, NIG.

Head layout shared by these losses: for K target columns the output has H*K columns in H
blocks of K (block h = columns h*K .. (h+1)*K - 1). Two-head losses: block 0 is the location
(mean / median), block 1 the log-scale; deep evidential regression has four blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import Link, LossModule

from ._private import beta_nll_weight, check_batch_reduction, per_row, row_weights, split_heads

__all__ = [
    "GAUSSIAN_MEAN_LINK",
    "LAPLACE_MEDIAN_LINK",
    "NIG_MEAN_LINK",
    "DeepEvidentialRegression",
    "GaussianNLL",
    "LaplaceNLL",
    "LaplaceNLLErrorHistKL",
]


def _first_of(n_heads: int) -> Callable[..., torch.Tensor]:
    def transform(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
        return output[:, : output.shape[1] // n_heads]

    return transform


#: Predicts the Gaussian mean: the first half of the output columns.
GAUSSIAN_MEAN_LINK = Link(
    "gaussian_mean", _first_of(2), "value", "Gaussian mean: the first K of 2K columns"
)
#: Predicts the Laplace location (median): the first half of the output columns.
LAPLACE_MEDIAN_LINK = Link(
    "laplace_median", _first_of(2), "value", "Laplace median: the first K of 2K columns"
)
#: Predicts the NIG mean gamma: the first quarter of the output columns.
NIG_MEAN_LINK = Link(
    "nig_mean", _first_of(4), "value", "Normal-inverse-gamma mean: the first K of 4K columns"
)


def _floored_log_scale(raw: torch.Tensor, eps: float) -> torch.Tensor:
    # A scale floor eps, applied in log space: below it the scale stops shrinking (zero
    # gradient), as torch.nn.GaussianNLLLoss clamps its variance.
    return raw.clamp_min(math.log(eps))


class GaussianNLL(LossModule):
    r"""Gaussian negative log-likelihood with a predicted log-variance (optionally β-NLL).

    .. math::

        \ell_i = \mathrm{mean}_k\; \mathrm{sg}\big(\sigma_{ik}^{2\beta}\big)\,
                 \tfrac12\Big[s_{ik} + (y_{ik} - \mu_{ik})^2 e^{-s_{ik}}
                 + [\text{full}] \log 2\pi\Big], \quad s = \max(\text{raw}, \log\epsilon)

    Output (N, 2K): columns 0..K-1 are the means :math:`\mu`, columns K..2K-1 the
    log-variances :math:`s` (K = 1: (N, 2)); float targets (N,) or (N, K).
    ``sg`` is stop-gradient. Predict the mean with the ``gaussian_mean`` link; the standard
    deviation is :math:`\sigma = e^{s/2}` (:meth:`predict_std`), central intervals come from
    :meth:`predict_interval`.

    Parameters
    ----------
    eps : float in (0, inf), default=1e-06
        Variance floor (torch's ``GaussianNLLLoss`` default).
    beta : float in [0, 1], default=0.0
        β-NLL exponent: 0 is the plain NLL, 0.5 the recommended value, 1 gives MSE-like
        gradients for the mean.
    full : bool, default=False
        Add the constant :math:`\tfrac12\log 2\pi`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Log-variance keeps the variance positive without a constraint. At ``beta=0`` this equals
    ``torch.nn.functional.gaussian_nll_loss(mu, y, exp(s), eps=eps, full=full)`` (the
    reference test). β-NLL (Seitzer et al.) weights each element by the detached
    :math:`\sigma^{2\beta}`; plain NLL can neglect hard regions. The estimator must give the
    network ``2 * n_outputs`` outputs.

    References
    ----------
    M. Seitzer, A. Tavakoli, D. Antic, G. Martius. "On the Pitfalls of Heteroscedastic
    Uncertainty Estimation with Probabilistic Neural Networks." ICLR 2022, arXiv:2203.09168.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    >>> loss = GaussianNLL(reduction="none")
    >>> [round(v, 4) for v in loss(out, torch.tensor([0.0, 0.0, 2.0, 1.0])).tolist()]
    [0.0, 0.5, 1.2707, 2.6945]
    """

    def __init__(
        self,
        *,
        eps: float = 1e-6,
        beta: float = 0.0,
        full: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.eps = eps
        self.beta = beta
        self.full = full

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        (mean, raw), target = split_heads(input, target, 2, "gaussian_nll")
        log_var = _floored_log_scale(raw, self.eps)
        loss = 0.5 * (log_var + (target - mean).square() * torch.exp(-log_var))
        if self.full:
            loss = loss + 0.5 * math.log(2 * math.pi)
        if self.beta:
            loss = loss * beta_nll_weight(log_var, self.beta)
        return per_row(loss)  # a view for one target column, not a mean kernel

    def predict_std(self, output: torch.Tensor) -> torch.Tensor:
        """Return the predicted standard deviations :math:`e^{s/2}`, shape (N, K)."""
        raw = output[:, output.shape[1] // 2 :]
        return torch.exp(0.5 * _floored_log_scale(raw, self.eps))

    def predict_interval(
        self, output: torch.Tensor, alpha: float = 0.1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the central :math:`1-\\alpha` Gaussian interval (lower, upper), each (N, K)."""
        mean = output[:, : output.shape[1] // 2]
        z = torch.special.ndtri(torch.tensor(1 - alpha / 2, dtype=output.dtype))
        half = z * self.predict_std(output)
        return mean - half, mean + half

    def extra_repr(self) -> str:
        return f"eps={self.eps!r}, beta={self.beta}, full={self.full}, reduction={self.reduction!r}"


class LaplaceNLL(LossModule):
    r"""Laplace negative log-likelihood with a predicted log-scale.

    .. math::

        \ell_i = \mathrm{mean}_k\; \frac{|y_{ik} - \hat y_{ik}|}{b_{ik}} + \log b_{ik}, \quad
        \log b = \max(\text{raw}, \log\epsilon)

    Output (N, 2K): columns 0..K-1 are the locations :math:`\hat y` (the predicted median),
    columns K..2K-1 the log-scales :math:`\log b`; float targets (N,) or (N, K). Predict with
    the ``laplace_median`` link; :meth:`predict_std` returns the standard deviation
    :math:`\sqrt2\,b` and :meth:`predict_interval` the central interval
    :math:`\hat y \pm b\log(1/\alpha)`.

    Parameters
    ----------
    eps : float in (0, inf), default=1e-06
        Scale floor.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against SEDNet's ``KG_loss`` (lly00412/SEDNet ``models/loss.py``): per pixel
    ``|d - d_gt| / exp(s) + s`` with ``s`` the predicted log-scale, which is this formula
    without the constant :math:`\log 2` of the Laplace density (so
    :math:`\ell = -\log p(y) - \log 2`). The reference has no scale floor; ours only acts
    below ``eps``.

    References
    ----------
    L. Chen, W. Wang, P. Mordohai. "Learning the Distribution of Errors in Stereo Matching for
    Joint Disparity and Uncertainty Estimation." 2023, arXiv:2304.00152.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> loss = LaplaceNLL(reduction="none")
    >>> [round(v, 4) for v in loss(out, torch.tensor([0.0, 0.0, 2.0, 1.0])).tolist()]
    [0.0, 1.0, 1.7358, 1.7183]
    """

    def __init__(self, *, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.eps = eps

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        (location, raw), target = split_heads(input, target, 2, "laplace_nll")
        log_scale = _floored_log_scale(raw, self.eps)
        return per_row((target - location).abs() * torch.exp(-log_scale) + log_scale)

    def predict_scale(self, output: torch.Tensor) -> torch.Tensor:
        """Return the Laplace scales :math:`b`, shape (N, K)."""
        return torch.exp(_floored_log_scale(output[:, output.shape[1] // 2 :], self.eps))

    def predict_std(self, output: torch.Tensor) -> torch.Tensor:
        """Return the standard deviations :math:`\\sqrt2\\, b`, shape (N, K)."""
        return math.sqrt(2) * self.predict_scale(output)

    def predict_interval(
        self, output: torch.Tensor, alpha: float = 0.1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the central :math:`1-\\alpha` Laplace interval (lower, upper), each (N, K)."""
        location = output[:, : output.shape[1] // 2]
        half = math.log(1 / alpha) * self.predict_scale(output)
        return location - half, location + half

    def extra_repr(self) -> str:
        return f"eps={self.eps!r}, reduction={self.reduction!r}"


class LaplaceNLLErrorHistKL(nn.Module):
    r"""Laplace NLL on the inlier rows plus a KL term matching the error and scale histograms.

    Per element :math:`e_i = |y_i - \hat y_i|`, :math:`\sigma_i = e^{\max(\text{raw}_i,
    \log\epsilon)}`, :math:`\ell_i = e_i/\sigma_i + \log\sigma_i`. Soft histograms over bins
    :math:`b_k = \bar e + z_k\,\mathrm{sd}(e)`:

    .. math::

        A_k(v) = \mathrm{softmax}_k\big(10\, e^{-(b_k - v)^2/5}\big), \quad
        P_\text{err} = \mathrm{mean}_i A(e_i), \quad P_\sigma = \mathrm{mean}_i A(\sigma_i),

        L = \mathrm{mean}_{i \in \text{inliers}}\, \ell_i
            + \mathrm{KL}(P_\text{err} \,\|\, P_\sigma)

    Inliers: :math:`|e_i - \bar e| < k\,\mathrm{sd}(e)` (``inlier_mode="soft"``) or
    :math:`e_i < k` (``"hard"``); :math:`k = 0` keeps every row, and a batch without inliers
    falls back to every row. Output (N, 2K) = locations then log-scales (as ``laplace_nll``);
    float targets (N,) or (N, K), the N×K elements pooled. Batch-level: ``"mean"`` or
    ``"sum"``; sample weights count as row frequencies in every mean, standard deviation and
    histogram.

    Parameters
    ----------
    n_bins : int in [2, inf), default=11
        Number of histogram bins.
    bin_scale : {"linear", "log"}, default="linear"
        :math:`z_k` = ``linspace(0, 5, n_bins)`` or ``logspace(0, log10 6, n_bins) - 1``.
    inlier_threshold : float in [0, inf), default=3.0
        :math:`k` (standard deviations for ``"soft"``, target units for ``"hard"``).
    inlier_mode : {"soft", "hard"}, default="soft"
    eps : float in (0, inf), default=1e-06
        Scale floor.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Checked against SEDNet's ``UC_loss`` and ``soft_assignment`` (lly00412/SEDNet
    ``models/loss.py``) and its ``main.py`` defaults (``--n_bins 11``, ``--bin_scale line``,
    ``--inliers 3``, ``--mask soft``): both histograms use the bins built from the **errors'**
    mean and unbiased standard deviation, gradients flow through the bin positions, the KL is
    ``F.kl_div(P_sigma.log(), P_err, reduction="sum")`` and is added to every row before the
    inlier mean (the same as adding it once). The kernel constants 10 and 5 are in absolute
    target units: standardise the target. Needs at least 2 rows.

    References
    ----------
    L. Chen, W. Wang, P. Mordohai. "Learning the Distribution of Errors in Stereo Matching for
    Joint Disparity and Uncertainty Estimation." 2023, arXiv:2304.00152.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.5], [0.0, -1.0]])
    >>> loss = LaplaceNLLErrorHistKL()
    >>> round(loss(out, torch.tensor([0.0, 0.0, 2.0, 1.0])).item(), 4)
    1.1333
    """

    def __init__(
        self,
        *,
        n_bins: int = 11,
        bin_scale: str = "linear",
        inlier_threshold: float = 3.0,
        inlier_mode: str = "soft",
        eps: float = 1e-6,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.reduction = check_batch_reduction(reduction, "LaplaceNLLErrorHistKL")
        self.n_bins = n_bins
        self.bin_scale = bin_scale
        self.inlier_threshold = inlier_threshold
        self.inlier_mode = inlier_mode
        self.eps = eps
        if bin_scale == "log":
            offsets = torch.logspace(0, math.log10(6), n_bins, dtype=torch.float64) - 1
        else:
            offsets = torch.linspace(0, 5, n_bins, dtype=torch.float64)
        self.register_buffer("bin_offsets_", offsets)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        (location, raw), target = split_heads(input, target, 2, "laplace_nll_error_hist_kl")
        n, k = location.shape
        weight = row_weights(sample_weight, n, location)
        if int((weight > 0).sum()) < 2:
            raise ValueError(
                "Loss 'laplace_nll_error_hist_kl' needs at least 2 rows of positive weight "
                "per batch (it uses the batch's error standard deviation); use a larger batch "
                "and drop_last=True."
            )
        # Pool the N*K elements, each carrying its row's weight (row-major, like reshape).
        value = self._statistic(
            location.reshape(-1), target.reshape(-1), raw.reshape(-1), weight.repeat_interleave(k)
        )
        return value * weight.sum() if self.reduction == "sum" else value

    def _statistic(
        self, location: torch.Tensor, target: torch.Tensor, raw: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        error = (target - location).abs()
        log_sigma = _floored_log_scale(raw, self.eps)
        nll = error * torch.exp(-log_sigma) + log_sigma
        # For the histogram only: beyond e^(log(max)/2 - 1), (bin - sigma)^2 would overflow;
        # the soft assignment of such a sigma is already uniform, so capping changes nothing.
        sigma = log_sigma.clamp_max(0.5 * math.log(torch.finfo(raw.dtype).max) - 1).exp()
        total = weight.sum()
        mean = (weight * error).sum() / total
        # Unbiased (frequency-weighted) standard deviation, as torch.std in the reference.
        variance = (weight * (error - mean).square()).sum() / (total - 1).clamp_min(1)
        # sqrt has an infinite derivative at 0 (every error equal, e.g. a perfect fit), which
        # makes the gradient NaN; flooring at the smallest normal number changes no value.
        std = variance.clamp_min(torch.finfo(variance.dtype).tiny).sqrt()
        bins = mean + self.bin_offsets_.to(error.dtype) * std
        p_error = self._histogram(error, bins, weight)
        p_sigma = self._histogram(sigma, bins, weight)
        kl = F.kl_div(p_sigma.log(), p_error, reduction="sum")
        keep = weight > 0
        if self.inlier_threshold > 0:
            if self.inlier_mode == "soft":
                keep = keep & ((error - mean).abs() < self.inlier_threshold * std)
            else:
                keep = keep & (error < self.inlier_threshold)
            if not bool(keep.any()):
                keep = weight > 0  # no inliers: the reference falls back to every row
        kept = weight * keep.to(weight.dtype)
        return (kept * nll).sum() / kept.sum() + kl

    @staticmethod
    def _histogram(values: torch.Tensor, bins: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        affinity = 10 * torch.exp(-(bins[None, :] - values[:, None]).square() / 5)
        assignment = affinity.softmax(dim=1)
        return (weight[:, None] * assignment).sum(dim=0) / weight.sum()

    def predict_scale(self, output: torch.Tensor) -> torch.Tensor:
        """Return the predicted scales :math:`\\sigma`, shape (N, K)."""
        return torch.exp(_floored_log_scale(output[:, output.shape[1] // 2 :], self.eps))

    def predict_std(self, output: torch.Tensor) -> torch.Tensor:
        """Return the Laplace standard deviations :math:`\\sqrt2\\,\\sigma`, shape (N, K)."""
        return math.sqrt(2) * self.predict_scale(output)

    def predict_interval(
        self, output: torch.Tensor, alpha: float = 0.1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the central :math:`1-\\alpha` Laplace interval (lower, upper), each (N, K)."""
        location = output[:, : output.shape[1] // 2]
        half = math.log(1 / alpha) * self.predict_scale(output)
        return location - half, location + half

    def extra_repr(self) -> str:
        return (
            f"n_bins={self.n_bins}, bin_scale={self.bin_scale!r}, "
            f"inlier_threshold={self.inlier_threshold}, inlier_mode={self.inlier_mode!r}, "
            f"eps={self.eps!r}, reduction={self.reduction!r}"
        )


class DeepEvidentialRegression(LossModule):
    r"""Deep evidential regression: normal-inverse-gamma NLL plus an evidence regulariser.

    Raw outputs map to :math:`\gamma` (identity), :math:`\nu = \mathrm{softplus}`,
    :math:`\alpha = \mathrm{softplus} + 1`, :math:`\beta = \mathrm{softplus}`. With
    :math:`\Omega = 2\beta(1 + \nu)`:

    .. math::

        \mathrm{NLL}_i = \tfrac12\log\frac{\pi}{\nu} - \alpha\log\Omega
            + (\alpha + \tfrac12)\log\big(\nu(y - \gamma)^2 + \Omega\big)
            + \log\Gamma(\alpha) - \log\Gamma(\alpha + \tfrac12),

        \ell_i = \mathrm{mean}_k\; \mathrm{NLL}_{ik} + \lambda\,|y_{ik} - \gamma_{ik}|\,
                 (2\nu_{ik} + \alpha_{ik})

    Output (N, 4K): four blocks of K columns (γ, ν, α, β raw values); float targets (N,) or
    (N, K). Predict :math:`\gamma` with the ``nig_mean`` link; :meth:`predict_std` gives the
    aleatoric standard deviation :math:`\sqrt{\beta/(\alpha-1)}` and
    :meth:`predict_epistemic_std` :math:`\sqrt{\beta/(\nu(\alpha-1))}`.

    Parameters
    ----------
    coeff : float in [0, inf), default=0.01
        :math:`\lambda`, the weight of the evidence regulariser (useful range 1e-3 to 1e-1).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against aamini/evidential-deep-learning (``losses/continuous.py``: ``NIG_NLL``
    and ``NIG_Reg`` with ``evi = 2*v + alpha``; ``layers/dense.py``: the softplus mappings).
    That code sums the two batch means, which equals the mean of this per-row sum; its
    ``evidential_regression`` helper defaults to ``coeff=1.0``, while the catalogue's paper
    default is 0.01, which we follow. The NLL is the negative log density of the Student-t
    :math:`\mathrm{St}(y; \gamma, \beta(1+\nu)/(\nu\alpha), 2\alpha)` (the reference test
    uses ``scipy.stats.t``). :math:`\nu` and :math:`\beta` are floored at the smallest
    normal float so that saturated softplus outputs give finite values. The epistemic part
    is known to be unreliable.

    References
    ----------
    A. Amini, W. Schwarting, A. Soleimany, D. Rus. "Deep Evidential Regression." NeurIPS
    2020.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
    ...                     [0.0, 2.0, 2.0, 2.0], [0.0, -2.0, 1.0, -1.0]])
    >>> loss = DeepEvidentialRegression(reduction="none")
    >>> [round(v, 4) for v in loss(out, torch.tensor([0.0, 0.0, 1.0, 1.0])).tolist()]
    [0.9918, 1.5901, 1.5706, 1.5555]
    """

    def __init__(self, *, coeff: float = 0.01, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.coeff = coeff

    @staticmethod
    def _nig(
        raw_nu: torch.Tensor, raw_alpha: torch.Tensor, raw_beta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tiny = torch.finfo(raw_nu.dtype).tiny
        # softplus(-1e3) underflows to 0, where log(pi/nu) and log(Omega) are infinite.
        nu = F.softplus(raw_nu).clamp_min(tiny)
        alpha = F.softplus(raw_alpha) + 1
        beta = F.softplus(raw_beta).clamp_min(tiny)
        return nu, alpha, beta

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        (gamma, raw_nu, raw_alpha, raw_beta), target = split_heads(
            input, target, 4, "deep_evidential_regression"
        )
        nu, alpha, beta = self._nig(raw_nu, raw_alpha, raw_beta)
        omega = 2 * beta * (1 + nu)
        error = target - gamma
        nll = (
            0.5 * (math.log(math.pi) - nu.log())
            - alpha * omega.log()
            + (alpha + 0.5) * torch.log(nu * error.square() + omega)
            + torch.lgamma(alpha)
            - torch.lgamma(alpha + 0.5)
        )
        regulariser = error.abs() * (2 * nu + alpha)
        return (nll + self.coeff * regulariser).mean(dim=1)

    def _split_output(self, output: torch.Tensor) -> tuple[torch.Tensor, ...]:
        k = output.shape[1] // 4
        return tuple(output[:, h * k : (h + 1) * k] for h in range(4))

    def predict_std(self, output: torch.Tensor) -> torch.Tensor:
        """Return the aleatoric standard deviations :math:`\\sqrt{\\beta/(\\alpha-1)}`, (N, K)."""
        _, raw_nu, raw_alpha, raw_beta = self._split_output(output)
        _, alpha, beta = self._nig(raw_nu, raw_alpha, raw_beta)
        return (beta / (alpha - 1)).sqrt()

    def predict_epistemic_std(self, output: torch.Tensor) -> torch.Tensor:
        """Return the epistemic standard deviations :math:`\\sqrt{\\beta/(\\nu(\\alpha-1))}`."""
        _, raw_nu, raw_alpha, raw_beta = self._split_output(output)
        nu, alpha, beta = self._nig(raw_nu, raw_alpha, raw_beta)
        return (beta / (nu * (alpha - 1))).sqrt()

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}, reduction={self.reduction!r}"
