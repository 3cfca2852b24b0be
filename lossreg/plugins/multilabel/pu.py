"""PU-MLC: variational positive-unlabeled loss per label, with re-balance and temperature."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._private import check_batch_reduction, row_weights

__all__ = ["PUMLC"]


class PUMLC(nn.Module):
    r"""Positive-unlabeled multilabel loss (variational PU with adaptive factors; batch-level).

    Targets: 1 = positive, 0 or -1 = unlabeled (negatives are never trusted). Per label c,
    over the rows of the batch (:math:`P_c` = rows with :math:`y_{ic} = 1`):

    .. math::

        T_c = \min\bigl(1, \alpha\,\mathrm{std}_i(z_{ic})\bigr),\quad
        s_{ic} = \sigma(z_{ic}/T_c),\quad
        w_c = \bigl(\mathrm{mean}_i\, s_{ic}\bigr)^{\gamma},

    .. math::

        L = \sum_c \Bigl[w_c \log \mathrm{mean}_i\, s_{ic}
            - \mathrm{mean}_{i \in P_c} \log s_{ic}\Bigr]

    with :math:`T_c` and :math:`w_c` detached and std the population standard deviation.
    A label without positives in the batch contributes only its first term. Logits (N, L).

    Parameters
    ----------
    gamma : float >= 0, default=0.0
        Re-balance exponent; 0 switches the re-balance factor off.
    alpha : float > 0, default=1.0
        Temperature scale.
    reduction : {"mean", "sum"}, default="mean"
        ``mean`` returns L; ``sum`` returns N L. No per-row form.

    Notes
    -----
    Checked against TAKELAMAG/PU-MLC ``src/loss_functions/vpu_loss.py`` (``vpuLoss``): same
    terms; the reference adds 1e-10 inside its logs and computes
    :math:`\log\sigma` as ``log(sigmoid + 1e-10)``, here :math:`\log s = -\mathrm{softplus}(-z/T)`
    exactly and :math:`\log\mathrm{mean}_i s` by ``logsumexp``. The reference requires
    :math:`\gamma, \alpha` on the command line without defaults; :math:`\gamma=0`,
    :math:`\alpha=1` follow a reimplementation (official defaults unconfirmed). A constant
    column (std 0) would divide by zero; its temperature is floored at 1e-12. Sample weights
    :math:`s_i` turn every mean over rows into a weighted mean. The optional mixup
    regulariser re-forwards mixed inputs and is not part of the criterion.

    References
    ----------
    Z. Yuan, K. Zhang, T. Huang. "Positive Label Is All You Need for Multi-Label
    Classification." arXiv:2306.16016.

    Examples
    --------
    >>> import torch
    >>> loss = PUMLC()
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [0.0, 0.0]])
    >>> round(loss(logits, targets).item(), 4)
    -0.7884
    """

    def __init__(self, *, gamma: float = 0.0, alpha: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = check_batch_reduction("pu_mlc", reduction)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        z = input if input.ndim == 2 else input.reshape(input.shape[0], -1)
        y = target.reshape(z.shape).to(z.dtype)
        s = row_weights(sample_weight, z)
        total = s.sum().clamp_min(torch.finfo(z.dtype).tiny)
        with torch.no_grad():
            mean = (s * z).sum(dim=0) / total
            std = ((s * (z - mean).square()).sum(dim=0) / total).sqrt()
            # A constant column has std 0; the floor keeps z / T finite.
            temperature = (self.alpha * std).clamp(max=1.0).clamp_min(1e-12)
        scaled = z / temperature
        log_s = -F.softplus(-scaled)
        # log mean_i s_ic = logsumexp_i(log s_ic + log w_i) - log sum_i w_i.
        log_w = torch.log(s.clamp_min(torch.finfo(z.dtype).tiny))
        log_mean = torch.logsumexp(log_s + log_w, dim=0) - torch.log(total)
        with torch.no_grad():
            rebalance = torch.exp(self.gamma * log_mean)
        positive = (y == 1).to(z.dtype) * s
        n_pos = positive.sum(dim=0)
        pos_term = (positive * log_s).sum(dim=0) / n_pos.clamp_min(torch.finfo(z.dtype).tiny)
        pos_term = torch.where(n_pos > 0, pos_term, torch.zeros_like(pos_term))
        loss = (rebalance * log_mean - pos_term).sum()
        return loss if self.reduction == "mean" else loss * z.shape[0]

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, reduction={self.reduction!r}"
