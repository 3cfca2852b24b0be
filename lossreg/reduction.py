"""reduce(): the one place where per-sample losses become "mean", "sum" or stay "none"."""

from __future__ import annotations

from typing import Any

import torch

from lossreg.errors import InvalidReductionError

__all__ = ["REDUCTIONS", "check_batch_reduction", "check_reduction", "reduce", "row_weights"]

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: Any) -> str:
    """Return ``reduction`` if it is ``"mean"``, ``"sum"`` or ``"none"``, else raise."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise InvalidReductionError(
            f"reduction must be one of 'mean', 'sum', 'none'. Got {reduction!r} instead."
        )
    return reduction


def check_batch_reduction(reduction: Any, loss: str) -> str:
    """Return ``reduction`` if it is ``"mean"`` or ``"sum"``, the only ones a batch-level loss has.

    A batch-level loss (``LossSpec(per_sample=False)``: pairs, triplets, batch statistics) has
    no value per row, so ``"none"`` is rejected with a message naming the loss.
    """
    if not isinstance(reduction, str) or reduction not in ("mean", "sum"):
        raise InvalidReductionError(
            f"Loss {loss!r} is batch-level (it has no per-row value), so reduction must be "
            f"'mean' or 'sum'. Got {reduction!r} instead."
        )
    return reduction


def row_weights(sample_weight: Any, n: int, like: torch.Tensor) -> torch.Tensor:
    """Return one non-negative weight per row as ``like``'s dtype and device (ones if None).

    For batch-level losses, which weigh rows inside their own statistics rather than through
    :func:`reduce`.
    """
    if sample_weight is None:
        return torch.ones(n, dtype=like.dtype, device=like.device)
    weight = torch.as_tensor(sample_weight, dtype=like.dtype, device=like.device).reshape(-1)
    if weight.shape[0] != n:
        raise ValueError(
            f"sample_weight has {weight.shape[0]} values but the batch has {n} rows; pass one "
            "weight per row."
        )
    if bool((weight < 0).any()):
        raise ValueError("sample_weight must be non-negative.")
    return weight


def reduce(
    per_sample: torch.Tensor,
    reduction: str = "mean",
    sample_weight: torch.Tensor | Any | None = None,
) -> torch.Tensor:
    """Reduce one loss value per row, optionally weighted.

    Parameters
    ----------
    per_sample : Tensor of shape (N,)
        One loss value per row.
    reduction : {"mean", "sum", "none"}
        ``mean`` is the weighted mean :math:`\\sum_i w_i \\ell_i / \\sum_i w_i` (plain mean
        without weights), ``sum`` is :math:`\\sum_i w_i \\ell_i`, ``none`` returns
        :math:`w_i \\ell_i`.
    sample_weight : array-like of shape (N,), optional
        Non-negative row weights. Class weights are passed as the weight of each row's class,
        which gives torch's convention (the mean divides by :math:`\\sum_i w_{y_i}`).

    Returns
    -------
    Tensor
        A scalar for ``mean`` and ``sum``, shape (N,) for ``none``.

    Examples
    --------
    >>> import torch
    >>> from lossreg import reduce
    >>> losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    >>> reduce(losses, "mean", sample_weight=torch.tensor([1.0, 1.0, 0.0, 2.0]))
    tensor(2.7500)
    """
    check_reduction(reduction)
    if per_sample.ndim != 1:
        raise ValueError(
            f"A per-sample loss must have shape (N,), one value per row. Got shape "
            f"{tuple(per_sample.shape)}; average (or sum) over the other dimensions first."
        )
    if sample_weight is None:
        if reduction == "none":
            return per_sample
        return per_sample.sum() if reduction == "sum" else per_sample.mean()
    weight = torch.as_tensor(sample_weight, dtype=per_sample.dtype, device=per_sample.device)
    weight = weight.reshape(-1)
    if weight.shape[0] != per_sample.shape[0]:
        raise ValueError(
            f"sample_weight has {weight.shape[0]} values but the loss has {per_sample.shape[0]} "
            "rows; pass one weight per row."
        )
    weighted = per_sample * weight
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    # A batch whose weights are all zero contributes a loss of zero rather than 0/0 = NaN.
    return weighted.sum() / weight.sum().clamp_min(torch.finfo(per_sample.dtype).tiny)
