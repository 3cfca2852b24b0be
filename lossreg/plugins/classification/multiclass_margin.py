"""Multiclass hinge losses on class scores: Weston-Watkins and Crammer-Singer."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_class_target

__all__ = ["CrammerSinger", "WestonWatkins"]


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
    (tested); some texts omit it. Scores, not probabilities: predict by argmax.

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
        return torch.relu(_margins(input, target, self.margin)).sum(dim=1) / input.shape[1]

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
