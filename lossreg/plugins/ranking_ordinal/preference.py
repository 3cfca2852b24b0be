"""Preference optimisation on class logits: DPO on a chosen vs a rejected class plus an SFT term."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

__all__ = ["RegularizedPreference"]


def _picked(log_p: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return log_p.gather(1, labels[:, None])[:, 0]


class RegularizedPreference(LossModule):
    r"""DPO between a chosen and a rejected class, plus the NLL of the chosen class (RPO).

    .. math::

        \Delta_i = \big(\log p_{i,y_w} - \log p^{ref}_{i,y_w}\big)
                 - \big(\log p_{i,y_l} - \log p^{ref}_{i,y_l}\big),\qquad
        \ell_i = -\log\sigma(\beta\Delta_i) - \eta\log p_{i,y_w}

    with log-softmax probabilities of the logits (N, C) and of optional reference logits.
    Target: the chosen class :math:`y_w` (N,); ``rejected_label``: the rejected class
    :math:`y_l` per row (fit extra); ``teacher_logits``: optional reference logits (N, C)
    (without them the reference terms are 0, i.e. a uniform reference).

    Parameters
    ----------
    beta : float in (0, inf), default=0.1
        DPO inverse temperature :math:`\beta`.
    eta : float in [0, inf), default=1.0
        Weight :math:`\eta` of the SFT (NLL) term on the chosen class; 0 gives plain DPO.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The form DPO + :math:`\eta`·NLL(chosen) agrees with TRL's ``DPOTrainer`` with
    ``rpo_alpha`` (``losses + rpo_alpha * nll_loss``, ``beta = 0.1`` by default; its docs
    recommend ``rpo_alpha = 1.0`` for the iterative-RPO paper, which uses the same form).
    The overoptimisation paper's own weighting of the SFT term (its exact :math:`\eta`
    scale) was not checked in its code; :math:`\eta = 1` is assumed. Rows with
    :math:`y_w = y_l` have :math:`\Delta = 0`. ``-log sigmoid`` is computed as
    ``softplus(-x)``. Without :math:`\eta` the DPO term alone can push both
    log-probabilities down.

    References
    ----------
    Z. Liu et al. "Provably Mitigating Overoptimization in RLHF: Your SFT Loss is Implicitly
    an Adversarial Regularizer." NeurIPS 2024, arXiv:2405.16436.

    Examples
    --------
    >>> import torch
    >>> loss = RegularizedPreference(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    >>> chosen, rejected = torch.tensor([0, 0, 2, 1]), torch.tensor([1, 1, 0, 2])
    >>> [round(v, 4) for v in loss(logits, chosen, rejected_label=rejected).tolist()]
    [0.8377, 3.0377, 0.8377, 1.7918]
    """

    def __init__(self, *, beta: float = 0.1, eta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.beta = beta
        self.eta = eta

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        rejected_label: Any = None,
        teacher_logits: Any = None,
        **extras: Any,
    ) -> torch.Tensor:
        if rejected_label is None:
            raise ValueError(
                "Loss 'rpo_preference' needs rejected_label: the rejected class of each row."
            )
        chosen = as_class_target(target)
        rejected = as_class_target(torch.as_tensor(rejected_label, device=input.device))
        log_p = input.log_softmax(dim=1)
        margin = _picked(log_p, chosen) - _picked(log_p, rejected)
        if teacher_logits is not None:
            ref = torch.as_tensor(teacher_logits, dtype=input.dtype, device=input.device)
            if ref.shape != input.shape:
                raise ValueError(
                    f"teacher_logits (reference logits) must have the output's shape "
                    f"{tuple(input.shape)}. Got {tuple(ref.shape)}."
                )
            log_ref = ref.log_softmax(dim=1).detach()
            margin = margin - (_picked(log_ref, chosen) - _picked(log_ref, rejected))
        return F.softplus(-self.beta * margin) - self.eta * _picked(log_p, chosen)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, eta={self.eta}, reduction={self.reduction!r}"
