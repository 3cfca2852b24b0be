"""PolyLoss: cross-entropy and focal loss with re-weighted leading polynomial terms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target, as_float_target

from ._private import per_row, target_log_prob
from ._weights import class_weight_buffer, select_class_weight

__all__ = ["Poly1", "Poly1BCE", "Poly1Focal", "PolyN"]


class Poly1(LossModule):
    r"""Poly-1 loss: cross-entropy plus a re-weighted first polynomial term.

    .. math::

        \ell_i = -\log p_t + \epsilon\,(1 - p_t), \qquad p_t = \mathrm{softmax}(z_i)_{y_i}

    :math:`\log p_t` comes from ``log_softmax`` and :math:`1 - p_t` from
    ``-expm1(log p_t)``. Input logits have shape (N, C); targets are class indices (N,).

    Parameters
    ----------
    epsilon : float in [-1, inf), default=1.0
        Extra weight of :math:`(1-p_t)`. :math:`\epsilon \ge -1` keeps the leading
        polynomial coefficient non-negative; 0 is cross-entropy, 2 was best for ImageNet.
    label_smoothing : float in [0, 1), default=0.0
        With :math:`s > 0` the target is :math:`q = (1-s)e_y + s/C` (as in
        ``cross_entropy``), the first term is the smoothed cross-entropy and
        :math:`p_t = \langle q, p\rangle`, as in the paper's label-smoothing setting.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    :math:`\epsilon = 0` reproduces ``cross_entropy`` exactly (with the same
    ``label_smoothing``). The formula agrees with the catalogue and with
    jahongir7174/PolyLoss (``polyloss/polyloss.py``: ``ce + epsilon * (1 - pt)``), whose
    default is :math:`\epsilon = 2` (the paper's ImageNet value); the catalogue's default 1
    is kept here.

    References
    ----------
    Z. Leng, M. Tan, C. Liu, E. D. Cubuk, X. Shi, S. Cheng, D. Anguelov. "PolyLoss: A
    Polynomial Expansion Perspective of Classification Loss Functions." ICLR 2022,
    arXiv:2204.12511.

    Examples
    --------
    >>> import torch
    >>> loss = Poly1(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.2461, 0.2461, 1.1931, 4.0012]
    """

    def __init__(
        self, *, epsilon: float = 1.0, label_smoothing: float = 0.0, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.epsilon = epsilon
        self.label_smoothing = label_smoothing

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_p = input.log_softmax(dim=-1)
        log_pt = target_log_prob(log_p, target)
        if self.label_smoothing == 0:
            return -log_pt + self.epsilon * -torch.expm1(log_pt)
        # Smoothed target q = (1 - s) e_y + s / C: CE against q and p_t = <q, p>.
        s = self.label_smoothing
        smoothed_ce = -(1 - s) * log_pt - s * log_p.mean(dim=-1)
        pt = (1 - s) * log_pt.exp() + s / input.shape[-1]
        return smoothed_ce + self.epsilon * (1 - pt)

    def extra_repr(self) -> str:
        return (
            f"epsilon={self.epsilon}, label_smoothing={self.label_smoothing}, "
            f"reduction={self.reduction!r}"
        )


class PolyN(LossModule):
    r"""Poly-N loss: cross-entropy plus re-weighted leading polynomial terms.

    .. math::

        \ell_i = -\log p_t + \sum_{j=1}^{n} \epsilon_j (1 - p_t)^j

    Shapes as :class:`Poly1`.

    Parameters
    ----------
    epsilons : sequence of floats, default=(1.0,)
        :math:`(\epsilon_1, \dots, \epsilon_n)`; the default is ``poly1``. Keep
        :math:`\sum_j \epsilon_j` modest: large high-order coefficients dominate when
        :math:`p_t` is small.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Equation of the paper's Poly-N formulation (arXiv:2204.12511, Sec. 4); matches the
    catalogue. ``epsilons=(e,)`` equals ``poly1(epsilon=e)``.

    References
    ----------
    Z. Leng et al. "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions." ICLR 2022, arXiv:2204.12511.

    Examples
    --------
    >>> import torch
    >>> loss = PolyN(epsilons=(1.0, 0.5), reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.2532, 0.2532, 1.3181, 4.4549]
    """

    def __init__(self, *, epsilons: Sequence[float] = (1.0,), reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.epsilons = epsilons
        # float64 so that float64 inputs see the coefficients unrounded; cast per call.
        self.register_buffer(
            "epsilons_", torch.as_tensor(epsilons, dtype=torch.float64).reshape(-1).clone()
        )

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_pt = target_log_prob(input.log_softmax(dim=-1), target)
        one_minus_pt = -torch.expm1(log_pt)
        powers = torch.arange(1, self.epsilons_.shape[0] + 1, device=input.device)
        terms = one_minus_pt.unsqueeze(1).pow(powers.to(input.dtype))
        return -log_pt + terms @ self.epsilons_.to(input.dtype)

    def extra_repr(self) -> str:
        return f"epsilons={self.epsilons}, reduction={self.reduction!r}"


class Poly1Focal(LossModule):
    r"""Poly-1 focal loss (softmax form).

    .. math::

        \ell_i = -\alpha_{y_i}(1-p_t)^\gamma \log p_t + \epsilon\,(1-p_t)^{\gamma+1}

    Shapes as :class:`Poly1`. With :math:`\epsilon = 0` this is ``focal``.

    Parameters
    ----------
    epsilon : float in [-1, inf), default=1.0
        Weight of the extra term (the paper found -1 best for detection).
    gamma : float in [0, inf), default=2.0
        Focusing parameter.
    alpha : sequence of C floats >= 0, or None, default=None
        Per-class weights of the focal term only (as in the paper's listing, the
        :math:`\epsilon` term is not weighted).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    For :math:`0 < \gamma < 1` the factor :math:`(1-p_t)^\gamma` has an unbounded derivative
    at :math:`p_t \to 1`, so :math:`1-p_t` is clamped at 1e-12 (as in ``focal``).

    References
    ----------
    Z. Leng et al. "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions." ICLR 2022, arXiv:2204.12511.

    Examples
    --------
    >>> import torch
    >>> loss = Poly1Focal(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0035, 0.0035, 0.2983, 3.6306]
    """

    def __init__(
        self,
        *,
        epsilon: float = 1.0,
        gamma: float = 2.0,
        alpha: Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.epsilon = epsilon
        self.gamma = gamma
        self.alpha = alpha
        self.register_buffer("alpha_", class_weight_buffer(alpha))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        log_pt = target_log_prob(input.log_softmax(dim=-1), labels)
        one_minus_pt = -torch.expm1(log_pt)
        if self.gamma != 0:
            one_minus_pt = one_minus_pt.clamp_min(1e-12)
        modulator = one_minus_pt.pow(self.gamma)
        focal = -modulator * log_pt
        if self.alpha_ is not None:
            focal = select_class_weight(self.alpha_, labels, input, "alpha") * focal
        return focal + self.epsilon * modulator * one_minus_pt

    def extra_repr(self) -> str:
        return (
            f"epsilon={self.epsilon}, gamma={self.gamma}, alpha={self.alpha}, "
            f"reduction={self.reduction!r}"
        )


class Poly1BCE(LossModule):
    r"""Poly-1 binary cross-entropy for binary and multilabel targets.

    .. math::

        \ell = \mathrm{softplus}(-y^\pm f) + \epsilon\,(1 - p_t), \qquad
        p_t = \sigma(y^\pm f)

    per element, with :math:`y^\pm = 2y-1`. The logit has shape (N,) or (N, 1) for a binary
    target, (N, L) for L labels; targets in {0, 1} have the same shape. A row's value is the
    mean over its labels. :math:`\epsilon = 0` is ``bce``.

    Parameters
    ----------
    epsilon : float in [-1, inf), default=1.0
        Weight of :math:`(1-p_t)`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    :math:`1 - p_t = \sigma(-y^\pm f)`, computed directly rather than as a difference.

    References
    ----------
    Z. Leng et al. "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions." ICLR 2022, arXiv:2204.12511.

    Examples
    --------
    >>> import torch
    >>> loss = Poly1BCE(reduction="none")
    >>> values = loss(torch.tensor([2.0, -2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.2461, 0.2461, 1.1931, 2.0443]
    """

    def __init__(self, *, epsilon: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.epsilon = epsilon

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        margin = (2 * y - 1) * input
        return per_row(F.softplus(-margin) + self.epsilon * torch.sigmoid(-margin))

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, reduction={self.reduction!r}"
