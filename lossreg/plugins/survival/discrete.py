"""Discrete-time survival: the logistic-hazard negative log-likelihood over time bins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import Link, LossModule, as_float_target

from ._private import event_of

__all__ = ["LOGISTIC_HAZARD_MEDIAN_LINK", "LogisticHazard"]


class LogisticHazard(LossModule):
    r"""Negative log-likelihood of discrete-time hazards :math:`h_{ik} = \sigma(z_{ik})`.

    .. math::

        \ell_i = -\Big[\sum_{k<\tau_i}\log(1-h_{ik}) + \delta_i\log h_{i\tau_i}
                 + (1-\delta_i)\log(1-h_{i\tau_i})\Big]

    with :math:`\log(1-\sigma(z)) = -\mathrm{softplus}(z)` and
    :math:`\log\sigma(z) = -\mathrm{softplus}(-z)`. Output (N, T) hazard logits over T time
    bins; target: observed times (N,); ``event``: 1 = event, 0 = censored. Row :math:`i` falls
    in bin :math:`\tau_i`, the first bin whose upper edge is :math:`\ge t_i` (times past the
    last edge go in the last bin). A censored row survives its own bin (pycox convention).

    Parameters
    ----------
    n_bins : int in [1, inf), default=10
        Number of equal-width bins on :math:`[0, t_{\max}]` (``cuts=None``).
    cuts : sequence of increasing floats > 0, or None, default=None
        Upper bin edges; overrides ``n_bins`` and ``target_max``.
    target_max : float
        Largest training time (data param): the last edge of the equal-width bins.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The standard discrete-hazard NLL: ``pycox.models.loss.nll_logistic_hazard`` computes the
    same value as the cumulative sum of per-bin binary cross-entropies (targets 1 at the event
    bin, 0 elsewhere) taken at :math:`\tau_i` (the second reference test). pycox's default
    discretisation is also equal-width (``LabTransDiscreteTime``, ``scheme="equidistant"``),
    but it rounds event and censoring times to bin edges differently; here both use the bin
    that contains the time. The ad-creative paper's own two-head loss is not confirmed, so
    this is not claimed to reproduce it. Predict the median time (the upper edge of the first
    bin where :math:`S \le 1/2`, the last edge if never) with ``logistic_hazard_median``;
    :meth:`survival_curve` gives :math:`S_{ik}=\prod_{j\le k}(1-h_{ij})` and
    :meth:`risk_score` :math:`1 - S_{iT}`.

    References
    ----------
    H. Kvamme, Ø. Borgan. "Continuous and Discrete-Time Survival Prediction with Neural
    Networks." Lifetime Data Analysis 27(4), 2021, arXiv:1910.06724.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0], [1.0, -1.0], [-2.0, 2.0], [0.0, 3.0]])
    >>> loss = LogisticHazard(n_bins=2, target_max=2.0, reduction="none")
    >>> times = torch.tensor([0.5, 1.5, 1.5, 2.5])
    >>> [round(v, 4) for v in loss(logits, times, event=torch.tensor([1, 1, 0, 0])).tolist()]
    [0.6931, 2.6265, 2.2539, 3.7417]
    """

    def __init__(
        self,
        *,
        n_bins: int = 10,
        cuts: Sequence[float] | None = None,
        target_max: float,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_bins = n_bins
        self.cuts = cuts
        self.target_max = target_max
        if cuts is not None:
            edges = torch.as_tensor(cuts, dtype=torch.float64).reshape(-1)
            if edges.numel() == 0 or bool((edges[1:] <= edges[:-1]).any()):
                raise ValueError(f"cuts must be increasing upper bin edges. Got {cuts!r}.")
        else:
            if not target_max > 0:
                raise ValueError(f"target_max must be positive. Got {target_max!r}.")
            edges = torch.linspace(0.0, float(target_max), n_bins + 1, dtype=torch.float64)[1:]
        self.register_buffer("edges_", edges)

    def bin_index(self, times: torch.Tensor) -> torch.Tensor:
        """Return the bin :math:`\\tau` of each time, shape (N,), int64."""
        edges = self.edges_.to(device=times.device)
        index = torch.searchsorted(edges, times.reshape(-1).to(edges.dtype), side="left")
        return index.clamp_max(edges.numel() - 1)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, *, event: Any = None, **extras: Any
    ) -> torch.Tensor:
        input = self._bins(input)
        if input.ndim != 2 or input.shape[1] != self.edges_.numel():
            raise ValueError(
                f"Loss 'logistic_hazard' has {self.edges_.numel()} time bins, so the output "
                f"must have shape (N, {self.edges_.numel()}). Got {tuple(input.shape)}."
            )
        times = as_float_target(target.reshape(-1), input[:, 0])
        tau = self.bin_index(times)
        delta = event_of(event, input.shape[0], input)
        log_survive = -F.softplus(input)  # log(1 - h) per bin
        before = torch.arange(input.shape[1], device=input.device)[None, :] < tau[:, None]
        survived = (log_survive * before.to(input.dtype)).sum(dim=1)
        z_tau = input.gather(1, tau[:, None])[:, 0]
        at_tau = delta * -F.softplus(-z_tau) + (1 - delta) * -F.softplus(z_tau)
        return -(survived + at_tau)

    def _bins(self, output: torch.Tensor) -> torch.Tensor:
        """One time bin: a flat (N,) output (what a one-output network gives) is (N, 1)."""
        return output.unsqueeze(1) if output.ndim == 1 and self.edges_.numel() == 1 else output

    def survival_curve(self, output: torch.Tensor) -> torch.Tensor:
        """Return :math:`S_{ik}` at each bin's upper edge, shape (N, T)."""
        output = self._bins(output)
        return torch.exp(torch.cumsum(-F.softplus(output), dim=1))

    def survival(self, output: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Return :math:`S(t)` on a grid of times (T',), shape (N, T'): a step function, 1
        before the first edge and :math:`S_{ik}` from edge :math:`k` until the next one."""
        curve = self.survival_curve(output)
        ones = torch.ones_like(curve[:, :1])
        grid = torch.as_tensor(times, dtype=self.edges_.dtype, device=self.edges_.device)
        passed = torch.searchsorted(self.edges_, grid.reshape(-1), side="right")
        return torch.cat([ones, curve], dim=1)[:, passed.to(curve.device)]

    def risk_score(self, output: torch.Tensor) -> torch.Tensor:
        """Return the event probability by the last edge, :math:`1 - S_{iT}`, shape (N,)."""
        output = self._bins(output)
        return -torch.expm1(torch.cumsum(-F.softplus(output), dim=1)[:, -1])

    def median_time(self, output: torch.Tensor) -> torch.Tensor:
        """Return the upper edge of the first bin with :math:`S \\le 1/2` (last edge if none)."""
        below = self.survival_curve(output) <= 0.5
        first = torch.where(below.any(dim=1), below.to(torch.int64).argmax(dim=1), -1)
        return self.edges_.to(output.dtype)[first]

    def extra_repr(self) -> str:
        return (
            f"n_bins={self.n_bins}, cuts={self.cuts}, target_max={self.target_max}, "
            f"reduction={self.reduction!r}"
        )


def _median(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None:
        raise ValueError("The logistic_hazard_median link needs the fitted loss (bin edges).")
    return criterion.median_time(output)


#: Predicts the median survival time from discrete hazards (upper edge of the median bin).
LOGISTIC_HAZARD_MEDIAN_LINK = Link(
    "logistic_hazard_median", _median, "value", "median survival time from discrete hazards"
)
