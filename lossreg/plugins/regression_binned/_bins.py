"""Shared helpers of the binned regression losses: fitted target ranges, bins, the link.

Every output (target column) k gets its own ``n_bins`` bins over its training range; the
network emits ``n_outputs * n_bins`` logits, output k's block being columns
``k * n_bins .. (k + 1) * n_bins - 1`` (after ``bin_offset`` leading columns, if any).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import Link

__all__ = ["EXPECTED_VALUE", "bin_edges", "bin_logits", "output_ranges", "row_targets"]


def output_ranges(
    target_min: float | Sequence[float], target_max: float | Sequence[float], margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the binned range ``(lo, hi)`` of each output as float64 tensors of shape (K,).

    ``margin`` is a fraction of the range added on each side. A degenerate range (all training
    targets equal) is widened by half a target unit on each side so that bins have a width.
    """
    lo = torch.as_tensor(target_min, dtype=torch.float64).reshape(-1)
    hi = torch.as_tensor(target_max, dtype=torch.float64).reshape(-1)
    if lo.shape != hi.shape:
        raise ValueError(
            f"target_min has {lo.numel()} values but target_max has {hi.numel()}; pass one "
            "per target column."
        )
    if bool((hi < lo).any()):
        raise ValueError(f"target_max={target_max!r} is below target_min={target_min!r}.")
    flat = hi == lo
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    return torch.where(flat, lo - 0.5, lo), torch.where(flat, hi + 0.5, hi)


def bin_edges(lo: torch.Tensor, hi: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Return the edges of ``n_bins`` equal-width bins per output, shape (K, n_bins + 1)."""
    steps = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    return lo.unsqueeze(1) + (hi - lo).unsqueeze(1) * steps


def bin_logits(input: torch.Tensor, n_outputs: int, n_bins: int, offset: int = 0) -> torch.Tensor:
    """Return the bin logits of each output, shape (N, K, n_bins)."""
    width = offset + n_outputs * n_bins
    if input.ndim != 2 or input.shape[1] != width:
        raise ValueError(
            f"This binned loss needs {width} outputs per row ({offset} + n_outputs={n_outputs} "
            f"x n_bins={n_bins}). Got shape {tuple(input.shape)}."
        )
    return input[:, offset:].reshape(input.shape[0], n_outputs, n_bins)


def row_targets(target: torch.Tensor, n_rows: int, n_outputs: int) -> torch.Tensor:
    """Return float targets of shape (N, K) from (N,), (N, 1) or (N, K)."""
    if target.numel() != n_rows * n_outputs:
        raise ValueError(
            f"Expected {n_outputs} target value(s) per row for {n_rows} rows; got target shape "
            f"{tuple(target.shape)}."
        )
    return target.reshape(n_rows, n_outputs)


def _expected_value(output: torch.Tensor, criterion: Any) -> torch.Tensor:
    centers = getattr(criterion, "centers_", None)
    if centers is None:
        raise ValueError(
            "The expected-bin-value link needs the fitted loss module (it holds the bin "
            "centres); pass the criterion to the link."
        )
    n_outputs, n_bins = centers.shape
    logits = bin_logits(output, n_outputs, n_bins, getattr(criterion, "bin_offset", 0))
    value = (logits.softmax(dim=-1) * centers.to(output.dtype)).sum(dim=-1)
    return value[:, 0] if n_outputs == 1 else value


#: Prediction = sum_k softmax(z)_k c_k per output, with the criterion's ``centers_`` (K, n_bins).
EXPECTED_VALUE = Link(
    "expected_bin_value",
    _expected_value,
    "value",
    "expected bin value sum_k softmax(z)_k c_k with the fitted bin centres, per output",
)
