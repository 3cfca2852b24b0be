"""Alternative binary links for rare classes: Gumbel (complementary log-log) and probit BCE."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import Link, LossModule, as_float_target

__all__ = ["GUMBEL_LINK", "PROBIT_LINK", "GumbelBCE", "ProbitBCE"]

# exp(-z) overflows float32 below about -88; -30 keeps exp(30) ~ 1e13 representable in both
# dtypes while leaving the probability exp(-exp(30)) at exactly 0 for all practical purposes.
_GUMBEL_MIN_LOGIT = -30.0
# Above this logit exp(-z) < 1e-8 and log(1 - p) = -z - exp(-z)/2 + O(exp(-2z)) is exact to
# float64 precision; the exact expm1 form would underflow to log(0) further out.
_GUMBEL_ASYMPTOTIC_LOGIT = 18.0


def _per_row_sum(elements: torch.Tensor) -> torch.Tensor:
    return elements if elements.ndim == 1 else elements.reshape(elements.shape[0], -1).sum(dim=1)


def gumbel_log_probs(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Return :math:`\log p` and :math:`\log(1-p)` for :math:`p = \exp(-e^{-z})`, stably."""
    z = z.clamp_min(_GUMBEL_MIN_LOGIT)
    far = z > _GUMBEL_ASYMPTOTIC_LOGIT
    # Each branch gets inputs that are safe for it, so the unused branch never yields inf/NaN
    # gradients through torch.where.
    z_exact = torch.where(far, torch.zeros_like(z), z)
    z_far = torch.where(far, z, torch.full_like(z, _GUMBEL_ASYMPTOTIC_LOGIT + 1))
    log_one_minus_exact = torch.log(-torch.expm1(-torch.exp(-z_exact)))
    log_one_minus_far = -z_far - 0.5 * torch.exp(-z_far)
    log_p = -torch.exp(-z)
    return log_p, torch.where(far, log_one_minus_far, log_one_minus_exact)


def _gumbel_cdf(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return torch.exp(-torch.exp(-output.clamp_min(_GUMBEL_MIN_LOGIT)))


def _probit(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return torch.special.ndtr(output)


GUMBEL_LINK = Link(
    "gumbel_cdf", _gumbel_cdf, "proba", "per-output probabilities exp(-exp(-z)) (Gumbel CDF)"
)
PROBIT_LINK = Link("probit", _probit, "proba", "per-output probabilities Phi(z) (normal CDF)")


class GumbelBCE(LossModule):
    r"""Binary cross-entropy with the Gumbel (extreme-value) link: Gumbel optimised loss.

    .. math::

        p = \exp(-e^{-z}),\qquad
        \ell_i = -\sum_c \bigl[y_{ic}\log p_{ic} + (1-y_{ic})\log(1-p_{ic})\bigr]

    with :math:`\log p = -e^{-z}` and :math:`\log(1-p) = \log(-\mathrm{expm1}(-e^{-z}))`
    (its asymptote :math:`-z - e^{-z}/2` for :math:`z > 18`). The Gumbel CDF is skewed:
    it rises slowly for negative logits, which suits rare positives. Logits (N,) or (N, L);
    0/1 targets of the same shape. Predict with the Gumbel CDF link :math:`p=\exp(-e^{-z})`.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The row value **sums** over labels, as the reference does (``bce`` averages). Checked
    against kostas1515/GOL ``droploss.py``: ``pestim = 1/exp(exp(-clamp(z, -4, 10)))`` fed to
    ``binary_cross_entropy``, then clamps each element's loss to [0, 20]. The reference clamps
    the logits to [-4, 10], which zeroes the gradient outside; this implementation clamps only
    at -30 (overflow guard), keeps the exact log forms and does not clamp the loss. The
    DropLoss variant and the bias initialisation (-2) are not part of the loss.

    References
    ----------
    K. P. Alexandridis, J. Deng, A. Nguyen, S. Luo. "Long-tailed Instance Segmentation using
    Gumbel Optimized Loss." ECCV 2022, arXiv:2207.10936.

    Examples
    --------
    >>> import torch
    >>> loss = GumbelBCE(reduction="none")
    >>> values = loss(torch.tensor([2.0, -2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.1353, 0.0006, 1.0, 1.1783]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        log_p, log_q = gumbel_log_probs(input)
        return _per_row_sum(-(y * log_p + (1 - y) * log_q))


class ProbitBCE(LossModule):
    r"""Binary cross-entropy with the probit link.

    .. math::

        \ell_i = -\sum_c \bigl[y_{ic}\log\Phi(z_{ic}) + (1-y_{ic})\log\Phi(-z_{ic})\bigr]

    computed with ``torch.special.log_ndtr`` (stable in both tails). Logits (N,) or (N, L);
    0/1 targets of the same shape; the row value sums over labels. Predict with the probit
    link :math:`p = \Phi(z)`.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The "normal" activation of kostas1515/GOL, written in log space instead of the
    reference's probability-space BCE.

    References
    ----------
    K. P. Alexandridis, J. Deng, A. Nguyen, S. Luo. "Long-tailed Instance Segmentation using
    Gumbel Optimized Loss." ECCV 2022, arXiv:2207.10936.

    Examples
    --------
    >>> import torch
    >>> loss = ProbitBCE(reduction="none")
    >>> values = loss(torch.tensor([2.0, -2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.023, 0.023, 0.6931, 1.841]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        # log_ndtr is finite far into both tails, so 0 * log Phi(-1e3) stays 0 and soft
        # targets take the convex combination, as BCE does.
        elements = -(y * torch.special.log_ndtr(input) + (1 - y) * torch.special.log_ndtr(-input))
        return _per_row_sum(elements)
