"""Helpers shared by the regression losses: row means, head splitting, batch-level reduction."""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
from torch import nn

from lossreg import as_float_target, check_batch_reduction, row_weights

__all__ = [
    "BatchLoss",
    "beta_nll_weight",
    "check_batch_reduction",
    "log_error",
    "per_row",
    "row_weights",
    "scheduled_value",
    "split_heads",
    "weighted_mean",
]


def per_row(elements: torch.Tensor) -> torch.Tensor:
    """Average each row's per-output values ((N,) stays as is)."""
    if elements.ndim == 1:
        return elements
    if elements.ndim == 2 and elements.shape[1] == 1:
        # One column (the usual head): the row mean is the value itself, and a view costs
        # no kernel and no backward node where mean(dim=1) costs one of each.
        return elements[:, 0]
    return elements.reshape(elements.shape[0], -1).mean(dim=1)


def split_heads(
    input: torch.Tensor, target: torch.Tensor, n_heads: int, loss: str
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Split an (N, H*K) output into H blocks of shape (N, K) and shape the target as (N, K).

    Block ``h`` holds columns ``h*K .. (h+1)*K - 1``: for two heads and K outputs, the first K
    columns are the means and the last K the scale parameters.
    """
    if input.ndim != 2 or input.shape[1] % n_heads != 0:
        raise ValueError(
            f"Loss {loss!r} needs an output of shape (N, {n_heads}*K): {n_heads} blocks of K "
            f"columns. Got shape {tuple(input.shape)}."
        )
    k = input.shape[1] // n_heads
    heads = [input[:, h * k : (h + 1) * k] for h in range(n_heads)]
    return heads, as_float_target(target.reshape(target.shape[0], -1), heads[0])


def beta_nll_weight(log_var: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Return the detached β-NLL weight :math:`\sigma^{2\beta} = e^{\beta s}`.

    The exponent is capped at half the log of the largest float so that an extreme
    log-variance gives a large but finite weight instead of inf (and a nan gradient).
    """
    cap = 0.5 * math.log(torch.finfo(log_var.dtype).max)
    return torch.exp((beta * log_var).clamp_max(cap)).detach()


def scheduled_value(start: float, end: float | None, kind: str, progress: float) -> float:
    """Interpolate a hyperparameter from ``start`` to ``end`` at ``progress`` in [0, 1].

    ``constant`` (or ``end=None``) keeps ``start``; ``linear`` interpolates arithmetically,
    ``exponential`` geometrically (constant ratio per epoch; both ends must be positive).
    """
    if kind == "constant" or end is None:
        return float(start)
    progress = min(max(progress, 0.0), 1.0)
    if kind == "linear":
        return float(start + (end - start) * progress)
    return float(math.exp(math.log(start) + (math.log(end) - math.log(start)) * progress))


def log_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return log1p(y) - log1p(ŷ), refusing targets <= -1 and clamping ŷ above -1."""
    if bool((target <= -1).any()):
        bad = target[target <= -1].reshape(-1)[0].item()
        raise ValueError(
            f"Logarithmic errors need targets greater than -1. Got a target of {bad!r}; shift "
            "or rescale the target, or use 'mse'."
        )
    eps = torch.finfo(pred.dtype).eps
    # log1p(ŷ) is undefined for ŷ <= -1; the clamp keeps early, unconstrained outputs finite.
    return torch.log1p(target) - torch.log1p(pred.clamp_min(-1 + eps))


class BatchLoss(nn.Module, abc.ABC):
    """Base class of the batch-level losses: one value per batch, no per-row form.

    Sample weights act as frequency weights: a row of integer weight ``w`` counts as ``w``
    copies of the row in every batch statistic (means, sums, standard deviations). ``"mean"``
    returns the batch statistic; ``"sum"`` multiplies it by the total weight (the number of
    rows without weights), as :func:`lossreg.reduce` does for per-sample losses.
    ``reduction="none"`` is refused: there is no per-row value.
    """

    #: Fewest rows (of positive weight) the statistic is defined on.
    min_rows = 1

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_batch_reduction(reduction, type(self).__name__)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the batch statistic (times the total weight for ``"sum"``)."""
        target = as_float_target(target, input)
        pred = input.reshape(input.shape[0], -1)
        target = target.reshape(target.shape[0], -1)
        weight = row_weights(sample_weight, pred.shape[0], pred)
        if int((weight > 0).sum()) < self.min_rows:
            raise ValueError(
                f"Loss {type(self).__name__} is a batch statistic that needs at least "
                f"{self.min_rows} rows of positive weight per batch. Got "
                f"{int((weight > 0).sum())}; use a larger batch (and drop_last=True)."
            )
        value = self.batch_loss(pred, target, weight)
        return value * weight.sum() if self.reduction == "sum" else value

    @abc.abstractmethod
    def batch_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """Return the statistic of (N, K) predictions and targets under row weights (N,)."""

    def extra_repr(self) -> str:
        names = [n for n in ("eps", "normalizer", "definition") if hasattr(self, n)]
        parts = [f"{n}={getattr(self, n)!r}" for n in names]
        return ", ".join([*parts, f"reduction={self.reduction!r}"])


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of (N, K) values over all elements, each row counted ``weight`` times."""
    return (values * weight[:, None]).sum() / (weight.sum() * values.shape[1])
