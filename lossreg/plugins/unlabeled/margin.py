"""Self-labelled margin loss for binary semi-supervised learning (TSVM-like unlabeled term)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import labeled_mask

__all__ = ["SelfLabeledMargin"]


class SelfLabeledMargin(LossModule):
    r"""Margin loss on labelled rows plus the loss against the model's own sign on unlabeled rows.

    .. math::

        \ell_i = \begin{cases}
            \phi\big(y^{\pm}_i f_i\big) & y_i \in \{0, 1\},\ y^{\pm}_i = 2y_i - 1 \\
            \lambda\,\phi\big(|f_i|\big) & y_i = -1 \text{ (unlabeled)}
        \end{cases}

    with :math:`\phi(m) = \log(1+e^{-m})` (``"logistic"``) or :math:`\max(0, 1-m)`
    (``"hinge"``). Input: one logit per row, (N,) or (N, 1); target: 0 / 1 labels, -1 for
    unlabeled rows. The unlabeled term is the loss against the model's own predicted sign,
    pushing the boundary away from unlabeled rows.

    Parameters
    ----------
    lam : float in [0, inf), default=1.0
        Weight :math:`\lambda` of the unlabeled term.
    phi : {"logistic", "hinge"}, default="logistic"
        The margin loss :math:`\phi`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The paper's objective averages the two groups separately,
    :math:`\frac1m\sum_{\text{lab}}\phi + \lambda\frac1n\sum_{\text{unl}}\phi`; the per-row
    mean here is :math:`\frac{m}{m+n}` times that objective with :math:`\lambda` replaced
    by :math:`\lambda n/m`, so set ``lam`` accordingly (or use sample weights) to
    reproduce it. Written from the catalogue's formula (no reference code is published); the
    paper's robust variant (a Wasserstein-DRO supremum over input perturbations) needs the
    inputs and a re-forward, so it is not part of this criterion. :math:`|f|` has
    subgradient 0 at 0.

    References
    ----------
    A. H. Saberi, A. Najafi, A. Heidari et al. "Out-Of-Domain Unlabeled Data Improves
    Generalization." ICLR 2024, arXiv:2310.00027.

    Examples
    --------
    >>> import torch
    >>> loss = SelfLabeledMargin(reduction="none")
    >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([1, 1, -1, -1])).tolist()]
    [0.1269, 1.3133, 0.4741, 0.0486]
    """

    def __init__(self, *, lam: float = 1.0, phi: str = "logistic", reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.lam = lam
        self.phi = phi

    def _phi(self, margin: torch.Tensor) -> torch.Tensor:
        if self.phi == "hinge":
            return (1 - margin).clamp_min(0)
        if self.phi == "logistic":
            return F.softplus(-margin)
        raise ValueError(f"phi must be 'logistic' or 'hinge'. Got {self.phi!r} instead.")

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        if input.ndim == 2 and input.shape[1] == 1:
            input = input[:, 0]
        if input.ndim != 1:
            raise ValueError(
                "Loss 'self_labeled_margin' takes one logit per row, shape (N,) or (N, 1). "
                f"Got shape {tuple(input.shape)}."
            )
        labels = target.reshape(-1)
        labeled = labeled_mask(labels)
        if bool((labels > 1).any()):
            raise ValueError("self_labeled_margin takes binary labels 0 / 1, or -1 for unlabeled.")
        sign = 2 * labels.to(input.dtype) - 1
        supervised = self._phi(sign * input)
        unsupervised = self.lam * self._phi(input.abs())
        return torch.where(labeled, supervised, unsupervised)

    def extra_repr(self) -> str:
        return f"lam={self.lam}, phi={self.phi!r}, reduction={self.reduction!r}"
