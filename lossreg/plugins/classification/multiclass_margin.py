"""Multiclass hinge losses on class scores: Weston-Watkins and Crammer-Singer."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

__all__ = ["CrammerSinger", "WestonWatkins"]

#: Up to this many scores per batch, weston_watkins calls torch's fused
#: ``F.multi_margin_loss`` (the same sum over k != y, divided by C); above it, the chain of
#: whole-tensor ops. The fused CPU kernel is one serial loop over rows: at a training batch
#: (256 rows, up to ~100 classes) it is 1.5-4x faster than the chain's six ops and their
#: backward nodes, but at 8192 x 10 the chain, vectorised and multi-threaded, wins (and by
#: 3x at 8192 x 100). The two compute the same formula; they differ by rounding only.
FUSED_MAX_SCORES = 32_768


def _margins(input: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """Return :math:`c - z_{y} + z_k` for every class k, with the true class set to -inf."""
    labels = as_class_target(target).unsqueeze(1)
    violations = margin - input.gather(1, labels) + input
    return violations.scatter(1, labels, float("-inf"))


class WestonWatkins(LossModule):
    r"""Weston-Watkins multiclass hinge loss.

    .. math::

        \ell_i = \frac{1}{C}\sum_{k \ne y_i} \max(0,\, c - z_{i,y_i} + z_{ik})

    Input scores have shape (N, C); targets are class indices (N,).

    Parameters
    ----------
    margin : float in (0, inf), default=1.0
        The margin :math:`c`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The :math:`1/C` factor follows ``torch.nn.MultiMarginLoss(p=1)``, which this loss equals
    (tested); some texts omit it. Scores, not probabilities: predict by argmax. Up to
    ``FUSED_MAX_SCORES`` (32,768) scores per batch it runs torch's fused
    ``F.multi_margin_loss``, above that a chain of whole-tensor ops that is faster there; both
    are tested against a float64 loop over rows and classes.

    References
    ----------
    J. Weston, C. Watkins. "Support Vector Machines for Multi-Class Pattern Recognition."
    ESANN 1999. Used as a baseline in D. Zhu et al. "Label Distributionally
    Robust Losses for Multi-class Classification: Consistency, Robustness and Adaptivity."
    ICML 2023.

    Examples
    --------
    >>> import torch
    >>> loss = WestonWatkins(reduction="none")
    >>> scores = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 1.5], [1.0, 1.0, 1.0], [0.0, 3.0, 0.0]])
    >>> values = loss(scores, torch.tensor([0, 1, 0, 0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0, 0.1667, 0.6667, 1.6667]
    """

    def __init__(self, *, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = margin

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        if self._fused(input):
            return F.multi_margin_loss(
                input, as_class_target(target), margin=self.margin, reduction="none"
            )
        return torch.relu(_margins(input, target, self.margin)).sum(dim=1) / input.shape[1]

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        if not self._fused(input):
            return None
        return F.multi_margin_loss(input, as_class_target(target), margin=self.margin)

    @staticmethod
    def _fused(input: torch.Tensor) -> bool:
        # The fused kernel takes (N, C) scores only; anything else gets the chain's errors.
        return input.ndim == 2 and input.numel() <= FUSED_MAX_SCORES

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class CrammerSinger(LossModule):
    r"""Crammer-Singer multiclass hinge loss (only the hardest wrong class counts).

    .. math::

        \ell_i = \max\big(0,\; c + \max_{k \ne y_i} z_{ik} - z_{i,y_i}\big)

    Input scores have shape (N, C) with C >= 2; targets are class indices (N,).

    Parameters
    ----------
    margin : float in (0, inf), default=1.0
        The margin :math:`c`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Only the hardest wrong class gets gradient; it is the :math:`\lambda \to 0` limit of the
    LDR-KL loss. Scores, not probabilities: predict by argmax.

    References
    ----------
    K. Crammer, Y. Singer. "On the Algorithmic Implementation of Multiclass Kernel-based
    Vector Machines." JMLR 2001. Used as a baseline in D. Zhu et al. "Label
    Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness
    and Adaptivity." ICML 2023.

    Examples
    --------
    >>> import torch
    >>> loss = CrammerSinger(reduction="none")
    >>> scores = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 1.5], [1.0, 1.0, 1.0], [0.0, 3.0, 0.0]])
    >>> values = loss(scores, torch.tensor([0, 1, 0, 0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0, 0.5, 1.0, 4.0]
    """

    def __init__(self, *, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = margin

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return torch.relu(_margins(input, target, self.margin).amax(dim=1))

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"
