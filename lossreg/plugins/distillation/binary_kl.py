"""Logit-level distillation: per-class binary KL between sigmoid(t/T) and sigmoid(z/T)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import check_logits, teacher_tensor

__all__ = ["BinaryKLKD", "binary_kl_rows"]


def _standardize(logits: torch.Tensor) -> torch.Tensor:
    # Row z-score; the 1e-8 keeps a constant row (std 0) finite, as in the authors' code.
    mean = logits.mean(dim=-1, keepdim=True)
    return (logits - mean) / (logits.std(dim=-1, keepdim=True) + 1e-8)


def binary_kl_rows(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, normalize: bool
) -> torch.Tensor:
    """Return the per-row binary-KL distillation term (N,) of (N, C) logits."""
    if normalize:
        student, teacher = _standardize(student), _standardize(teacher)
    s, u = student / temperature, teacher / temperature
    log_p, log_1p = F.logsigmoid(u), F.logsigmoid(-u)
    log_q, log_1q = F.logsigmoid(s), F.logsigmoid(-s)
    kl = log_p.exp() * (log_p - log_q) + log_1p.exp() * (log_1p - log_1q)
    return temperature * temperature * kl.sum(dim=-1)


class BinaryKLKD(LossModule):
    r"""Binary-KL logit distillation: each class's sigmoid probability matched to the teacher's.

    .. math::

        \ell_i = T^2\sum_k \Big[\sigma(t_{ik}/T)\log\frac{\sigma(t_{ik}/T)}{\sigma(z_{ik}/T)}
                 + \big(1-\sigma(t_{ik}/T)\big)\log\frac{1-\sigma(t_{ik}/T)}
                 {1-\sigma(z_{ik}/T)}\Big]

    With ``normalize=True`` each row of :math:`z` and :math:`t` is first z-scored (minus its
    mean, divided by its standard deviation + 1e-8). Student logits (N, C); ``teacher_logits``
    (N, C); labels are accepted but not used.

    Parameters
    ----------
    temperature : float in (0, inf), default=2.0
        :math:`T`; the authors use 2 without and 1 with ``normalize``.
    normalize : bool, default=False
        Z-score the logits of each row before the sigmoid.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Computed with ``logsigmoid`` (:math:`\log(1-\sigma(x)) = \mathrm{logsigmoid}(-x)`)
    instead of clamping the probabilities to :math:`[10^{-8}, 1-10^{-8}]` as the authors' code
    does; the two agree wherever the clamp is inactive. The standard deviation is the unbiased
    one (``torch.std``). Summed over classes per row, as in the catalogue formula. Used on
    the auxiliary head of ``dual_head_kd``; putting it on the same head as CE + KD hurts
    accuracy (the paper's point).

    References
    ----------
    P. Yang, C.-C. Zong, S.-J. Huang, L. Feng, B. An. "Dual-Head Knowledge Distillation:
    Enhancing Logits Utilization with an Auxiliary Head." arXiv:2411.08937.

    Examples
    --------
    >>> import torch
    >>> loss = BinaryKLKD(reduction="none")
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> t = torch.tensor([[3.0, 0.0], [0.0, 1.0], [4.0, 0.0], [-1.0, 2.0]])
    >>> out = loss(z, torch.tensor([0, 1, 0, 1]), teacher_logits=t)
    >>> [round(v, 4) for v in out.tolist()]
    [0.0825, 0.1118, 0.7971, 0.565]
    """

    def __init__(
        self, *, temperature: float = 2.0, normalize: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature
        self.normalize = normalize

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        teacher_logits: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input)
        teacher = teacher_tensor(teacher_logits, input)
        return binary_kl_rows(input, teacher, self.temperature, self.normalize)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, normalize={self.normalize}, "
            f"reduction={self.reduction!r}"
        )
