"""The meta-step hook: a criterion that learns from a look-ahead of the network it trains."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["run_meta_step"]


def run_meta_step(criterion: nn.Module, module: nn.Module, batch: Any, device: Any) -> None:
    """Call ``criterion.meta_step(module, x, target, **fields)`` for one training batch.

    A criterion with its own parameters trained by a bilevel problem (TGeo-KD's fusion-ratio
    network: a look-ahead step of the student, then a step of the criterion's parameters on
    held-out rows) needs the network, which a criterion's ``forward`` never sees. The
    estimator calls this before each training step, in training mode; ``fields`` are the
    batch's ``sample_weight`` and fit extras (those named ``_...`` build batches only and are
    left out, as for the loss). The criterion must not leave gradients in ``module``.
    """
    x, fields = batch
    fields = {k: v for k, v in dict(fields).items() if not k.startswith("_")}
    target = fields.pop("target")
    criterion.meta_step(module, x.to(device), target, **fields)
