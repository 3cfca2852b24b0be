"""Knowledge distillation (Hinton et al.) and defensive distillation (Papernot et al.)."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_class_target

from ._private import check_logits, kl_rows, teacher_tensor

__all__ = ["DefensiveDistillation", "KnowledgeDistillation"]


class KnowledgeDistillation(LossModule):
    r"""Knowledge distillation: cross-entropy on labels plus KL to the teacher at temperature T.

    .. math::

        \ell_i = (1-\alpha)\,\mathrm{CE}(z_i, y_i)
                 + \alpha\,T^2\,\mathrm{KL}\big(\mathrm{softmax}(t_i/T)\,\Vert\,
                 \mathrm{softmax}(z_i/T)\big)

    Student logits :math:`z` have shape (N, C); targets are class indices (N,); the teacher's
    logits :math:`t` arrive as the ``teacher_logits`` extra, shape (N, C). A binary teacher
    with one logit per row ((N,) or (N, 1)) is expanded to the two-class logits ``[0, t]``.
    Predict with the softmax of the student's logits at :math:`T = 1`.

    Parameters
    ----------
    temperature : float in (0, inf), default=4.0
        Softening temperature :math:`T` of both distributions (useful range 2 to 8).
    alpha : float in [0, 1], default=0.9
        Weight of the distillation term; ``alpha=0`` is plain cross-entropy.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The :math:`T^2` factor keeps the soft term's gradient magnitude comparable across
    temperatures (the soft-target gradients scale as :math:`1/T^2`), as in Hinton et al.,
    Section 2, which also recommends a considerably lower weight on the hard-label term
    (here :math:`1-\alpha = 0.1`). The per-row KL equals
    ``torch.nn.functional.kl_div(log_softmax(z/T), log_softmax(t/T), log_target=True)`` summed
    over classes; its mean over rows is torch's ``reduction="batchmean"``. Checked against
    the paper's description (weighted average of the soft cross-entropy at temperature T and
    the hard cross-entropy at T=1, soft term multiplied by T^2) and common reimplementations;
    they agree with the catalogue entry. Teacher logits must be produced out-of-fold for
    honest cross-validation (see ``lossreg.estimators.distill.teacher_logits``).

    References
    ----------
    G. Hinton, O. Vinyals, J. Dean. "Distilling the Knowledge in a Neural Network."
    NIPS 2014 Deep Learning Workshop, arXiv:1503.02531.

    Examples
    --------
    >>> import torch
    >>> loss = KnowledgeDistillation(reduction="none")
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> t = torch.tensor([[3.0, 0.0], [0.0, 1.0], [4.0, 0.0], [-1.0, 2.0]])
    >>> out = loss(z, torch.tensor([0, 1, 0, 1]), teacher_logits=t)
    >>> [round(v, 4) for v in out.tolist()]
    [0.1135, 0.122, 1.6669, 1.0148]
    """

    def __init__(
        self, *, temperature: float = 4.0, alpha: float = 0.9, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature
        self.alpha = alpha

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
        labels = as_class_target(target)
        ce = -input.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
        t = self.temperature
        kl = kl_rows((teacher / t).log_softmax(dim=-1), (input / t).log_softmax(dim=-1))
        return (1.0 - self.alpha) * ce + self.alpha * t * t * kl

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, alpha={self.alpha}, reduction={self.reduction!r}"


class DefensiveDistillation(LossModule):
    r"""Defensive distillation: cross-entropy to the teacher's soft labels at a high temperature.

    .. math::

        \ell_i = -\sum_c \mathrm{softmax}(t_i/T)_c \,\log \mathrm{softmax}(z_i/T)_c

    Student logits :math:`z` (N, C); the teacher's logits :math:`t` (N, C) as the
    ``teacher_logits`` extra (the teacher itself trained at temperature :math:`T`); labels are
    accepted but not used. Deploy at :math:`T = 1`: the predict link is the plain softmax.

    Parameters
    ----------
    temperature : float in (0, inf), default=20.0
        Training temperature :math:`T` (the paper studies 1 to 100; 20 to 100 is typical).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    No :math:`T^2` factor: the student is trained on the soft labels alone, as in Papernot et
    al. (Section IV), so the loss is the soft cross-entropy itself (it is not zero at the
    optimum: it equals the teacher's entropy at temperature T). Deploying at :math:`T = 1`
    makes the logits large and the softmax saturated, which masks gradients rather than
    removing adversarial examples (Carlini & Wagner); the robustness it gives is against
    gradient-based attacks such as FGSM only. Checked against the paper's description; it
    agrees with the catalogue entry.

    References
    ----------
    N. Papernot, P. McDaniel, X. Wu, S. Jha, A. Swami. "Distillation as a Defense to
    Adversarial Perturbations against Deep Neural Networks." IEEE S&P 2016, arXiv:1511.04508.

    Examples
    --------
    >>> import torch
    >>> loss = DefensiveDistillation(temperature=2.0, reduction="none")
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> t = torch.tensor([[3.0, 0.0], [0.0, 1.0], [4.0, 0.0], [-1.0, 2.0]])
    >>> out = loss(z, torch.tensor([0, 1, 0, 1]), teacher_logits=t)
    >>> [round(v, 4) for v in out.tolist()]
    [0.4957, 0.6908, 0.6931, 0.6931]
    """

    def __init__(self, *, temperature: float = 20.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature

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
        t = self.temperature
        soft = (teacher / t).softmax(dim=-1)
        return -(soft * (input / t).log_softmax(dim=-1)).sum(dim=-1)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"
