"""Shared helpers of the binned regression losses: the fitted target range, bins, the link."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import Link

__all__ = ["EXPECTED_VALUE", "bin_edges", "scalar_range", "scalar_target"]


def scalar_range(
    target_min: float | Sequence[float], target_max: float | Sequence[float], margin: float
) -> tuple[float, float]:
    """Return the binned range ``[lo, hi]`` of a scalar target, widened by ``margin``.

    ``margin`` is a fraction of the range added on each side. A degenerate range (all training
    targets equal) is widened to one target unit so that the bins have a positive width.
    """
    lo, hi = _scalar(target_min, "target_min"), _scalar(target_max, "target_max")
    if hi < lo:
        raise ValueError(f"target_max={hi!r} is smaller than target_min={lo!r}.")
    if hi == lo:
        return lo - 0.5, hi + 0.5
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def _scalar(value: float | Sequence[float], name: str) -> float:
    if isinstance(value, Sequence | torch.Tensor) and not isinstance(value, str):
        values = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
        if values.numel() != 1:
            raise ValueError(
                f"Binned regression losses take one target column; {name} has "
                f"{values.numel()} values. Fit one model per target."
            )
        return float(values[0])
    return float(value)


def bin_edges(lo: float, hi: float, n_bins: int) -> torch.Tensor:
    """Return the ``n_bins + 1`` edges of equal-width bins on ``[lo, hi]`` (float64)."""
    return torch.linspace(lo, hi, n_bins + 1, dtype=torch.float64)


def scalar_target(target: torch.Tensor, input: torch.Tensor) -> torch.Tensor:
    """Return a float target of shape (N,) for logits of shape (N, K)."""
    if input.ndim != 2:
        raise ValueError(
            f"Binned losses take logits of shape (N, n_bins). Got shape {tuple(input.shape)}."
        )
    if target.numel() != input.shape[0]:
        raise ValueError(
            f"Binned losses take one scalar target per row: got target shape "
            f"{tuple(target.shape)} for {input.shape[0]} rows."
        )
    return target.reshape(-1).to(input.dtype)


def _expected_value(output: torch.Tensor, criterion: Any) -> torch.Tensor:
    centers = getattr(criterion, "centers_", None)
    if centers is None:
        raise ValueError(
            "The expected-bin-value link needs the fitted loss module (it holds the bin "
            "centres); pass the criterion to the link."
        )
    # Only the bin logits; a loss with extra output columns (a regression head) sets bin_offset.
    logits = output[:, getattr(criterion, "bin_offset", 0) :]
    return logits.softmax(dim=-1) @ centers.to(output.dtype)


#: Prediction = sum_k softmax(z)_k c_k with the criterion's bin centres (buffer ``centers_``).
EXPECTED_VALUE = Link(
    "expected_bin_value",
    _expected_value,
    "value",
    "expected bin value sum_k softmax(z)_k c_k with the fitted bin centres",
)
