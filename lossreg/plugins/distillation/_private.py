"""Helpers shared by the distillation losses: teacher logits checks and row-wise KL."""

from __future__ import annotations

import torch

__all__ = ["check_logits", "kl_rows", "teacher_tensor"]


def check_logits(input: torch.Tensor) -> torch.Tensor:
    """Return ``input`` if it is a (N, C) logit matrix, else raise."""
    if input.ndim != 2:
        raise ValueError(
            f"Expected student logits of shape (N, C) with one column per class. Got shape "
            f"{tuple(input.shape)}."
        )
    return input


def teacher_tensor(teacher_logits: torch.Tensor | None, input: torch.Tensor) -> torch.Tensor:
    """Return the teacher's logits as ``input``'s dtype and shape (N, C), detached.

    A binary teacher with one logit per row ((N,) or (N, 1)) is expanded to the two-class
    logits ``[0, t]``, which give the same softmax as ``sigmoid(t)``.
    """
    if teacher_logits is None:
        raise ValueError(
            "This loss needs the teacher's logits: pass teacher_logits=... (one row of C "
            "logits per training row) to forward, or fit(X, y, teacher_logits=...)."
        )
    teacher = torch.as_tensor(teacher_logits, device=input.device).to(input.dtype).detach()
    if teacher.ndim == 1:
        teacher = teacher.unsqueeze(1)
    if teacher.shape[1] == 1 and input.shape[1] == 2:
        teacher = torch.cat([torch.zeros_like(teacher), teacher], dim=1)
    if teacher.shape != input.shape:
        raise ValueError(
            f"teacher_logits has shape {tuple(teacher.shape)} but the student's logits have "
            f"shape {tuple(input.shape)}; pass one teacher logit per class and row."
        )
    return teacher


def kl_rows(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\mathrm{KL}(p \Vert q) = \sum_c p_c (\log p_c - \log q_c)` per row.

    Both arguments are log-probabilities (N, C) from ``log_softmax``, which are finite for
    finite logits, so the product never meets ``0 * inf``.
    """
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)
