"""Adaptive logit adjustment: the prior offset replaced by a per-class learning status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import LossModule, as_class_target

from ._private import counts_buffer

__all__ = ["AdaptiveLogitAdjusted"]

# A class that is never predicted has status 0; log(0) would make its adjusted logit -inf.
_MIN_STATUS = 1e-6


class AdaptiveLogitAdjusted(LossModule):
    r"""Logit-adjusted cross-entropy whose offsets follow each class's learning status.

    .. math::

        \ell_i = \mathrm{CE}\bigl(z_i + \tau \log b,\ y_i\bigr),\qquad
        b_c = \frac{\bar p_c}{\max_k \bar p_k},\quad
        \bar p_c = \mathrm{mean}_{j:\,y_j = c}\ \hat p_{jc}

    where :math:`\hat p` are predicted probabilities on **validation** rows. :math:`b`
    starts at the class priors (then this is ``logit_adjusted``) and is refreshed by
    :meth:`update_status` at the end of every epoch; classes without validation rows keep
    their value. The estimators do this through :meth:`on_validation_end` when they hold out
    a validation split (``early_stopping=True``); without one, :math:`b` stays at the priors.
    Poorly learned classes get a lower offset, so training pushes their logits up. Input
    logits (N, C); targets class indices (N,). Training only: predict with ``softmax(z)``.

    Parameters
    ----------
    tau : float >= 0, default=1.0
        Adjustment strength.
    class_priors : sequence of C floats > 0
        Class frequencies of the training fold: the initial status (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    State: the buffer ``status_`` (:math:`b`), reset whenever the estimator builds a new
    criterion at ``fit``. The status is clamped at 1e-6 before the log. Following the
    catalogue's description of jhb86253817/PromptMRG (``models/blip.py``,
    ``modules/trainer.py``), where each of 18 disease labels is a 4-state softmax and
    :math:`\log b_c` is added to the positive-state logit; this is the multiclass form of
    the same rule (the paper's multilabel per-state form needs a multi-softmax head).
    The epoch-end update was checked against ``modules/trainer.py`` (``eval_blip``): after
    every training epoch the validation split is predicted, the positive-state probability
    is averaged over the rows whose label is positive, divided by its maximum, and replaces
    the offsets used by the next epoch, which is when the estimators call
    :meth:`on_validation_end`. Departure: a class without validation rows would be 0/0 (NaN)
    in that code; here it keeps its previous value. The validation loss the estimator reports
    uses the current status, so it moves with :math:`b` as well as with the network.

    References
    ----------
    H. Jin, H. Che, Y. Lin, H. Chen. "PromptMRG: Diagnosis-Driven Prompts for Medical Report
    Generation." AAAI 2024, arXiv:2308.12604.

    Examples
    --------
    >>> import torch
    >>> loss = AdaptiveLogitAdjusted(class_priors=[0.75, 0.25], reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 0, 1])
    >>> loss.update_status(torch.tensor([[0.9, 0.1], [0.5, 0.5]]), torch.tensor([0, 1]))
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.0725, 0.218, 0.4418, 1.0296]
    """

    def __init__(
        self, *, tau: float = 1.0, class_priors: Sequence[float], reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.tau = tau
        self.class_priors = class_priors
        self.register_buffer("status_", counts_buffer(class_priors, "class_priors").clone())

    @torch.no_grad()
    def update_status(self, proba: torch.Tensor, target: torch.Tensor) -> None:
        """Recompute :math:`b` from validation probabilities (N, C) and labels (N,)."""
        labels = as_class_target(torch.as_tensor(target))
        proba = torch.as_tensor(proba, dtype=self.status_.dtype, device=self.status_.device)
        status = self.status_.clone()
        for c in range(status.numel()):
            rows = labels == c
            if bool(rows.any()):
                status[c] = proba[rows, c].mean()
        self.status_.copy_((status / status.max()).clamp_min(_MIN_STATUS))

    def on_validation_end(
        self, input: torch.Tensor, target: torch.Tensor, **fields: torch.Tensor
    ) -> None:
        """Epoch-end hook: refresh :math:`b` from the validation split's logits and labels.

        The estimators call it after every epoch when they hold out a validation split
        (``early_stopping=True``); the logits become probabilities with a softmax, as at
        predict time, and go to :meth:`update_status`. Other fields (weights) are ignored, as
        in the paper's rule (a plain mean over validation rows).
        """
        self.update_status(input.detach().softmax(dim=-1), target)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        offset = self.tau * self.status_.to(input.dtype).clamp_min(_MIN_STATUS).log()
        logits = input + offset
        labels = as_class_target(target)
        return -logits.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, reduction={self.reduction!r}"
