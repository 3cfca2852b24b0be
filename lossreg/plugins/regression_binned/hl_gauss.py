"""HL-Gauss: cross-entropy against a Gaussian histogram of the target (regression via bins)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import LossModule

from ._bins import bin_edges, bin_logits, output_ranges, row_targets

__all__ = ["HLGauss"]


class HLGauss(LossModule):
    r"""HL-Gauss: cross-entropy between the bin logits and a Gaussian histogram of the target.

    .. math::

        q_k(y) = \frac{\Phi\big(\frac{b_k-y}{\sigma}\big)-\Phi\big(\frac{b_{k-1}-y}{\sigma}\big)}
                      {\Phi\big(\frac{b_K-y}{\sigma}\big)-\Phi\big(\frac{b_0-y}{\sigma}\big)},
        \qquad
        \ell_i = -\sum_{k=1}^{K} q_k(y_i)\,\log\mathrm{softmax}(z_i)_k

    with :math:`K` equal-width bins of edges :math:`b_0<\dots<b_K` on the training target range
    and :math:`\sigma = \mathrm{sigma\_ratio}\times` bin width. Targets are clipped into the
    range. Prediction: the expected bin centre :math:`\sum_k\mathrm{softmax}(z)_k c_k`.

    Input logits have shape (N, K * n_bins) for K target columns (one block of ``n_bins``
    logits per column, each with its own bins; K = 1 for a scalar target); float targets of
    shape (N,), (N, 1) or (N, K). The per-row loss is the mean over the K columns.

    Parameters
    ----------
    n_bins : int >= 3, default=51
        Number of bins :math:`K` (and of network outputs).
    sigma_ratio : float in (0, inf), default=0.75
        Gaussian width in bin widths (the paper's recommendation).
    margin : float in [0, inf), default=0.0
        Fraction of the training range added below and above it.
    target_min, target_max : float or list of K floats
        The training fold's target range per column (data params).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The histogram's CDF differences are computed in float64 (narrow :math:`\sigma` cancels
    badly in float32) and cast to the logits' dtype. Bin centres are
    :math:`c_k=(b_{k-1}+b_k)/2`; the lucidrains/hl-gauss-pytorch version the catalogue names
    shifts them by one bin (left edge minus half a width), which is not copied here. The
    paper's absolute-:math:`\sigma` option is expressed through ``sigma_ratio``.

    References
    ----------
    J. Farebrother, J. Orbay, Q. Vuong, A. A. Taïga, Y. Chebotar, T. Xiao, A. Irpan, S. Levine,
    P. S. Castro, A. Faust, A. Kumar, R. Agarwal. "Stop Regressing: Training Value Functions
    via Classification for Scalable Deep RL." ICML 2024. E. Imani, M. White. "Improving
    Regression Performance with Distributional Losses." ICML 2018.

    Examples
    --------
    >>> import torch
    >>> loss = HLGauss(n_bins=4, target_min=0.0, target_max=4.0, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0],
    ...                        [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    >>> out = loss(logits, torch.tensor([0.5, 1.5, 2.0, 3.9]))
    >>> [round(v, 4) for v in out.tolist()]
    [1.0163, 1.3272, 1.3863, 0.7634]
    """

    def __init__(
        self,
        *,
        n_bins: int = 51,
        sigma_ratio: float = 0.75,
        margin: float = 0.0,
        target_min: float | Sequence[float],
        target_max: float | Sequence[float],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_bins = n_bins
        self.sigma_ratio = sigma_ratio
        self.margin = margin
        self.target_min = target_min
        self.target_max = target_max
        edges = bin_edges(*output_ranges(target_min, target_max, margin), n_bins)
        self.register_buffer("edges_", edges)  # (K, n_bins + 1)
        self.register_buffer("centers_", (edges[:, :-1] + edges[:, 1:]) / 2)  # (K, n_bins)

    def target_histogram(self, target: torch.Tensor) -> torch.Tensor:
        """Return the truncated-Gaussian bin probabilities :math:`q(y)`, shape (N, K, n_bins)."""
        edges = self.edges_.to(torch.float64)
        y = row_targets(target, target.shape[0], edges.shape[0]).to(torch.float64)
        y = torch.clamp(y, edges[:, 0], edges[:, -1]).unsqueeze(-1)
        sigma = (self.sigma_ratio * (edges[:, 1] - edges[:, 0])).reshape(1, -1, 1)
        cdf = torch.special.ndtr((edges.unsqueeze(0) - y) / sigma)
        mass = cdf[..., 1:] - cdf[..., :-1]
        return mass / (cdf[..., -1:] - cdf[..., :1])

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        logits = bin_logits(input, self.centers_.shape[0], self.n_bins)
        q = self.target_histogram(target.reshape(input.shape[0], -1)).to(input.dtype)
        return -(q * logits.log_softmax(dim=-1)).sum(dim=-1).mean(dim=-1)

    def extra_repr(self) -> str:
        return (
            f"n_bins={self.n_bins}, sigma_ratio={self.sigma_ratio}, margin={self.margin}, "
            f"reduction={self.reduction!r}"
        )
