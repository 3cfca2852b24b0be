"""Helpers shared by the losses on unlabeled rows: the -1 mask, weights, batch reduction."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lossreg import check_batch_reduction, row_weights

__all__ = [
    "UNLABELED",
    "check_batch_reduction",
    "check_logits",
    "labeled_mask",
    "row_weights",
    "vector_buffer",
    "weighted_mean",
]

#: The scikit-learn marker of an unlabeled row (``SelfTrainingClassifier``).
UNLABELED = -1


def check_logits(input: torch.Tensor, loss: str) -> None:
    if input.ndim != 2 or input.shape[1] < 2:
        raise ValueError(
            f"Loss {loss!r} takes logits of shape (N, C) with C >= 2. Got shape "
            f"{tuple(input.shape)}."
        )


def labeled_mask(target: torch.Tensor) -> torch.Tensor:
    """Return True for labelled rows (label >= 0) and False for unlabeled ones (-1)."""
    labels = target.reshape(-1)
    if bool((labels < UNLABELED).any()):
        raise ValueError("Labels must be class indices >= 0, or -1 for unlabeled rows.")
    return labels != UNLABELED


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean of (N,) values; 0 (attached to the graph) when the weights sum to 0."""
    total = weight.sum()
    return (values * weight).sum() / total.clamp_min(torch.finfo(values.dtype).tiny)


def vector_buffer(values: Sequence[float] | None) -> torch.Tensor | None:
    """Return a float64 tensor of a vector hyperparameter (cast per call), or None."""
    if values is None:
        return None
    return torch.as_tensor(values, dtype=torch.float64).reshape(-1)
