"""Asymmetric losses: ASL (multilabel and single-label) and the multi-grained focal modifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import as_label_matrix

__all__ = ["Asymmetric", "AsymmetricSingleLabel", "MultiFocalModifier"]


def _shifted_negative(input: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Return :math:`\log(1-p_m)` and :math:`p_m = \max(p - m, 0)` for the negative terms."""
    if clip > 0:
        # 1 - p_m = min(1 - p + m, 1) >= m > 0, so the log is finite without an eps clamp.
        one_minus = (torch.sigmoid(-input) + clip).clamp(max=1)
        return torch.log(one_minus), 1 - one_minus
    return -F.softplus(input), torch.sigmoid(input)


def _power(base: torch.Tensor, exponent: torch.Tensor | float) -> torch.Tensor:
    """``base ** exponent`` for base in [0, 1] without NaN gradients at base = 0."""
    exponent = torch.as_tensor(exponent, dtype=base.dtype, device=base.device)
    positive = base > 0
    safe = torch.where(positive, base, torch.ones_like(base))
    at_zero = (exponent == 0).to(base.dtype)  # 0 ** 0 = 1, 0 ** g = 0 for g > 0
    return torch.where(positive, safe.pow(exponent), at_zero)


class Asymmetric(LossModule):
    r"""Asymmetric loss (ASL) for multilabel targets.

    .. math::

        p_m = \max(p - m, 0),\qquad
        \ell_i = -\sum_c \bigl[y_{ic}(1-p_{ic})^{\gamma_+}\log p_{ic}
                 + (1-y_{ic})\,p_{m,ic}^{\gamma_-}\log(1-p_{m,ic})\bigr]

    with :math:`p = \sigma(z)`. Negatives are down-weighted by focusing and, below the clip
    :math:`m`, discarded ("probability shifting"). Logits (N, L); multi-hot targets (N, L).
    The row value **sums** over labels, as the reference does (``bce`` averages).

    Parameters
    ----------
    gamma_neg : float >= 0, default=4.0
        :math:`\gamma_-`.
    gamma_pos : float >= 0, default=0.0
        :math:`\gamma_+`.
    clip : float in [0, 1), default=0.05
        Probability margin :math:`m` of the negatives (useful range 0-0.2).
    disable_grad_focal : bool, default=False
        Compute the focusing weights without gradient.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against Alibaba-MIIL/ASL ``src/loss_functions/losses.py`` and
    ``timm.loss.AsymmetricLossMultiLabel``: same terms, with :math:`1-p_m` written as
    ``min(1 - p + m, 1)``. The reference sums over rows and labels; here ``mean`` averages the
    per-row sums over rows (timm's ``batchmean``), so the reference value is ``"sum"``. The
    reference clamps probabilities at eps = 1e-8 inside the logs; this implementation uses the
    exact log-space forms (:math:`\log p = -\mathrm{softplus}(-z)`), which differ only where
    the reference clamps (:math:`z < -18.4`). Defaults follow the paper (:math:`\gamma_+=0`);
    the reference class defaults to :math:`\gamma_+=1`. The focusing weights carry gradient
    by default, as in the reference (its ``disable_torch_grad_focal_loss`` lines are
    commented out).

    References
    ----------
    E. Ben-Baruch, T. Ridnik, N. Zamir, A. Noy, I. Friedman, M. Protter, L. Zelnik-Manor.
    "Asymmetric Loss For Multi-Label Classification." ICCV 2021, arXiv:2009.14119.

    Examples
    --------
    >>> import torch
    >>> loss = Asymmetric(reduction="none")
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    >>> [round(v, 4) for v in loss(logits, targets).tolist()]
    [0.1275, 0.1514, 0.5591, 0.0245]
    """

    def __init__(
        self,
        *,
        gamma_neg: float = 4.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
        disable_grad_focal: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.disable_grad_focal = disable_grad_focal

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        z, y = as_label_matrix(input, target)
        log_p = -F.softplus(-z)
        log_neg, p_m = _shifted_negative(z, self.clip)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.disable_grad_focal):
            # (1 - p)^g+ = exp(-g+ softplus(z)) stays exact when p rounds to 1.
            w_pos = torch.exp(-self.gamma_pos * F.softplus(z))
            w_neg = _power(p_m, self.gamma_neg)
        return -(y * w_pos * log_p + (1 - y) * w_neg * log_neg).sum(dim=1)

    def extra_repr(self) -> str:
        return (
            f"gamma_neg={self.gamma_neg}, gamma_pos={self.gamma_pos}, clip={self.clip}, "
            f"reduction={self.reduction!r}"
        )


class AsymmetricSingleLabel(LossModule):
    r"""Single-label (softmax) variant of the asymmetric loss, with label smoothing.

    .. math::

        \log p = \mathrm{log\_softmax}(z),\quad
        q = (1-\varepsilon)e_y + \varepsilon/C,\quad
        w_y = (1-p_y)^{\gamma_+},\ w_k = p_k^{\gamma_-}\ (k\ne y),\quad
        \ell_i = -\sum_k q_{ik}\,w_{ik}\log p_{ik}

    Logits (N, C); class indices (N,). At :math:`\gamma_\pm = 0` it is label-smoothed
    cross-entropy.

    Parameters
    ----------
    gamma_pos : float >= 0, default=0.0
        :math:`\gamma_+`.
    gamma_neg : float >= 0, default=4.0
        :math:`\gamma_-`.
    eps : float in [0, 1), default=0.1
        Label smoothing :math:`\varepsilon`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against ``ASLSingleLabel`` in Alibaba-MIIL/ASL and timm's
    ``AsymmetricLossSingleLabel``. Two catalogue statements differ from both: the weights are
    **not** detached there (followed here: gradients flow through them), and the official
    default is :math:`\gamma_+ = 0` (timm uses 1); the official code wins. Weights are computed
    in log space, :math:`(1-p_y)^{\gamma_+} = \exp(\gamma_+\log(1-p_y))`.

    References
    ----------
    E. Ben-Baruch, T. Ridnik, N. Zamir, A. Noy, I. Friedman, M. Protter, L. Zelnik-Manor.
    "Asymmetric Loss For Multi-Label Classification." ICCV 2021, arXiv:2009.14119.

    Examples
    --------
    >>> import torch
    >>> loss = AsymmetricSingleLabel(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 1, 0, 1])).tolist()]
    [0.1206, 0.1206, 0.6607, 0.6607]
    """

    def __init__(
        self,
        *,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        eps: float = 0.1,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.eps = eps

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        log_p = input.log_softmax(dim=-1)
        onehot = torch.zeros_like(log_p).scatter_(1, labels.unsqueeze(1), 1.0)
        # 1 - p from log p without cancellation; clamped so that log stays finite at p = 1.
        log_one_minus = torch.log((-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny))
        exponent = torch.where(onehot > 0, log_one_minus * self.gamma_pos, log_p * self.gamma_neg)
        weight = torch.exp(exponent)
        q = onehot * (1 - self.eps) + self.eps / input.shape[-1]
        return -(q * weight * log_p).sum(dim=-1)

    def extra_repr(self) -> str:
        return (
            f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, eps={self.eps}, "
            f"reduction={self.reduction!r}"
        )


class MultiFocalModifier(LossModule):
    r"""Multi-grained focal modifier: ASL with a rarity weight in the negative exponent.

    .. math::

        w_c = \bigl(1 - \log(\pi_c/\pi_{\max})\bigr)^{k},\qquad
        \ell_i = -\sum_c w_c\bigl[y_{ic}(1-p_{ic})^{\gamma_+}\log p_{ic}
                 + (1-y_{ic})\,p_{m,ic}^{\gamma_- + w_c}\log(1-p_{m,ic})\bigr]

    with :math:`p_m = \max(p - m, 0)` and :math:`\pi_c \propto n_c`. Rare labels get a larger
    weight and stronger focusing of their negatives. Logits (N, L); multi-hot targets; the
    row value sums over labels.

    Parameters
    ----------
    gamma_neg : float >= 0, default=4.0
        :math:`\gamma_-` (3 in the partial-label configuration).
    gamma_pos : float >= 0, default=0.0
        :math:`\gamma_+`.
    clip : float in [0, 1), default=0.05
        Probability margin :math:`m` of the negatives.
    exponent : float > 0, default=1/6
        :math:`k` of the rarity weight.
    disable_grad_focal : bool, default=True
        Compute the focusing weights without gradient (the reference default).
    class_counts : sequence of L ints > 0
        Positive training rows per label (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against wannature/COMIC ``loss/Multi-GrainedFocalLoss.py``: weight
    ``(1 - log(prob / max prob)) ** (1/6)`` multiplying both terms, negative exponent
    ``gamma_neg + weight``, focusing weights under ``no_grad``, sum over everything (``"sum"``
    here; ``mean`` averages the per-row sums). Exact log-space terms replace the reference's
    eps = 1e-8 clamps. A label with zero training positives would get an infinite weight:
    the constructor raises.

    References
    ----------
    W. Zhang, C. Liu, L. Zeng, B. C. Ooi, S. Tang, Y. Zhuang. "Learning in Imperfect
    Environment: Multi-Label Classification with Long-Tailed Distribution and Partial
    Labels." ICCV 2023, arXiv:2304.10539.

    Examples
    --------
    >>> import torch
    >>> loss = MultiFocalModifier(class_counts=[30, 3], reduction="none")
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    >>> [round(v, 4) for v in loss(logits, targets).tolist()]
    [0.127, 0.1659, 0.501, 0.0113]
    """

    def __init__(
        self,
        *,
        gamma_neg: float = 4.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
        exponent: float = 1 / 6,
        disable_grad_focal: bool = True,
        class_counts: Sequence[int],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.exponent = exponent
        self.disable_grad_focal = disable_grad_focal
        self.class_counts = class_counts
        counts = torch.as_tensor(class_counts, dtype=torch.float64).reshape(-1)
        if bool((counts <= 0).any()):
            raise ValueError(
                "multi_focal_modifier needs at least one positive training row per label; "
                f"got class_counts={list(class_counts)!r}."
            )
        self.register_buffer("weight_", (1 - torch.log(counts / counts.max())).pow(exponent))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        z, y = as_label_matrix(input, target)
        if z.shape[1] != self.weight_.numel():
            raise ValueError(
                f"The output has {z.shape[1]} labels but class_counts has "
                f"{self.weight_.numel()}; pass one positive count per label."
            )
        w = self.weight_.to(z.dtype)
        log_p = -F.softplus(-z)
        log_neg, p_m = _shifted_negative(z, self.clip)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.disable_grad_focal):
            w_pos = torch.exp(-self.gamma_pos * F.softplus(z))
            w_neg = _power(p_m, (self.gamma_neg + w).expand_as(p_m))
        return -(w * (y * w_pos * log_p + (1 - y) * w_neg * log_neg)).sum(dim=1)

    def extra_repr(self) -> str:
        return (
            f"gamma_neg={self.gamma_neg}, gamma_pos={self.gamma_pos}, clip={self.clip}, "
            f"exponent={self.exponent}, reduction={self.reduction!r}"
        )
