"""Class statistics turned into tensors, shared by the class-imbalance losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lossreg import reduce

__all__ = [
    "counts_buffer",
    "effective_number_weights",
    "ldam_margins",
    "one_hot_like",
    "reduce_weighted",
]


def counts_buffer(
    counts: Sequence[float], name: str = "class_counts", *, allow_zero: bool = False
) -> torch.Tensor:
    """Return per-class counts as a float tensor, raising for empty or negative counts.

    A class absent from the training fold would get an infinite weight or margin, so it is
    rejected here with a message that says how to fix it.
    """
    values = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)
    if values.numel() == 0:
        raise ValueError(f"{name} is empty; pass one count per class.")
    if bool((values < 0).any()) or not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} must hold finite counts >= 0. Got {list(counts)!r}.")
    if not allow_zero and bool((values == 0).any()):
        empty = [i for i, v in enumerate(values.tolist()) if v == 0]
        raise ValueError(
            f"{name} has zero rows for classes {empty}: their weight or margin would be "
            "infinite. Make sure every class occurs in each training fold (e.g. use "
            "StratifiedKFold) or drop the empty classes."
        )
    # float64 keeps the weights' digits; every use casts to the input's dtype.
    return values


def effective_number_weights(counts: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Return :math:`w_c \propto (1-\beta)/(1-\beta^{n_c})`, normalised to sum to C.

    ``beta = 0`` gives all ones; ``beta -> 1`` approaches inverse frequency. Computed in
    float64 so that :math:`1-\beta^{n}` keeps its digits for beta = 0.9999.
    """
    n = counts.to(torch.float64)
    if beta == 0:
        return torch.ones_like(counts)
    # -expm1(n log beta) = 1 - beta^n without cancellation when beta^n is close to 1.
    effective = -torch.expm1(n * torch.log(torch.tensor(beta, dtype=torch.float64)))
    weights = (1.0 - beta) / effective
    return (weights / weights.sum() * n.numel()).to(counts.dtype)


def ldam_margins(counts: torch.Tensor, max_m: float) -> torch.Tensor:
    r"""Return margins :math:`\Delta_c = K / n_c^{1/4}` with :math:`\max_c \Delta_c` = ``max_m``."""
    inv = counts.to(torch.float64).pow(-0.25)
    return (inv * (max_m / inv.max())).to(counts.dtype)


def one_hot_like(labels: torch.Tensor, input: torch.Tensor) -> torch.Tensor:
    """Return a one-hot matrix of ``labels`` with ``input``'s shape and dtype."""
    return torch.zeros_like(input).scatter_(1, labels.unsqueeze(1), 1.0)


def reduce_weighted(
    per_row: torch.Tensor,
    row_weight: torch.Tensor,
    reduction: str,
    sample_weight: torch.Tensor | None,
) -> torch.Tensor:
    """Reduce with class weights folded into the row weights (torch's weighted-mean convention).

    ``mean`` then divides by :math:`\\sum_i s_i w_{y_i}` as ``torch.nn.CrossEntropyLoss(weight=)``
    does, and ``none`` returns :math:`s_i w_{y_i} \\ell_i`.
    """
    weight = row_weight
    if sample_weight is not None:
        sample = torch.as_tensor(sample_weight, dtype=per_row.dtype, device=per_row.device)
        weight = weight * sample.reshape(-1)
    return reduce(per_row, reduction, weight)
