"""Divergences between student and teacher distributions: generalized JSD, soft symmetric CE."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import check_logits, kl_rows, teacher_tensor

__all__ = ["GeneralizedJSDKD", "SoftSymmetricCE"]


class GeneralizedJSDKD(LossModule):
    r"""Generalized Jensen-Shannon divergence between teacher and student (GKD's divergence).

    .. math::

        M = \beta\,p^T + (1-\beta)\,p^S,\qquad
        \ell_i = \beta\,\mathrm{KL}(p^T_i \Vert M_i) + (1-\beta)\,\mathrm{KL}(p^S_i \Vert M_i)
                 + w_{ce}\,\mathrm{CE}(z_i, y_i)

    with :math:`p^S = \mathrm{softmax}(z/T)`, :math:`p^T = \mathrm{softmax}(t/T)`. The general
    form vanishes at both ends, so :math:`\beta = 0` is forward
    :math:`\mathrm{KL}(p^T \Vert p^S)` and :math:`\beta = 1` reverse
    :math:`\mathrm{KL}(p^S \Vert p^T)`. Student logits (N, C); ``teacher_logits`` (N, C);
    class-index targets (N,), used only when ``ce_weight > 0``.

    Parameters
    ----------
    beta : float in [0, 1], default=0.5
        Interpolation: 0 is forward (mean-seeking) KL, 1 reverse (mode-seeking) KL, 0.5 the
        symmetric JSD.
    temperature : float in (0, inf), default=1.0
        Softening temperature of both distributions.
    ce_weight : float in [0, inf), default=0.0
        Weight of an added cross-entropy on the labels (at temperature 1).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    :math:`\log M` is computed as ``logaddexp(log p^T + log beta, log p^S + log(1-beta))``.
    Checked against TRL's ``GKDTrainer.generalized_jsd_loss``: same mixture, same weights, same
    end-point cases, and the divergence is summed over classes per token. The catalogue entry
    says "scale by :math:`T^2`"; TRL's code does not scale, and the paper uses no temperature
    factor, so this loss does not either (the two agree at the default :math:`T = 1`). The
    on-policy sampling of the paper is a training procedure and is out of scope.

    References
    ----------
    R. Agarwal, N. Vieillard, Y. Zhou, P. Stanczyk, S. Ramos, M. Geist, O. Bachem. "On-Policy
    Distillation of Language Models: Learning from Self-Generated Mistakes." ICLR 2024,
    arXiv:2306.13649.

    Examples
    --------
    >>> import torch
    >>> loss = GeneralizedJSDKD(reduction="none")
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> t = torch.tensor([[3.0, 0.0], [0.0, 1.0], [4.0, 0.0], [-1.0, 2.0]])
    >>> out = loss(z, torch.tensor([0, 1, 0, 1]), teacher_logits=t)
    >>> [round(v, 4) for v in out.tolist()]
    [0.0087, 0.0183, 0.1804, 0.1449]
    """

    def __init__(
        self,
        *,
        beta: float = 0.5,
        temperature: float = 1.0,
        ce_weight: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.beta = beta
        self.temperature = temperature
        self.ce_weight = ce_weight

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
        log_s = (input / self.temperature).log_softmax(dim=-1)
        log_t = (teacher / self.temperature).log_softmax(dim=-1)
        beta = self.beta
        if beta == 0:
            loss = kl_rows(log_t, log_s)
        elif beta == 1:
            loss = kl_rows(log_s, log_t)
        else:
            log_m = torch.logaddexp(log_t + math.log(beta), log_s + math.log1p(-beta))
            loss = beta * kl_rows(log_t, log_m) + (1.0 - beta) * kl_rows(log_s, log_m)
        if self.ce_weight:
            labels = as_class_target(target)
            loss = loss + self.ce_weight * F.cross_entropy(input, labels, reduction="none")
        return loss

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, temperature={self.temperature}, ce_weight={self.ce_weight}, "
            f"reduction={self.reduction!r}"
        )


class SoftSymmetricCE(LossModule):
    r"""Soft symmetric cross-entropy between the student and a fixed teacher (RMT consistency).

    .. math::

        p = \mathrm{softmax}(t)\ \text{(constant)},\quad q = \mathrm{softmax}(z),\qquad
        \ell_i = \tfrac12\Big[-\sum_c p_{ic}\log q_{ic} - \sum_c q_{ic}\log p_{ic}\Big]

    Student logits (N, C); ``teacher_logits`` (N, C); labels are accepted but not used.
    Gradient flows through :math:`q` in both terms.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    :math:`\log p` comes from ``log_softmax(t)``, never the log of probabilities, so a
    confident teacher gives a large finite penalty instead of ``inf``. Matches the catalogue
    (checked against mariodoebler/test-time-adaptation ``rmt.py``, ``symmetric_cross_entropy``
    with weight 1/2 on each term). The EMA teacher and the contrastive term of the paper are
    training procedures, not part of the criterion.

    References
    ----------
    M. Döbler, R. A. Marsden, B. Yang. "Robust Mean Teacher for Continual and Gradual
    Test-Time Adaptation." CVPR 2023.

    Examples
    --------
    >>> import torch
    >>> loss = SoftSymmetricCE(reduction="none")
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> t = torch.tensor([[3.0, 0.0], [0.0, 1.0], [4.0, 0.0], [-1.0, 2.0]])
    >>> out = loss(z, torch.tensor([0, 1, 0, 1]), teacher_logits=t)
    >>> [round(v, 4) for v in out.tolist()]
    [0.314, 0.5486, 1.3556, 1.1209]
    """

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        teacher_logits: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input)
        log_p = teacher_tensor(teacher_logits, input).log_softmax(dim=-1)
        log_q = input.log_softmax(dim=-1)
        forward = -(log_p.exp() * log_q).sum(dim=-1)
        backward = -(log_q.exp() * log_p).sum(dim=-1)
        return 0.5 * (forward + backward)
