"""Cross-entropy variants that limit or reward confidence: entropy-regularised CE and DCO."""

from __future__ import annotations

import math
from typing import Any

import torch

from lossreg import LossModule

from ._private import log1mexp, target_log_prob

__all__ = ["DCO", "EntropyRegularizedCE"]

# Below this log-value, -log(1 - e^x) and log(1 - exp(-e^x)) equal x to float64 precision.
_ASYMPTOTIC = -40.0


class EntropyRegularizedCE(LossModule):
    r"""Cross-entropy minus a multiple of the prediction entropy.

    .. math::

        \ell_i = -\log p_{t} - \beta\, H(p_i), \qquad H(p) = -\sum_c p_c \log p_c

    Input logits have shape (N, C); targets are class indices (N,). :math:`\beta > 0` is the
    confidence penalty (rewards entropy); :math:`\beta < 0` sharpens predictions, the
    entropy reduction studied for adversarial robustness.

    Parameters
    ----------
    beta : float in [-1, 1], default=0.1
        Weight of the entropy term; 0 is ``cross_entropy``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    :math:`H` is computed from ``log_softmax`` (:math:`p\log p` with :math:`p = e^{\log p}`),
    so it stays finite at extreme logits. With :math:`\beta < 0` the loss rewards unbounded
    confidence. The abstract of the adversarial-examples paper (arXiv:1711.02846) confirms
    only that it "stud[ies] the effects of reducing prediction entropy"; how it weights the
    term was not checked, so this is not claimed as a reproduction. The default 0.1 is the
    confidence-penalty setting.

    References
    ----------
    E. D. Cubuk, B. Zoph, S. S. Schoenholz, Q. V. Le. "Intriguing Properties of Adversarial
    Examples." arXiv:1711.02846, 2017. G. Pereyra, G. Tucker, J. Chorowski, Ł. Kaiser,
    G. Hinton. "Regularizing Neural Networks by Penalizing Confident Output Distributions."
    2017.

    Examples
    --------
    >>> import torch
    >>> loss = EntropyRegularizedCE(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 1, 0, 0])).tolist()]
    [0.0904, 0.0904, 0.6238, 3.0295]
    """

    def __init__(self, *, beta: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.beta = beta

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_p = input.log_softmax(dim=-1)
        entropy = -(log_p.exp() * log_p).sum(dim=-1)
        return -target_log_prob(log_p, target) - self.beta * entropy

    def extra_repr(self) -> str:
        return f"beta={self.beta}, reduction={self.reduction!r}"


class DCO(LossModule):
    r"""Direct coverage optimisation: the negative log-probability that N guesses contain y.

    .. math::

        \ell_i = -\log\big(1 - (1 - p_t)^N\big)

    Input logits have shape (N_rows, C); targets are class indices. The gradient is the
    cross-entropy gradient times :math:`F = N p_t (1-p_t)^{N-1} / (1 - (1-p_t)^N) \in (0, 1]`,
    so confident rows are pushed less than under cross-entropy.

    Parameters
    ----------
    n : float in [1, inf), default=1.0
        Number of sampled guesses :math:`N` (real values allowed; typical 4 to 256).
        :math:`N = 1` is ``cross_entropy``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Computed in log space: :math:`a = \log p_t`, :math:`b = \log(1-p_t) =
    \mathrm{log1mexp}(a)`, and :math:`\ell = -\log(1 - e^{N b})` evaluated through
    :math:`u = \log N + \log(-b)` as :math:`-\log(1 - \exp(-e^{u}))`, with the asymptote
    :math:`\ell \approx -u` once :math:`u < -40` (where :math:`e^{a}` would underflow, the
    direct form would give :math:`\log 0`). :math:`a` is clamped just below 0 so that a row
    with :math:`p_t` rounding to 1 gets a loss of ~0 and a zero gradient instead of NaN.
    The paper (arXiv:2502.07154) derives the loss from pass@N coverage; no public code was
    found, and the formula above is the catalogue's, which matches the pass@N definition
    :math:`1-(1-p)^N`. A per-row :math:`N` (fit extra) is not supported yet.

    References
    ----------
    F. Chen, A. Raventós, N. Cheng, S. Ganguli, S. Druckmann. "Rethinking Fine-Tuning when
    Scaling Test-Time Compute: Limiting Confidence Improves Mathematical Reasoning."
    NeurIPS 2025, arXiv:2502.07154.

    Examples
    --------
    >>> import torch
    >>> loss = DCO(n=4.0, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 1, 0, 0])).tolist()]
    [0.0002, 0.0002, 0.0645, 1.7337]
    """

    def __init__(self, *, n: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.n = n

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_pt = target_log_prob(input.log_softmax(dim=-1), target)
        # log p_t = 0 (p_t rounds to 1) would make log(1 - p_t) = -inf and the gradient NaN.
        a = log_pt.clamp_max(-torch.finfo(input.dtype).tiny)
        safe_a = a.clamp_min(_ASYMPTOTIC)
        log_neg_b = torch.where(a < _ASYMPTOTIC, a, torch.log(-log1mexp(safe_a)))
        u = math.log(self.n) + log_neg_b
        safe_u = u.clamp_min(_ASYMPTOTIC)
        log_coverage = torch.where(u < _ASYMPTOTIC, u, torch.log(-torch.expm1(-torch.exp(safe_u))))
        return -log_coverage

    def extra_repr(self) -> str:
        return f"n={self.n}, reduction={self.reduction!r}"
