"""KL divergence from probability targets (soft labels) to the softmax of the logits."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_float_target

__all__ = ["KLDiv"]


class KLDiv(LossModule):
    r"""KL divergence from soft targets to the softmax distribution.

    .. math::

        \ell_i = \sum_c q_{ic}\,(\log q_{ic} - \log p_{ic}), \qquad 0 \log 0 = 0

    Input logits have shape (N, C); targets are probability rows of shape (N, C). The soft
    cross-entropy :math:`-\sum_c q_{ic}\log p_{ic}` differs by :math:`H(q_i)`, a constant
    with the same gradient.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    ``"mean"`` averages over rows, which is ``torch.nn.KLDivLoss(reduction="batchmean")`` on
    ``log_softmax``; torch's own ``"mean"`` divides by :math:`N \cdot C` instead. One-hot
    targets give ``cross_entropy``.

    References
    ----------
    J. Terven et al. "Loss Functions and Metrics in Deep Learning." arXiv:2307.02694.

    Examples
    --------
    >>> import torch
    >>> loss = KLDiv(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> soft = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    >>> [round(v, 4) for v in loss(logits, soft).tolist()]
    [0.1269, 0.4338, 0.0, 0.3681]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        q = self._soft_target(input, target)
        # xlogy gives 0 log 0 = 0 without a NaN gradient for q = 0.
        return (torch.xlogy(q, q) - q * input.log_softmax(dim=-1)).sum(dim=1)

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        # torch's kernel computes the same xlogy(q, q) - q log p; batchmean divides by N.
        q = self._soft_target(input, target)
        return F.kl_div(input.log_softmax(dim=-1), q, reduction="batchmean")

    @staticmethod
    def _soft_target(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape != input.shape:
            raise ValueError(
                f"kl_div needs probability targets of the output's shape {tuple(input.shape)}, "
                f"one distribution per row. Got shape {tuple(target.shape)}."
            )
        return as_float_target(target, input)
