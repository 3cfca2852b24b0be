"""Helpers shared by the classification losses: binary margins, class gathers, log1mexp."""

from __future__ import annotations

import math

import torch

from lossreg import as_class_target, as_float_target

__all__ = ["binary_margin", "log1mexp", "per_row", "target_log_prob"]

_LOG_HALF = -math.log(2.0)


def binary_margin(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the margins :math:`m_i = (2y_i - 1) f_i` of one score per row, shape (N,).

    ``input`` is (N,) or (N, 1); ``target`` holds {0, 1} labels of shape (N,) or (N, 1).
    """
    if input.ndim == 2 and input.shape[1] == 1:
        input = input[:, 0]
    if input.ndim != 1:
        raise ValueError(
            "A binary margin loss takes one score per row, shape (N,) or (N, 1). Got shape "
            f"{tuple(input.shape)}; use an output size of 1."
        )
    y = as_float_target(target, input)
    return (2 * y - 1) * input


def target_log_prob(log_p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return each row's log-probability of its class, shape (N,)."""
    return log_p.gather(1, as_class_target(target).unsqueeze(1)).squeeze(1)


def per_row(elements: torch.Tensor) -> torch.Tensor:
    """Average the per-label values of each row ((N,) stays as is)."""
    if elements.ndim == 1:
        return elements
    if elements.ndim == 2 and elements.shape[1] == 1:
        # One column (the usual head): the row mean is the value itself, and a view costs
        # no kernel and no backward node where mean(dim=1) costs one of each.
        return elements[:, 0]
    return elements.reshape(elements.shape[0], -1).mean(dim=1)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\log(1 - e^{x})` for :math:`x \le 0`, stable on both branches.

    ``log(-expm1(x))`` is accurate near 0 and ``log1p(-exp(x))`` for very negative x
    (Mächler, "Accurately Computing log(1 - exp(-|a|))", 2012).
    """
    # Each branch gets a safe argument so that the unused branch has no inf/NaN gradient.
    near = torch.where(x > _LOG_HALF, x, torch.full_like(x, _LOG_HALF))
    far = torch.where(x > _LOG_HALF, torch.full_like(x, _LOG_HALF), x)
    return torch.where(x > _LOG_HALF, torch.log(-torch.expm1(near)), torch.log1p(-torch.exp(far)))
