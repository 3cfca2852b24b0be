"""R2CCP: regression as classification with a distance-weighted, entropy-regularised bin loss."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lossreg import LossModule

from ._bins import bin_edges, bin_logits, output_ranges, row_targets

__all__ = ["R2CCP"]


class R2CCP(LossModule):
    r"""R2CCP loss: expected :math:`q`-th power distance to the bin midpoints minus entropy.

    .. math::

        \pi_i = \mathrm{softmax}(z_i),\qquad
        \ell_i = \sum_{k=1}^{K}\pi_{ik}\,|y_i-m_k|^{q}
                 + \tau\sum_{k=1}^{K}\pi_{ik}\log\pi_{ik}

    with midpoints :math:`m_k` of :math:`K` equal-width bins on the training target range.
    It is not a cross-entropy: the target enters only through the distances. Prediction: the
    expected midpoint :math:`\sum_k\pi_k m_k`; conformal intervals through
    :meth:`calibrate` and :meth:`predict_intervals`.

    Input logits have shape (N, K * n_bins), one block per target column (K = 1 for a scalar
    target); float targets (N,), (N, 1) or (N, K). The per-row loss is the mean over columns;
    conformal intervals are for a scalar target (K = 1).

    Parameters
    ----------
    n_bins : int >= 2, default=50
        Number of bins :math:`K`.
    q : float in (0, inf), default=0.5
        Power of the distance.
    tau : float in [0, inf), default=0.2
        Weight of the entropy bonus.
    anneal_epochs : int >= 1 or None, default=None
        If set, :meth:`set_epoch` scales ``tau`` by :math:`\max(0, 1-\mathrm{epoch}/T)` (the
        reference's optional schedule uses :math:`T=500`); ``None`` keeps ``tau`` fixed.
    margin : float in [0, inf), default=0.0
        Fraction of the training range added below and above it.
    target_min, target_max : float or list of K floats
        The training fold's target range per column (data params).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against TorchCP's ``R2ccpLoss`` (``sum_k |y-m_k|^p pi_k - tau sum_k pi_k log
    pi_k``, defaults p=0.5, tau=0.2): agreement. TorchCP and the authors' code **sum** over
    the batch; lossreg's ``mean`` divides by N (use ``reduction="sum"`` to reproduce). The
    entropy term uses ``softmax * log_softmax``, finite where a probability underflows (the
    reference clamps at 1e-10).

    Conformal intervals (split conformal, as R2CCP): the conformity score of a calibration row
    is the bin probability linearly interpolated at its target between the two neighbouring
    midpoints (the end probabilities outside them). :meth:`calibrate` stores the calibration
    rows' scores; :meth:`predict_intervals` keeps, for each row, the segments between
    neighbouring midpoints where the interpolated probability is at least the
    :math:`\lfloor(n+1)\alpha\rfloor`-th smallest calibration score.

    References
    ----------
    E. Guha, S. Natarajan, T. Möllenhoff, M. E. Khan, E. Ndiaye. "Conformal Prediction via
    Regression-as-Classification." ICLR 2024.

    Examples
    --------
    >>> import torch
    >>> loss = R2CCP(n_bins=4, target_min=0.0, target_max=4.0, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0],
    ...                        [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    >>> out = loss(logits, torch.tensor([0.5, 1.5, 2.0, 3.9]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.2154, 0.145, 0.6887, 0.6427]
    """

    def __init__(
        self,
        *,
        n_bins: int = 50,
        q: float = 0.5,
        tau: float = 0.2,
        anneal_epochs: int | None = None,
        margin: float = 0.0,
        target_min: float | Sequence[float],
        target_max: float | Sequence[float],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_bins = n_bins
        self.q = q
        self.tau = tau
        self.anneal_epochs = anneal_epochs
        self.margin = margin
        self.target_min = target_min
        self.target_max = target_max
        edges = bin_edges(*output_ranges(target_min, target_max, margin), n_bins)
        self.register_buffer("centers_", (edges[:, :-1] + edges[:, 1:]) / 2)  # (K, n_bins)
        # The entropy weight in force this epoch (tau until set_epoch anneals it).
        self.register_buffer("tau_", torch.tensor(float(tau), dtype=torch.float64))
        # Sorted conformity scores of the calibration rows; empty until calibrate().
        self.register_buffer("calibration_scores_", torch.zeros(0, dtype=torch.float64))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Anneal the entropy weight to ``tau * max(0, 1 - epoch / anneal_epochs)``."""
        factor = 1.0 if self.anneal_epochs is None else max(0.0, 1 - epoch / self.anneal_epochs)
        self.tau_.fill_(self.tau * factor)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        n_outputs = self.centers_.shape[0]
        log_pi = bin_logits(input, n_outputs, self.n_bins).log_softmax(dim=-1)
        pi = log_pi.exp()
        y = row_targets(target, input.shape[0], n_outputs).to(input.dtype)
        distance = (y.unsqueeze(-1) - self.centers_.to(input.dtype)).abs().pow(self.q)
        neg_entropy = (pi * log_pi).sum(dim=-1)
        loss = (pi * distance).sum(dim=-1) + self.tau_.to(input.dtype) * neg_entropy
        return loss.mean(dim=-1)

    def _scalar_centers(self) -> torch.Tensor:
        if self.centers_.shape[0] != 1:
            raise ValueError(
                "R2CCP conformal intervals are defined for one target column; this loss was "
                f"fitted on {self.centers_.shape[0]}."
            )
        return self.centers_[0].to(torch.float64)

    def conformity_score(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the interpolated bin probability at each target, shape (N,)."""
        m = self._scalar_centers()
        pi = output.softmax(dim=-1).to(torch.float64)
        y = target.reshape(-1).to(torch.float64)
        j = (torch.searchsorted(m, y, right=True) - 1).clamp(0, m.numel() - 2)
        left, right = pi.gather(1, j.unsqueeze(1))[:, 0], pi.gather(1, (j + 1).unsqueeze(1))[:, 0]
        frac = ((y - m[j]) / (m[j + 1] - m[j])).clamp(0, 1)
        return left + frac * (right - left)

    def calibrate(self, output: torch.Tensor, target: torch.Tensor) -> R2CCP:
        """Store the conformity scores of held-out calibration rows; returns ``self``."""
        with torch.no_grad():
            scores = self.conformity_score(output, target)
        self.calibration_scores_ = torch.sort(scores).values
        return self

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # The number of calibration scores varies: take the stored buffer's shape first.
        key = prefix + "calibration_scores_"
        if key in state_dict:
            self.calibration_scores_ = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def predict_intervals(self, output: torch.Tensor, alpha: float = 0.1) -> torch.Tensor:
        r"""Return the conformal prediction set of each row at miscoverage ``alpha``.

        Returns
        -------
        Tensor of shape (N, n_bins - 1, 2)
            Per row, the ``[lower, upper]`` part of each segment between neighbouring
            midpoints that belongs to the set; NaN for segments outside it. Their union is the
            set; ``nanmin`` / ``nanmax`` over segments give its enclosing interval.
        """
        n = self.calibration_scores_.numel()
        if n == 0:
            raise ValueError("Call calibrate(output, target) on held-out rows first.")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1). Got {alpha!r} instead.")
        rank = math.floor((n + 1) * alpha)
        threshold = -math.inf if rank < 1 else float(self.calibration_scores_[rank - 1])
        m = self._scalar_centers()
        pi = output.detach().softmax(dim=-1).to(torch.float64)
        left_p, right_p = pi[:, :-1], pi[:, 1:]
        left_m, right_m = m[:-1].expand_as(left_p), m[1:].expand_as(left_p)
        # On each segment the interpolated probability is linear: keep the part above threshold.
        slope = right_p - left_p
        safe = torch.where(slope == 0, torch.ones_like(slope), slope)
        crossing = left_m + (threshold - left_p) / safe * (right_m - left_m)
        lower = torch.where(left_p >= threshold, left_m, crossing)
        upper = torch.where(right_p >= threshold, right_m, crossing)
        keep = (left_p >= threshold) | (right_p >= threshold)
        nan = torch.full_like(lower, math.nan)
        return torch.stack([torch.where(keep, lower, nan), torch.where(keep, upper, nan)], -1)

    def extra_repr(self) -> str:
        return (
            f"n_bins={self.n_bins}, q={self.q}, tau={self.tau}, "
            f"anneal_epochs={self.anneal_epochs}, reduction={self.reduction!r}"
        )
