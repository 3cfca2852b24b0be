"""Softmax cross-entropy with optional label smoothing."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

#: ``F.cross_entropy`` skips rows labelled ``ignore_index`` (-100 by default); no int64 label
#: equals this one, so an out-of-range label raises instead of being dropped from the mean.
_NO_IGNORE = -(2**63)


class CrossEntropy(LossModule):
    r"""Softmax cross-entropy (multinomial log loss), optionally label-smoothed.

    .. math::

        \ell_i = -\sum_c q_{ic} \log \mathrm{softmax}(z_i)_c, \qquad
        q_i = (1-\varepsilon)\, e_{y_i} + \varepsilon / C

    With :math:`\varepsilon = 0` this is :math:`\mathrm{logsumexp}(z_i) - z_{i,y_i}`. The
    :math:`\varepsilon/C` mass also goes to the true class, as in ``torch.nn.CrossEntropyLoss``.

    Input logits have shape (N, C); targets are class indices of shape (N,). Binary problems
    use C = 2.

    Parameters
    ----------
    label_smoothing : float in [0, 1), default=0.0
        :math:`\varepsilon`; 0.1 is the customary value.
    reduction : {"mean", "sum", "none"}, default="mean"

    References
    ----------
    C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna. "Rethinking the Inception
    Architecture for Computer Vision." CVPR 2016, arXiv:1512.00567 (label smoothing).

    Examples
    --------
    >>> import torch
    >>> loss = CrossEntropy(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> loss(logits, torch.tensor([0, 1, 0, 1]))
    tensor([0.1269, 0.1269, 0.6931, 0.6931])
    """

    def __init__(self, *, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.label_smoothing = label_smoothing

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_p = input.log_softmax(dim=-1)
        nll = -log_p.gather(1, as_class_target(target).unsqueeze(1)).squeeze(1)
        if self.label_smoothing == 0:
            return nll
        uniform = -log_p.mean(dim=-1)
        return (1 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        # torch's kernel smooths labels the same way (eps/C to every class, the true one too).
        return F.cross_entropy(
            input,
            as_class_target(target),
            label_smoothing=self.label_smoothing,
            ignore_index=_NO_IGNORE,
        )

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"
