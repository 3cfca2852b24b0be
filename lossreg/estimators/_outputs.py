"""Multi-part network outputs: the (logits, features) pair some losses train on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["as_logits_features", "logits_of"]


def _describe(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"one tensor of shape {tuple(output.shape)}"
    if isinstance(output, Mapping):
        return f"a dict with keys {sorted(map(str, output))!r}"
    if isinstance(output, tuple | list):
        return f"a {type(output).__name__} of {len(output)} items"
    return f"a {type(output).__name__}"


def as_logits_features(output: Any, loss: str, module: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return a ``logits+features`` network's output as the pair ``(logits, features)``.

    Accepts a pair (tuple or list) of tensors or a dict with keys ``"logits"`` and
    ``"features"``; anything else raises a ValueError that names the loss and the fix.
    """
    if isinstance(output, Mapping) and "logits" in output and "features" in output:
        pair: Any = (output["logits"], output["features"])
    elif isinstance(output, tuple | list) and len(output) == 2:
        pair = tuple(output)
    else:
        pair = None
    if pair is None or not all(isinstance(p, torch.Tensor) for p in pair):
        raise ValueError(
            f"Loss {loss!r} trains on the network's features as well as its logits (its "
            f"LossSpec says outputs='logits+features'), but module {module} returned "
            f"{_describe(output)}. Make the module's forward return (logits, features): "
            "logits (N, n_outputs) and features (N, D), e.g. the last hidden layer, as a "
            "tuple or a dict {'logits': ..., 'features': ...}; or use the default module "
            "(module=None), whose MLP returns its last hidden layer."
        )
    logits, features = pair
    if features.ndim != 2 or features.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Loss {loss!r}: module {module} returned features of shape "
            f"{tuple(features.shape)} for logits of shape {tuple(logits.shape)}; the features "
            "must be (N, D), one row per logits row."
        )
    return logits, features


def logits_of(output: Any) -> torch.Tensor:
    """The logits part of a network output (the output itself when it is one tensor)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        return output["logits"]
    return output[0]
