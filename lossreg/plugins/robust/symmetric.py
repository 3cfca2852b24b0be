"""Symmetric and active-passive combinations: SCE, NCE+RCE, NCE+AGCE, NCE+AUL."""

from __future__ import annotations

import math
from typing import Any

import torch

from lossreg import LossModule

from ._private import agce_term, aul_term, log_probs, nce_term, rce_term

__all__ = ["NCEAndAGCE", "NCEAndAUL", "NCEAndRCE", "SymmetricCrossEntropy"]

#: log(1e-4): the reverse-CE convention of the NCE+RCE reference code (one-hot clamped at 1e-4).
LOG_CLAMP = math.log(1e-4)


class SymmetricCrossEntropy(LossModule):
    r"""Symmetric cross-entropy: CE plus reverse CE with :math:`\log 0 := A`.

    .. math::

        \ell_i = \alpha\, \mathrm{CE}_i + \beta\, \mathrm{RCE}_i, \qquad
        \mathrm{RCE}_i = -\sum_k p_{ik} \log e_{y_i k} = -A\,(1 - p_t)

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    alpha : float in [0, inf), default=0.1
        Weight of CE (the paper's CIFAR-10 setting; CIFAR-100 used 6.0).
    beta : float in [0, inf), default=1.0
        Weight of reverse CE (CIFAR-10 setting; CIFAR-100 used 0.1).
    log_zero : float in (-inf, 0), default=-4.0
        :math:`A`, the value given to :math:`\log 0` (the paper's -4).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    :math:`\alpha, \beta` defaults are the authors' CIFAR-10 run (repository
    YisenWang/symmetric_cross_entropy_for_noisy_labels, ``train_models.py``: ``alpha=0.1,
    beta=1.0``; CIFAR-100 ``6.0, 0.1``).
    :math:`A = -4` is the paper's value as the catalogue records it; the authors' Keras code
    instead clips the one-hot label at :math:`10^{-4}` (:math:`A = \log 10^{-4} \approx -9.21`)
    and the probabilities at :math:`10^{-7}`. The paper's :math:`A` is the default (the text of
    the paper could not be re-read here; pass ``log_zero=math.log(1e-4)`` for the code's
    behaviour). Other parameterisations are special cases: the Optimization-AI/ICML2023_LDR
    file's ``SCELoss(balance=b, A=a)`` is :math:`(1-b)\,\mathrm{CE} + b\,a\,(1-p_t)`, i.e.
    ``alpha=1-b, beta=b, log_zero=-a``. Both mappings are tested.

    References
    ----------
    Y. Wang, X. Ma, Z. Chen, Y. Luo, J. Yi, J. Bailey. "Symmetric Cross Entropy for Robust
    Learning with Noisy Labels." ICCV 2019, arXiv:1908.06112.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = SymmetricCrossEntropy(reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.6418, 1.3798, 2.7765, 4.1284]
    """

    def __init__(
        self,
        *,
        alpha: float = 0.1,
        beta: float = 1.0,
        log_zero: float = -4.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.beta = beta
        self.log_zero = log_zero

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        _, log_pt = log_probs(input, target)
        return -self.alpha * log_pt + self.beta * rce_term(log_pt, self.log_zero)

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, log_zero={self.log_zero}, "
            f"reduction={self.reduction!r}"
        )


class NCEAndRCE(LossModule):
    r"""Active-passive loss: normalised cross-entropy plus reverse cross-entropy.

    .. math::

        \mathrm{NCE}_i = \frac{\log p_t}{\sum_k \log p_{ik}}, \qquad
        \mathrm{RCE}_i = -\log(10^{-4})\,(1 - p_t), \qquad
        \ell_i = \alpha\, \mathrm{NCE}_i + \beta\, \mathrm{RCE}_i

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    alpha : float in [0, inf), default=1.0
        Weight of NCE (the paper uses 1 with 10 classes, 10 with 100 classes).
    beta : float in [0, inf), default=1.0
        Weight of RCE (1 with 10 classes, 0.1 with 100 classes).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    All logs come from ``log_softmax``; the NCE denominator is at most :math:`-C\log C < 0`,
    so it never vanishes. Checked against the Optimization-AI/ICML2023_LDR loss file
    (``NCELoss``, ``RCELoss``, ``NCEandRCE``): same formula; that code also clamps
    :math:`p \ge 10^{-7}` inside RCE, which changes the value only for classes with
    :math:`p_k < 10^{-7}`. The class-count-dependent paper settings are not applied
    automatically: pass ``alpha``/``beta`` for many classes.

    References
    ----------
    X. Ma, H. Huang, Y. Wang, S. Romano, S. Erfani, J. Bailey. "Normalized Loss Functions for
    Deep Learning with Noisy Labels." ICML 2020, arXiv:2006.13554.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = NCEAndRCE(reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [1.4695, 3.1798, 6.4736, 9.2858]
    """

    def __init__(self, *, alpha: float = 1.0, beta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.beta = beta

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_p, log_pt = log_probs(input, target)
        return self.alpha * nce_term(log_p, log_pt) + self.beta * rce_term(log_pt, LOG_CLAMP)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, reduction={self.reduction!r}"


class NCEAndAGCE(LossModule):
    r"""Active-passive loss: normalised cross-entropy plus asymmetric generalized CE.

    .. math::

        \mathrm{AGCE}_i = \frac{(a+1)^q - (a+p_t)^q}{q}, \qquad
        \ell_i = \alpha\, \frac{\log p_t}{\sum_k \log p_{ik}} + \beta\, \mathrm{AGCE}_i

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    alpha : float in [0, inf), default=1.0
    beta : float in [0, inf), default=4.0
    a : float in (0, inf), default=6.0
    q : float in [0, inf), default=1.5
        :math:`q > 1` makes AGCE completely asymmetric (noise-tolerant for any :math:`a > 0`);
        :math:`q = 0` is the limit :math:`\log\frac{a+1}{a+p_t}`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Defaults are the authors' CIFAR-10 setting (hitcszx/ALFs ``config.py``:
    ``NCEandAGCE(alpha=1, beta=4, a=6, q=1.5)``); for CIFAR-100 they use :math:`\alpha=10,
    \beta=0.1, a=1.8, q=3`. The catalogue gave :math:`\alpha=\beta=1` for 10 classes (a
    reimplementation's table); the authors' configuration was followed. The
    Optimization-AI/ICML2023_LDR file's class default is :math:`a=3, q=1.5, \beta=1`; its
    formula (``AGCELoss``, ``NCEandAGCE``) agrees with this one.

    References
    ----------
    X. Zhou, X. Liu, J. Jiang, X. Gao, X. Ji. "Asymmetric Loss Functions for Learning with
    Noisy Labels." ICML 2021, arXiv:2106.03110.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = NCEAndAGCE(reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [1.6747, 3.5966, 7.2179, 10.2435]
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        beta: float = 4.0,
        a: float = 6.0,
        q: float = 1.5,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.beta = beta
        self.a = a
        self.q = q

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_p, log_pt = log_probs(input, target)
        return self.alpha * nce_term(log_p, log_pt) + self.beta * agce_term(log_pt, self.a, self.q)

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, a={self.a}, q={self.q}, "
            f"reduction={self.reduction!r}"
        )


class NCEAndAUL(LossModule):
    r"""Active-passive loss: normalised cross-entropy plus the asymmetric unhinged loss.

    .. math::

        \mathrm{AUL}_i = \frac{(a-p_t)^q - (a-1)^q}{q}, \qquad
        \ell_i = \alpha\, \frac{\log p_t}{\sum_k \log p_{ik}} + \beta\, \mathrm{AUL}_i

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    alpha : float in [0, inf), default=1.0
    beta : float in [0, inf), default=4.0
    a : float in (1, inf), default=6.3
        Must exceed 1 so that :math:`a - p_t > 0`.
    q : float in [0, inf), default=1.5
        :math:`q = 0` is the limit :math:`\log\frac{a-p_t}{a-1}`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Reimplementations call the term "AUE"/"AUEL"; the formula is identical. Defaults are the
    authors' CIFAR-10 setting (hitcszx/ALFs ``config.py``: ``NCEandAUE(alpha=1, beta=4, a=6.3,
    q=1.5)``); for CIFAR-100 they use :math:`a=6, q=3, \alpha=10, \beta=0.015`. The catalogue
    gave :math:`a=6, \alpha=\beta=1` for 10 classes (a reimplementation's table); the authors'
    configuration was followed. Formula checked against the Optimization-AI/ICML2023_LDR loss
    file (``AULLoss``, ``NCEandAUL``).

    References
    ----------
    X. Zhou, X. Liu, J. Jiang, X. Gao, X. Ji. "Asymmetric Loss Functions for Learning with
    Noisy Labels." ICML 2021, arXiv:2106.03110.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = NCEAndAUL(reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [1.4798, 3.2274, 6.6616, 9.669]
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        beta: float = 4.0,
        a: float = 6.3,
        q: float = 1.5,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.beta = beta
        self.a = a
        self.q = q

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_p, log_pt = log_probs(input, target)
        return self.alpha * nce_term(log_p, log_pt) + self.beta * aul_term(log_pt, self.a, self.q)

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, a={self.a}, q={self.q}, "
            f"reduction={self.reduction!r}"
        )
