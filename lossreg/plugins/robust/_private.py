"""Helpers shared by the label-noise-robust losses: log p_t, the NCE term, power-law terms."""

from __future__ import annotations

import math

import torch

from lossreg import as_class_target

__all__ = ["agce_term", "aul_term", "log_probs", "nce_term", "power_loss", "rce_term"]


def log_probs(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``log_softmax(input)`` (N, C) and each row's ``log p_t`` (N,)."""
    if input.ndim != 2:
        raise ValueError(
            f"Expected logits of shape (N, C) with one column per class. Got shape "
            f"{tuple(input.shape)}."
        )
    labels = as_class_target(target)
    log_p = input.log_softmax(dim=-1)
    return log_p, log_p.gather(1, labels.unsqueeze(1)).squeeze(1)


def power_loss(log_pt: torch.Tensor, q: float) -> torch.Tensor:
    r"""Return :math:`(1 - p_t^{q}) / q`, or :math:`-\log p_t` when :math:`|q| < 10^{-6}`.

    Written as ``-expm1(q log p_t) / q`` so that small ``q`` and ``p_t`` near 1 keep their
    digits. For ``q < 0`` the exponent grows with :math:`-\log p_t`; it is clamped just below
    the dtype's overflow point so that confidently wrong rows give a large finite loss (with
    zero gradient) instead of ``inf``.
    """
    if abs(q) < 1e-6:
        return -log_pt
    exponent = q * log_pt
    if q < 0:
        exponent = exponent.clamp_max(math.log(torch.finfo(log_pt.dtype).max) - 1.0)
    return -torch.expm1(exponent) / q


def nce_term(log_p: torch.Tensor, log_pt: torch.Tensor) -> torch.Tensor:
    r"""Normalised cross-entropy :math:`\log p_t / \sum_k \log p_k` (the sum is <= -C log C)."""
    return log_pt / log_p.sum(dim=-1)


def rce_term(log_pt: torch.Tensor, log_zero: float) -> torch.Tensor:
    r"""Reverse cross-entropy :math:`-A (1 - p_t)` with :math:`\log 0 := A` (``log_zero``)."""
    return log_zero * torch.expm1(log_pt)


def agce_term(log_pt: torch.Tensor, a: float, q: float) -> torch.Tensor:
    r"""Asymmetric GCE :math:`((a+1)^q - (a+p_t)^q)/q`; :math:`\log\frac{a+1}{a+p_t}` at q=0."""
    shifted = a + log_pt.exp()
    if abs(q) < 1e-6:
        return math.log(a + 1) - shifted.log()
    return ((a + 1) ** q - shifted.pow(q)) / q


def aul_term(log_pt: torch.Tensor, a: float, q: float) -> torch.Tensor:
    r"""Asymmetric unhinged loss :math:`((a-p_t)^q - (a-1)^q)/q`.

    At :math:`q = 0` it is the limit :math:`\log\frac{a-p_t}{a-1}`.
    """
    shifted = a - log_pt.exp()
    if abs(q) < 1e-6:
        return shifted.log() - math.log(a - 1)
    return (shifted.pow(q) - (a - 1) ** q) / q
