"""Helpers shared by the calibration losses: the learned temperature and the calibrated link."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import Link

__all__ = ["TemperatureMixin", "calibrated_softmax_link", "check_logits"]


def check_logits(input: torch.Tensor) -> torch.Tensor:
    """Return ``input`` if it is a (N, C) logit matrix, else raise."""
    if input.ndim != 2:
        raise ValueError(
            f"Expected logits of shape (N, C) with one column per class. Got shape "
            f"{tuple(input.shape)}."
        )
    return input


class TemperatureMixin(nn.Module):
    """A learnable scalar temperature ``T = exp(log_temperature)`` (starts at T = 1)."""

    def _init_temperature(self) -> None:
        # Parameterised as log T so that T stays positive without a constraint.
        self.log_temperature = nn.Parameter(torch.zeros(()))

    @property
    def temperature_(self) -> float:
        """The fitted temperature :math:`T`."""
        return float(self.log_temperature.detach().exp())

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the calibrated logits ``z / T``."""
        return logits * torch.exp(-self.log_temperature.to(logits.dtype))


def _calibrated_softmax(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    calibrate = getattr(criterion, "calibrate", None)
    logits = calibrate(output) if callable(calibrate) else output
    return logits.softmax(dim=-1)


#: softmax of the fitted calibrator's output (``criterion.calibrate(z)``), e.g. ``z / T``.
calibrated_softmax_link = Link(
    "calibrated_softmax",
    _calibrated_softmax,
    "proba",
    "softmax of the calibrated logits (z / T, or a z + b with the affine option)",
)
