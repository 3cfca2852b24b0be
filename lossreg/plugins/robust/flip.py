"""Binary losses for labels flipped at a known rate: robust (unbiased) and conservative BCE."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_float_target

__all__ = ["ConservativeBCE", "RobustDPO"]


def _signed_margin(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\tilde h = h (2y - 1)` as shape (N,), from a logit of shape (N,) or (N, 1)."""
    if input.ndim == 2 and input.shape[1] == 1:
        input = input[:, 0]
    if input.ndim != 1:
        raise ValueError(
            f"Expected one logit per row, shape (N,) or (N, 1). Got shape {tuple(input.shape)}."
        )
    y = as_float_target(target, input)
    return input * (2 * y - 1)


class RobustDPO(LossModule):
    r"""Unbiased logistic loss under symmetric label flips (robust DPO, backward correction).

    .. math::

        \tilde h_i = h_i (2\tilde y_i - 1), \quad \phi(u) = -\log\sigma(u) = \mathrm{softplus}(-u),
        \quad \ell_i = \frac{(1-\varepsilon)\,\phi(\tilde h_i) - \varepsilon\,\phi(-\tilde h_i)}
        {1 - 2\varepsilon}

    Its expectation over labels flipped with probability :math:`\varepsilon` equals the clean
    logistic loss :math:`\phi(h(2y-1))`. With a pair score difference :math:`h = s_i - s_j` it
    is the robust DPO loss (rDPO).

    Input: one logit per row, shape (N,) or (N, 1); targets in {0, 1} (possibly flipped).

    Parameters
    ----------
    epsilon : float in [0, 0.5), default=0.1
        Label flip rate :math:`\varepsilon`, known or estimated (the paper uses 0.1-0.4).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Unbounded below because of the negative term: an over-parameterised network can drive the
    loss to :math:`-\infty` on flipped rows; use early stopping on clean validation data or
    weight decay. :math:`\varepsilon \to 0.5` blows up. :math:`\varepsilon = 0` is ``bce``.
    The catalogue marks the entry from-memory; the closed form was checked by the unbiasedness
    identity in the tests, and agrees with the ``loss_type="robust"`` branch of TRL's DPO
    trainer, :math:`(-(1-\varepsilon)\log\sigma(\beta l) + \varepsilon\log\sigma(-\beta l))
    / (1-2\varepsilon)` with ``label_smoothing`` :math:`= \varepsilon`, here with
    :math:`\beta l = h`. ``epsilon=0.1`` is our default (the paper sweeps the rate).

    References
    ----------
    S. R. Chowdhury, A. Kini, N. Natarajan. "Provably Robust DPO: Aligning Language Models
    with Noisy Feedback." ICML 2024, arXiv:2403.00409.

    Examples
    --------
    >>> import torch
    >>> loss = RobustDPO(reduction="none")
    >>> values = loss(torch.tensor([2.0, -2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [-0.1231, -0.1231, 0.6931, 1.4383]
    """

    def __init__(self, *, epsilon: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.epsilon = epsilon

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        margin = _signed_margin(input, target)
        eps = self.epsilon
        return ((1 - eps) * F.softplus(-margin) - eps * F.softplus(margin)) / (1 - 2 * eps)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, reduction={self.reduction!r}"


class ConservativeBCE(LossModule):
    r"""Conservative (label-smoothed) logistic loss, the cDPO baseline.

    .. math::

        \ell_i = (1-\varepsilon)\,\phi(\tilde h_i) + \varepsilon\,\phi(-\tilde h_i), \qquad
        \tilde h_i = h_i (2 y_i - 1), \quad \phi(u) = \mathrm{softplus}(-u)

    the binary cross-entropy against the smoothed target :math:`(1-\varepsilon) y +
    \varepsilon (1 - y)`.

    Input: one logit per row, shape (N,) or (N, 1); targets in {0, 1}.

    Parameters
    ----------
    epsilon : float in [0, 0.5), default=0.1
        Smoothing :math:`\varepsilon`; 0 is ``bce``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Biased under label flips: it shrinks the confidence instead of correcting the flips (see
    ``robust_dpo``). Closed form; checked in the tests against
    ``torch.nn.functional.binary_cross_entropy_with_logits`` with smoothed targets, and it
    matches the label-smoothed ``loss_type="sigmoid"`` branch of TRL's DPO trainer.

    References
    ----------
    S. R. Chowdhury, A. Kini, N. Natarajan. "Provably Robust DPO: Aligning Language Models
    with Noisy Feedback." ICML 2024, arXiv:2403.00409 (cDPO baseline).

    Examples
    --------
    >>> import torch
    >>> loss = ConservativeBCE(reduction="none")
    >>> values = loss(torch.tensor([2.0, -2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.3269, 0.3269, 0.6931, 1.2133]
    """

    def __init__(self, *, epsilon: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.epsilon = epsilon

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        margin = _signed_margin(input, target)
        return (1 - self.epsilon) * F.softplus(-margin) + self.epsilon * F.softplus(margin)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, reduction={self.reduction!r}"
