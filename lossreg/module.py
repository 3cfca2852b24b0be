"""LossModule, the base class that keeps reduction out of each loss, and target helpers."""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from lossreg.reduction import check_reduction, reduce

__all__ = ["LossModule", "as_class_target", "as_float_target"]


class LossModule(nn.Module, abc.ABC):
    """Base class for losses with a per-sample form.

    Subclasses implement :meth:`per_sample_loss`, returning one value per row; ``forward``
    hands it to :func:`lossreg.reduce` with the constructor's ``reduction`` and the call's
    ``sample_weight``. Hyperparameters are stored as attributes of the same name.

    A subclass may also implement :meth:`fused_mean`, the plain mean of its per-sample losses
    computed by one fused torch kernel; ``forward`` uses it for ``reduction="mean"`` without
    sample weights (the training default) and falls back to :meth:`per_sample_loss` +
    :func:`lossreg.reduce` otherwise.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"
        How :meth:`forward` reduces the per-sample losses.
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the reduced loss of ``input`` against ``target``."""
        if sample_weight is None and self.reduction == "mean":
            mean = self.fused_mean(input, target, **extras)
            if mean is not None:
                return mean
        return reduce(self.per_sample_loss(input, target, **extras), self.reduction, sample_weight)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that redefines per_sample_loss without its own fused_mean must not
        # inherit its parent's: that would compute the parent's formula for "mean" only.
        if "per_sample_loss" in cls.__dict__ and "fused_mean" not in cls.__dict__:
            cls.fused_mean = LossModule.fused_mean  # type: ignore[method-assign]

    @abc.abstractmethod
    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        """Return the loss of each row, shape (N,)."""

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        """Return ``per_sample_loss(input, target).mean()`` computed in one go, or None.

        An optional fast path for ``reduction="mean"`` without sample weights. On a small
        batch most of a loss's time is per-op overhead (dispatch and an autograd node per op,
        forward and backward), so torch's fused mean (``F.mse_loss(input, target)``,
        ``F.cross_entropy(input, labels)`` ...) costs about half of the per-row vector plus
        its separate mean. An override must equal the mean of :meth:`per_sample_loss` up to
        rounding (the conformance kit's reduction check compares them) and keep every input
        check of :meth:`per_sample_loss`; it may return None to take the general path for
        some inputs. The default returns None.
        """
        return None


def as_class_target(target: torch.Tensor) -> torch.Tensor:
    """Return class labels as int64 of shape (N,), accepting (N,) or (N, 1) of any number type."""
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim != 1:
        raise ValueError(
            f"Class targets must have shape (N,) with one label per row. Got shape "
            f"{tuple(target.shape)}."
        )
    return target if target.dtype == torch.int64 else target.long()


def as_float_target(target: torch.Tensor, input: torch.Tensor) -> torch.Tensor:
    """Return ``target`` as ``input``'s float dtype and shape ((N,) and (N, 1) interchange)."""
    # Called on every forward: skip the no-op conversions (each is a dispatcher round trip).
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    if target.shape == input.shape:
        return target
    if target.numel() == input.numel():
        return target.reshape(input.shape)
    raise ValueError(
        f"Target shape {tuple(target.shape)} does not match the output shape "
        f"{tuple(input.shape)}; pass one target per output."
    )
