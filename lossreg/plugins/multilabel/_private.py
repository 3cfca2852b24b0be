"""Helpers shared by the multilabel losses: target checks, soft counts, batch-level reduction."""

from __future__ import annotations

import torch

from lossreg import as_float_target
from lossreg import check_batch_reduction as _check_batch_reduction
from lossreg import row_weights as _row_weights

__all__ = ["as_label_matrix", "check_batch_reduction", "row_weights", "soft_counts"]


def as_label_matrix(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return logits and 0/1 targets as (N, L) matrices in ``input``'s dtype ((N,) is L = 1)."""
    y = as_float_target(target, input)
    if input.ndim == 1:
        return input.unsqueeze(1), y.unsqueeze(1)
    return input.reshape(input.shape[0], -1), y.reshape(input.shape[0], -1)


def soft_counts(
    p: torch.Tensor, y: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Return per-label soft :math:`TP, FP, FN` over the batch, rows weighted by ``weight``."""
    tp = (weight * p * y).sum(dim=0)
    fp = (weight * p * (1 - y)).sum(dim=0)
    fn = (weight * (1 - p) * y).sum(dim=0)
    return tp, fp, fn


def check_batch_reduction(name: str, reduction: str) -> str:
    """``lossreg.check_batch_reduction`` with this family's argument order."""
    return _check_batch_reduction(reduction, name)


def row_weights(sample_weight: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """Per-row weights of shape (N, 1), ones without sample weights (broadcast over labels)."""
    return _row_weights(sample_weight, like.shape[0], like).reshape(-1, 1)
