"""The multiclass Brier score as a training loss."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_class_target

__all__ = ["Brier"]


class Brier(LossModule):
    r"""Multiclass Brier score: squared distance between the softmax and the one-hot target.

    .. math::

        \ell_i = \sum_{c=1}^{C} (p_{ic} - [y_i = c])^2, \qquad p_i = \mathrm{softmax}(z_i)

    A strictly proper scoring rule, bounded in [0, 2]. Input logits (N, C), class labels (N,).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    References
    ----------
    G. W. Brier. "Verification of Forecasts Expressed in Terms of Probability." Monthly
    Weather Review 78(1), 1950, doi:10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2.

    Examples
    --------
    >>> import torch
    >>> Brier(reduction="none")(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    tensor([0.5000, 0.5000, 0.5000, 0.5000])
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        probabilities = input.softmax(dim=-1)
        one_hot = torch.nn.functional.one_hot(as_class_target(target), input.shape[-1])
        return (probabilities - one_hot.to(input.dtype)).square().sum(dim=-1)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
