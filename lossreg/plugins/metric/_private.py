"""Shared helpers of the metric-learning losses: shapes, views, distances, masks, reduction."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import InvalidReductionError, as_class_target

__all__ = [
    "DISTANCES",
    "BatchLoss",
    "check_embeddings",
    "label_masks",
    "neg_inf",
    "pairwise_distance",
    "reduce_terms",
    "split_views",
]

#: The distances the pair and triplet losses accept.
DISTANCES = ("squared_euclidean", "euclidean", "cosine")


def check_embeddings(input: torch.Tensor) -> torch.Tensor:
    """Return ``input`` if it is a float (N, D) tensor, else raise a clear error."""
    if input.ndim != 2 or not input.is_floating_point():
        raise ValueError(
            "Metric-learning losses take float embeddings of shape (N, D). Got a "
            f"{input.dtype} tensor of shape {tuple(input.shape)}."
        )
    return input


def split_views(
    input: torch.Tensor, target: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Resolve the two-view convention: rows i and i+N of a (2N, D) batch are views of row i.

    Returns the embeddings, the labels repeated for both views (or None), and the number of
    original rows N. With labels of length N and 2N embeddings the batch holds two views;
    with equal lengths it holds one view per row (N = number of rows).
    """
    check_embeddings(input)
    if target is None:
        if input.shape[0] % 2:
            raise ValueError(
                "A two-view loss without labels needs a (2N, D) batch (rows i and i+N are two "
                f"views of row i). Got {input.shape[0]} rows, an odd number."
            )
        return input, None, input.shape[0] // 2
    labels = as_class_target(target)
    if input.shape[0] == 2 * labels.shape[0]:
        return input, torch.cat([labels, labels]), labels.shape[0]
    if input.shape[0] == labels.shape[0]:
        return input, labels, labels.shape[0]
    raise ValueError(
        f"Got {input.shape[0]} embeddings and {labels.shape[0]} labels; pass one label per "
        "row, either for N embeddings or for a (2N, D) batch of two views."
    )


def pairwise_distance(x: torch.Tensor, distance: str, normalize: bool) -> torch.Tensor:
    """Return the (N, N) matrix of ``distance`` between the rows of ``x``.

    Differences are formed explicitly (not through the Gram trick), so the distance of a row
    to itself is exactly 0 and nearby rows keep their precision.
    """
    if normalize or distance == "cosine":
        x = F.normalize(x, dim=1)
    if distance == "cosine":
        return 1 - x @ x.T
    squared = (x.unsqueeze(1) - x.unsqueeze(0)).square().sum(-1)
    if distance == "squared_euclidean":
        return squared
    # sqrt has an infinite derivative at 0 (duplicate rows, the diagonal); the clamp stops the
    # gradient there instead of producing NaN.
    return squared.clamp_min(torch.finfo(x.dtype).tiny).sqrt()


def label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return boolean (N, N) masks of positive pairs (same label, off-diagonal) and negatives."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def neg_inf(x: torch.Tensor) -> float:
    """The most negative finite value of ``x``'s dtype (masks logits without creating NaN)."""
    return torch.finfo(x.dtype).min


def reduce_terms(
    terms: torch.Tensor,
    anchors: torch.Tensor,
    reduction: str,
    sample_weight: Any | None,
) -> torch.Tensor:
    """Reduce a batch-level loss's terms (pairs, triplets ...), weighted by their anchor's weight.

    ``mean`` is :math:`\\sum_t w_{a(t)}\\ell_t / \\sum_t w_{a(t)}` (the plain mean without weights);
    a batch without any term gives a zero that is still connected to the graph.
    """
    if sample_weight is None:
        if terms.numel() == 0:
            return terms.sum()
        return terms.sum() if reduction == "sum" else terms.mean()
    weight = torch.as_tensor(sample_weight, dtype=terms.dtype, device=terms.device).reshape(-1)
    weighted = terms * weight[anchors]
    if reduction == "sum":
        return weighted.sum()
    # All-zero weights give 0 rather than 0/0, as lossreg.reduce does.
    return weighted.sum() / weight[anchors].sum().clamp_min(torch.finfo(terms.dtype).tiny)


class BatchLoss(nn.Module):
    """Base of the batch-level losses: no per-row form, so only "mean" and "sum" reductions.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default="mean"
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise InvalidReductionError(
                f"{type(self).__name__} is a batch-level loss (its terms are in-batch pairs, "
                f"triplets or statistics, not rows), so reduction must be 'mean' or 'sum'. Got "
                f"{reduction!r} instead."
            )
        self.reduction = reduction

    def check_weight(self, sample_weight: Any | None, n_rows: int) -> None:
        """Raise when ``sample_weight`` does not hold one weight per row."""
        if sample_weight is not None and torch.as_tensor(sample_weight).numel() != n_rows:
            raise ValueError(
                f"sample_weight has {torch.as_tensor(sample_weight).numel()} values but the "
                f"batch has {n_rows} rows; pass one weight per row."
            )

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
