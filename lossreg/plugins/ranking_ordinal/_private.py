"""Helpers shared by the ranking and ordinal losses: batch reduction, weights, levels."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lossreg import check_batch_reduction, row_weights

__all__ = [
    "check_batch_reduction",
    "level_values",
    "row_weights",
    "scores_of",
    "vector_buffer",
]


def scores_of(input: torch.Tensor, loss: str) -> torch.Tensor:
    """Return one score per row from an (N,) or (N, 1) output."""
    if input.ndim == 2 and input.shape[1] == 1:
        return input[:, 0]
    if input.ndim != 1:
        raise ValueError(
            f"Loss {loss!r} takes one score per row, shape (N,) or (N, 1). Got shape "
            f"{tuple(input.shape)}; build the network with one output."
        )
    return input


def vector_buffer(values: Sequence[float] | None) -> torch.Tensor | None:
    """Return a float64 tensor of a vector hyperparameter (cast per call), or None."""
    if values is None:
        return None
    return torch.as_tensor(values, dtype=torch.float64).reshape(-1)


def level_values(
    levels: torch.Tensor | None, n_levels: int, like: torch.Tensor, loss: str
) -> torch.Tensor:
    """Return the K level values as ``like``'s dtype: ``levels`` or 0, 1, ..., K-1."""
    if levels is None:
        return torch.arange(n_levels, dtype=like.dtype, device=like.device)
    values = levels.to(dtype=like.dtype, device=like.device)
    if values.shape[0] != n_levels:
        raise ValueError(
            f"Loss {loss!r}: levels has {values.shape[0]} values but the output has "
            f"{n_levels} columns; pass one value per level (class)."
        )
    return values
