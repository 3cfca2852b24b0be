"""Two-hot (categorical projection): cross-entropy against the two support points around y."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import LossModule

from ._bins import bin_edges, bin_logits, output_ranges, row_targets

__all__ = ["TwoHot"]


class TwoHot(LossModule):
    r"""Two-hot cross-entropy: the target's mass split linearly between its two support points.

    .. math::

        s_j \le y \le s_{j+1}:\quad q_j = \frac{s_{j+1}-y}{s_{j+1}-s_j},\quad
        q_{j+1} = \frac{y-s_j}{s_{j+1}-s_j},\qquad
        \ell_i = -\sum_k q_k(y_i)\log\mathrm{softmax}(z_i)_k

    Targets are clipped into :math:`[s_1, s_K]`; a target on a support point puts all its mass
    there. Prediction: the expected support value :math:`\sum_k\mathrm{softmax}(z)_k s_k`.

    Input logits have shape (N, K * n_bins), one block per target column (K = 1 for a scalar
    target); float targets (N,), (N, 1) or (N, K). The per-row loss is the mean over columns.

    Parameters
    ----------
    n_bins : int >= 2, default=51
        Number of support points :math:`K` (and of network outputs).
    support : {"atoms", "centers"}, default="atoms"
        ``"atoms"``: C51 atoms :math:`v_{\min}+k\Delta` including both ends of the range;
        ``"centers"``: the centres of ``n_bins`` equal-width bins (as ``hl_gauss``). The two
        give different numbers.
    margin : float in [0, inf), default=0.0
        Fraction of the training range added below and above it.
    target_min, target_max : float or list of K floats
        The training fold's target range per column (data params).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The entry is from memory; the projection is the categorical projection of a Dirac at
    :math:`y` onto a fixed support (Bellemare et al., 2017, Algorithm 1 with a single atom),
    which is what the Stop-Regressing paper calls two-hot; both agree with the catalogue.

    References
    ----------
    J. Farebrother et al. "Stop Regressing: Training Value Functions via Classification for
    Scalable Deep RL." ICML 2024. M. G. Bellemare, W. Dabney, R. Munos. "A Distributional
    Perspective on Reinforcement Learning." ICML 2017.

    Examples
    --------
    >>> import torch
    >>> loss = TwoHot(n_bins=3, target_min=0.0, target_max=2.0, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    >>> out = loss(logits, torch.tensor([0.0, 0.5, 1.0, 2.5]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.2395, 1.2395, 1.0986, 0.0949]
    """

    def __init__(
        self,
        *,
        n_bins: int = 51,
        support: str = "atoms",
        margin: float = 0.0,
        target_min: float | Sequence[float],
        target_max: float | Sequence[float],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_bins = n_bins
        self.support = support
        self.margin = margin
        self.target_min = target_min
        self.target_max = target_max
        if support not in ("atoms", "centers"):
            raise ValueError(f"support must be 'atoms' or 'centers'. Got {support!r} instead.")
        lo, hi = output_ranges(target_min, target_max, margin)
        if support == "atoms":
            points = bin_edges(lo, hi, n_bins - 1)  # n_bins atoms, both ends included
        else:
            edges = bin_edges(lo, hi, n_bins)
            points = (edges[:, :-1] + edges[:, 1:]) / 2
        self.register_buffer("centers_", points)  # (K, n_bins)

    def target_distribution(self, target: torch.Tensor) -> torch.Tensor:
        """Return the two-hot target distribution :math:`q(y)`, shape (N, K, n_bins)."""
        s = self.centers_.to(torch.float64)  # (K, n_bins)
        n_outputs, n_points = s.shape
        y = row_targets(target, target.shape[0], n_outputs).to(torch.float64)
        y = torch.clamp(y, s[:, 0], s[:, -1]).t().contiguous()  # (K, N)
        # Index of the lower support point; the last point pairs with its left neighbour.
        j = (torch.searchsorted(s, y, right=True) - 1).clamp(0, n_points - 2)
        low, high = s.gather(1, j), s.gather(1, j + 1)
        upper = (y - low) / (high - low)
        q = torch.zeros(n_outputs, y.shape[1], n_points, dtype=torch.float64, device=y.device)
        q.scatter_(2, j.unsqueeze(-1), (1 - upper).unsqueeze(-1))
        q.scatter_add_(2, (j + 1).unsqueeze(-1), upper.unsqueeze(-1))
        return q.transpose(0, 1)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        logits = bin_logits(input, self.centers_.shape[0], self.n_bins)
        q = self.target_distribution(target.reshape(input.shape[0], -1)).to(input.dtype)
        return -(q * logits.log_softmax(dim=-1)).sum(dim=-1).mean(dim=-1)

    def extra_repr(self) -> str:
        return (
            f"n_bins={self.n_bins}, support={self.support!r}, margin={self.margin}, "
            f"reduction={self.reduction!r}"
        )
