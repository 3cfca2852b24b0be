"""Shared machinery of the bag losses: bag ids, bag means, bag weights, bag-level reduction."""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
from torch import nn

from lossreg import InvalidReductionError

__all__ = ["BagLoss", "bag_index", "bag_log_mean_proba", "bag_targets", "class_log_proba"]


def bag_index(bag: Any, n_rows: int, name: str) -> tuple[torch.Tensor, int]:
    """Map bag ids to 0..B-1 in order of first appearance; return (index (N,), B)."""
    if bag is None:
        raise ValueError(
            f"Loss {name!r} needs 'bag' at fit time: pass fit(X, y, bag=..., bag_target=...) "
            "with one bag id per row."
        )
    bag = torch.as_tensor(bag)
    if bag.ndim == 2 and bag.shape[1] == 1:
        bag = bag[:, 0]
    if bag.ndim != 1 or bag.shape[0] != n_rows:
        raise ValueError(
            f"Loss {name!r}: bag must hold one id per row, shape ({n_rows},). Got shape "
            f"{tuple(bag.shape)}."
        )
    _, index = torch.unique(bag, return_inverse=True)
    return index, int(index.max()) + 1 if index.numel() else 0


def bag_targets(bag_target: Any, index: torch.Tensor, n_bags: int, like: torch.Tensor, name: str):
    """One target per bag (B, ...) from the per-row ``bag_target``, checked constant per bag."""
    if bag_target is None:
        raise ValueError(
            f"Loss {name!r} needs 'bag_target' at fit time: the bag's label proportion (or "
            "mean response) repeated on each row of the bag."
        )
    target = torch.as_tensor(bag_target, dtype=like.dtype, device=like.device)
    if target.shape[0] != index.shape[0]:
        raise ValueError(
            f"Loss {name!r}: bag_target has {target.shape[0]} rows but the batch has "
            f"{index.shape[0]}; pass one value per row."
        )
    first = torch.full((n_bags,), index.shape[0], dtype=torch.long, device=index.device)
    first = first.scatter_reduce(0, index, torch.arange(index.shape[0]), reduce="amin")
    per_bag = target[first]
    spread = (target - per_bag[index]).abs()
    if spread.numel() and float(spread.max()) > 1e-6:
        raise ValueError(
            f"Loss {name!r}: bag_target must be the same on every row of a bag; it differs "
            f"by up to {float(spread.max()):.3g} within a bag."
        )
    return per_bag


def class_log_proba(input: torch.Tensor) -> torch.Tensor:
    """Per-row class log-probabilities (N, C): log-softmax, or [log(1-p), log p] for one logit."""
    if input.ndim == 1 or input.shape[-1] == 1:
        z = input.reshape(-1)
        # log sigmoid(-z), log sigmoid(z): softplus keeps them finite at extreme logits.
        return torch.stack([-nn.functional.softplus(z), -nn.functional.softplus(-z)], dim=1)
    return input.log_softmax(dim=-1)


def proportion_matrix(target: torch.Tensor, n_classes: int, name: str) -> torch.Tensor:
    """Bag proportions as (B, C): a (B,) positive fraction becomes [1 - a, a] for 2 classes."""
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim == 1:
        if n_classes != 2:
            raise ValueError(
                f"Loss {name!r}: a single proportion per bag fits binary outputs only; the "
                f"model has {n_classes} classes, so pass bag_target of shape (N, {n_classes})."
            )
        target = torch.stack([1 - target, target], dim=1)
    if target.shape[1] != n_classes:
        raise ValueError(
            f"Loss {name!r}: bag_target has {target.shape[1]} columns for {n_classes} classes."
        )
    return target


def bag_log_mean_proba(log_proba: torch.Tensor, index: torch.Tensor, n_bags: int) -> torch.Tensor:
    """log of the mean predicted probability of each bag, (B, C), by logsumexp minus log k_b."""
    n_classes = log_proba.shape[1]
    # Shift by each bag's max before exponentiating, then add it back (logsumexp per bag).
    top = torch.full((n_bags, n_classes), -math.inf, dtype=log_proba.dtype, device=index.device)
    top = top.scatter_reduce(
        0, index[:, None].expand_as(log_proba), log_proba.detach(), reduce="amax"
    )
    shifted = (log_proba - top[index]).exp()
    sums = torch.zeros_like(top).index_add(0, index, shifted)
    sizes = torch.zeros(n_bags, dtype=log_proba.dtype, device=index.device)
    sizes = sizes.index_add(0, index, torch.ones_like(index, dtype=log_proba.dtype))
    return sums.log() + top - sizes.log()[:, None]


class BagLoss(nn.Module, abc.ABC):
    """Base class of bag-level losses: bag weights and the reduction over bags.

    Subclasses implement ``bag_losses(input, index, n_bags, target) -> (B,)``.
    """

    _name = "bag"

    def __init__(self, *, bag_weight: str, reduction: str) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise InvalidReductionError(
                f"Loss {self._name!r} is bag-level (one value per bag, not per row) and "
                f"supports reduction 'mean' or 'sum'. Got {reduction!r} instead."
            )
        self.bag_weight = bag_weight
        self.reduction = reduction

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        sample_weight: torch.Tensor | None = None,
        bag: torch.Tensor | None = None,
        bag_target: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the (weighted) mean or sum over the batch's bags; ``target`` is unused."""
        n_rows = input.shape[0]
        index, n_bags = bag_index(bag, n_rows, self._name)
        index = index.to(input.device)
        per_bag_target = bag_targets(bag_target, index, n_bags, input, self._name)
        losses = self.bag_losses(input, index, n_bags, per_bag_target)
        ones = torch.ones(n_rows, dtype=input.dtype, device=input.device)
        sizes = torch.zeros(n_bags, dtype=input.dtype, device=input.device).index_add(
            0, index, ones
        )
        weight = sizes if self.bag_weight == "size" else torch.ones_like(sizes)
        if sample_weight is not None:
            rows = torch.as_tensor(sample_weight, dtype=input.dtype, device=input.device)
            rows = rows.reshape(-1)
            # A bag weighs the mean weight of its rows (the weight is meant per bag).
            bag_w = torch.zeros_like(sizes).index_add(0, index, rows) / sizes
            weight = weight * bag_w
        total = (weight * losses).sum()
        if self.reduction == "sum":
            return total
        return total / weight.sum().clamp_min(torch.finfo(input.dtype).tiny)

    @abc.abstractmethod
    def bag_losses(
        self, input: torch.Tensor, index: torch.Tensor, n_bags: int, target: torch.Tensor
    ) -> torch.Tensor:
        """One loss per bag, shape (B,)."""
