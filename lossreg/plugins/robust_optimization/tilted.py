"""KL-regularised instance reweighting: the tilted loss, tau * log mean exp(loss / tau)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ._private import BatchWrapper, batch_reduce, row_weights

__all__ = ["KLDRO"]


class KLDRO(BatchWrapper):
    r"""KL-DRO over the rows of a batch, in closed form (the tilted loss).

    .. math::

        \max_{w\in\Delta}\sum_iw_i\ell_i-\tau\,\mathrm{KL}(w\Vert s/\textstyle\sum s)
        = \tau\log\frac{\sum_is_ie^{\ell_i/\tau}}{\sum_is_i},
        \qquad w_i\propto s_ie^{\ell_i/\tau},

    computed with a logsumexp; its gradient is :math:`\sum_iw_i\nabla\ell_i`. :math:`s` are
    the sample weights (1 without them), so a weight-2 row counts as two copies of the row.

    Input, target and link are those of ``base``.

    Parameters
    ----------
    base : str, default="cross_entropy"
    base_params : dict or None, default=None
    tau : float > 0, default=1.0
        Temperature; small :math:`\tau` approaches the largest loss of the batch, large
        :math:`\tau` the mean (ERM).
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` multiplies the value by the batch's total row weight.

    Notes
    -----
    Checked against the TERM paper (Li et al.): the :math:`t`-tilted risk
    :math:`\frac1t\log\frac1N\sum_ie^{t f_i}` with :math:`t=1/\tau` (agreement). The value
    depends on the batch (it is a batch-level soft maximum), not on the batch size alone.

    References
    ----------
    Li, Beirami, Sanjabi, Smith, "Tilted Empirical Risk Minimization", ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> round(KLDRO(tau=1.0)(logits, labels).item(), 4)
    1.6051
    """

    _name = "kl_dro"

    def __init__(
        self,
        *,
        base: str = "cross_entropy",
        base_params: Mapping[str, Any] | None = None,
        tau: float = 1.0,
        reduction: str = "mean",
        **data_params: Any,
    ) -> None:
        super().__init__(base=base, base_params=base_params, reduction=reduction, **data_params)
        self.tau = tau

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return :math:`\\tau\\log(\\sum_i s_i e^{\\ell_i/\\tau} / \\sum_i s_i)`."""
        losses = self.base_losses(input, target, extras)
        weight = row_weights(sample_weight, losses)
        mass = weight.sum()
        # log s_i = -inf for zero-weight rows drops them from the logsumexp.
        value = self.tau * (torch.logsumexp(losses / self.tau + weight.log(), dim=0) - mass.log())
        return batch_reduce(value, self.reduction, mass)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau!r}"
