"""Multi-hypothesis (winner-takes-all) squared error over several prediction heads."""

from __future__ import annotations

import math
from typing import Any

import torch

from lossreg import Link, LossModule

__all__ = ["BEST_HEAD", "MultiHypothesisMinMSE"]


class MultiHypothesisMinMSE(LossModule):
    r"""Winner-takes-all squared error: only the best of :math:`H` heads is penalised.

    .. math::

        m_{ih} = \frac1K\sum_k(\hat y_{ihk}-y_{ik})^2,\qquad
        \ell_i = (1-\epsilon)\min_h m_{ih} + \frac{\epsilon}{H-1}\sum_{h\ne h^*_i} m_{ih}

    (relaxed WTA for :math:`\epsilon>0`); with ``log=True`` the paper's PSNR form
    :math:`\ell_i = w\,\frac{10}{\ln 10}\log(\min_h m_{ih}+10^{-8})` is used instead.

    Input (N, H * K): head :math:`h` is columns :math:`hK..hK+K-1`; float targets (N,) or
    (N, K). Prediction: the head stored in ``head_``, chosen on held-out rows: on the
    validation split after every epoch when the estimator has one (``early_stopping=True``),
    or by calling :meth:`select_head` with your own held-out rows; head 0 otherwise.

    Parameters
    ----------
    n_heads : int >= 1, default=4
        Number of hypotheses :math:`H`.
    epsilon : float in [0, 1), default=0.0
        Relaxed-WTA weight spread over the losing heads.
    log : bool, default=False
        PSNR form (for reproduction; near-zero errors dominate it on scalar targets).
    log_weight : float in (0, inf), default=1.0
        :math:`w` of the PSNR form.
    n_outputs : int
        Number of target columns :math:`K` (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against Liu-SD/multi-output-deblur ``MultiHeadPSNRLoss``: the per-head MSE, the
    minimum over heads and :math:`w\cdot 10/\ln 10\cdot\log(\cdot+10^{-8})` agree. Only the
    winning head gets a gradient; ``epsilon > 0`` keeps the other heads alive.

    References
    ----------
    S. Liu, P. Qiao, Y. Dou. "Multi-Outputs Is All You Need For Deblur." arXiv:2208.13029,
    2022.

    Examples
    --------
    >>> import torch
    >>> loss = MultiHypothesisMinMSE(n_heads=2, n_outputs=1, reduction="none")
    >>> out = loss(torch.tensor([[0.0, 1.0], [2.0, 3.0], [1.0, 1.0], [-1.0, 0.5]]),
    ...            torch.tensor([1.0, 0.0, 0.0, 0.0]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.0, 4.0, 1.0, 0.25]
    """

    def __init__(
        self,
        *,
        n_heads: int = 4,
        epsilon: float = 0.0,
        log: bool = False,
        log_weight: float = 1.0,
        n_outputs: int,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_heads = n_heads
        self.epsilon = epsilon
        self.log = log
        self.log_weight = log_weight
        self.n_outputs = n_outputs
        # The head used for prediction; chosen on held-out rows by select_head().
        self.register_buffer("head_", torch.zeros((), dtype=torch.int64))

    def head_errors(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return :math:`m_{ih}`, the mean squared error of each head, shape (N, H)."""
        n, k = input.shape[0], int(self.n_outputs)
        input = input.reshape(n, -1)  # one head of one output may arrive as (N,)
        if input.shape[1] != self.n_heads * k:
            raise ValueError(
                f"multi_hypothesis_min_mse needs n_heads * n_outputs = {self.n_heads * k} "
                f"outputs per row. Got shape {tuple(input.shape)}."
            )
        heads = input.reshape(n, self.n_heads, k)
        y = target.to(input.dtype).reshape(n, 1, k)
        return (heads - y).square().mean(dim=-1)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        errors = self.head_errors(input, target)
        best = errors.min(dim=1).values
        if self.log:
            return self.log_weight * 10 / math.log(10) * torch.log(best + 1e-8)
        if self.epsilon == 0 or self.n_heads == 1:
            return best
        rest = (errors.sum(dim=1) - best) / (self.n_heads - 1)
        return (1 - self.epsilon) * best + self.epsilon * rest

    @torch.no_grad()
    def select_head(self, output: torch.Tensor, target: torch.Tensor) -> int:
        """Store and return the head with the lowest mean squared error on held-out rows."""
        head = int(self.head_errors(output, target).mean(dim=0).argmin())
        self.head_.fill_(head)
        return head

    def on_validation_end(
        self, input: torch.Tensor, target: torch.Tensor, **fields: torch.Tensor
    ) -> None:
        """Choose the prediction head on the estimator's validation split, after each epoch.

        The estimators call this when they hold out a validation split
        (``early_stopping=True``), so the head that predicts is the one with the lowest error
        on rows the network was not trained on.
        """
        self.select_head(input, target)

    def extra_repr(self) -> str:
        return (
            f"n_heads={self.n_heads}, epsilon={self.epsilon}, log={self.log}, "
            f"n_outputs={self.n_outputs}, reduction={self.reduction!r}"
        )


def _best_head(output: torch.Tensor, criterion: Any) -> torch.Tensor:
    if getattr(criterion, "head_", None) is None:
        raise ValueError("The best-head link needs the fitted multi_hypothesis_min_mse module.")
    k = int(criterion.n_outputs)
    output = output.reshape(output.shape[0], -1)
    heads = output.reshape(output.shape[0], criterion.n_heads, k)
    chosen = heads[:, int(criterion.head_)]
    return chosen[:, 0] if k == 1 else chosen


#: Prediction = the head stored in the criterion's ``head_`` buffer.
BEST_HEAD = Link(
    "best_head",
    _best_head,
    "value",
    "the hypothesis head chosen on held-out rows (criterion.head_; head 0 by default)",
)
