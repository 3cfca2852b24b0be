"""Dynamic loss-based sample reweighting: softmax weights from min-max normalised batch losses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ._private import BatchWrapper, batch_reduce, row_weights

__all__ = ["LossReweighting"]


class LossReweighting(BatchWrapper):
    r"""Reweight a batch's rows by a function of their min-max normalised losses.

    With :math:`u_i=\frac{2\delta\ell_i-\delta(\ell_{\max}+\ell_{\min})}{\ell_{\max}-\ell_{\min}}
    \in[-\delta,\delta]` (losses detached) and a strategy :math:`f`,

    .. math::

        w = \mathrm{softmax}(f(u)/r), \qquad L=\sum_iw_i\ell_i,

    with ``linupper`` :math:`f=\min(u+\delta,\delta)`, ``quadratic`` :math:`1-u^2/\delta^2`
    (favours medium losses), ``extremes`` :math:`|u|` (favours both tails), ``uniform``
    :math:`f=u`. Sample weights multiply the softmax weights
    (:math:`w_i\propto s_ie^{f(u_i)/r}`).

    Input, target and link are those of ``base``.

    Parameters
    ----------
    base : str, default="cross_entropy"
    base_params : dict or None, default=None
    strategy : {"linupper", "quadratic", "extremes", "uniform"}, default="linupper"
    delta : float > 0, default=1.0
        Half-width of the normalised loss range.
    r : float > 0, default=1.0
        Softmax temperature.
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` multiplies the value by the batch's total row weight.

    Notes
    -----
    Checked against the authors' code (sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025,
    ``src/trainer.py``): ``h_func`` (the min-max map to :math:`[-\delta,\delta]`),
    ``f_func_linupper``, ``f_func_mid`` (= quadratic), ``f_func_extremes`` and
    ``g_func`` :math:`=e^{f/r}` (``kl_reg`` :math:`=r`, default 1) agree with the catalogue. The
    reference guards :math:`\ell_{\max}-\ell_{\min}` with ``max(., 1e-6)``; lossreg returns the
    plain mean when all losses are equal, which gives the same uniform weights. The
    reference also skips reweighting for its first ``burnout_steps``; lossreg does not.

    References
    ----------
    Sow, Woisetschläger, Bulusu, Wang, Jacobsen, Liang, "Dynamic Loss-Based Sample
    Reweighting for Improved Large Language Model Pretraining", ICLR 2025, arXiv:2502.06733.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> round(LossReweighting()(logits, labels).item(), 4)
    1.5749
    """

    _name = "loss_reweighting"

    def __init__(
        self,
        *,
        base: str = "cross_entropy",
        base_params: Mapping[str, Any] | None = None,
        strategy: str = "linupper",
        delta: float = 1.0,
        r: float = 1.0,
        reduction: str = "mean",
        **data_params: Any,
    ) -> None:
        super().__init__(base=base, base_params=base_params, reduction=reduction, **data_params)
        self.strategy = strategy
        self.delta = delta
        self.r = r

    def weights(self, losses: torch.Tensor, sample_weight: torch.Tensor) -> torch.Tensor:
        """The detached batch weights (sum 1)."""
        losses = losses.detach()
        lo, hi = losses.min(), losses.max()
        if not bool(hi > lo):
            return sample_weight / sample_weight.sum()
        d = self.delta
        u = (2 * d * losses - d * (hi + lo)) / (hi - lo)
        if self.strategy == "linupper":
            f = torch.clamp(u + d, max=d)
        elif self.strategy == "quadratic":
            f = 1 - u.square() / d**2
        elif self.strategy == "extremes":
            f = u.abs()
        else:
            f = u
        return torch.softmax(f / self.r + sample_weight.log(), dim=0)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return :math:`\\sum_i w_i \\ell_i` with detached weights."""
        losses = self.base_losses(input, target, extras)
        weight = row_weights(sample_weight, losses)
        value = (self.weights(losses, weight) * losses).sum()
        return batch_reduce(value, self.reduction, weight.sum())

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, strategy={self.strategy!r}, delta={self.delta!r}, "
            f"r={self.r!r}"
        )
