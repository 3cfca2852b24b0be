"""Per-class weight vectors kept as buffers, shared by the classification losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def class_weight_buffer(weights: Sequence[float] | None) -> torch.Tensor | None:
    """Return per-class (or per-label) weights as a float tensor, or None."""
    if weights is None:
        return None
    return torch.as_tensor(weights, dtype=torch.get_default_dtype()).reshape(-1).clone()


def check_length(weights: torch.Tensor, width: int, name: str) -> None:
    """Raise when a weight vector does not have one value per class or label."""
    if weights.shape[0] != width:
        raise ValueError(
            f"{name} has {weights.shape[0]} values but the output has {width} classes or "
            f"labels; pass one {name} value per class."
        )


def select_class_weight(
    weights: torch.Tensor, labels: torch.Tensor, input: torch.Tensor, name: str
) -> torch.Tensor:
    """Return each row's class weight, in ``input``'s dtype."""
    check_length(weights, input.shape[-1], name)
    return weights.to(input.dtype)[labels]
