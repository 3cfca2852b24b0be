"""Temperature scaling (and vector scaling): NLL of the calibrated logits."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import LossModule, as_class_target

from ._private import TemperatureMixin, check_logits

__all__ = ["TemperatureScaling"]


class TemperatureScaling(TemperatureMixin, LossModule):
    r"""Temperature scaling: the negative log-likelihood of the logits divided by a learned T.

    .. math::

        \ell_i = -\log \mathrm{softmax}(z_i / T)_{y_i},\qquad T = e^{\theta} > 0

    With ``affine=True`` (vector scaling) the calibrated logits are :math:`a \odot z_i + b`
    with learned :math:`a, b \in \mathbb{R}^C` (starting at :math:`a = 1, b = 0`). Input: the
    held-out logits (N, C) of an already fitted model; targets: class indices (N,). Predict
    link: softmax of the calibrated logits (``calibrated_softmax``).

    Parameters
    ----------
    affine : bool, default=False
        Fit a per-class scale and bias (vector scaling) instead of one temperature.
    n_classes : int
        Number of classes (sizes the affine parameters); a data param.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Learnable: ``log_temperature`` (a scalar :math:`\theta`, :math:`T = e^\theta`) and, with
    ``affine``, ``weight`` and ``bias`` of shape (C,). Fit them on data the model was not
    trained on (a calibration split or out-of-fold logits), e.g. with
    :class:`lossreg.estimators.calibration.LossCalibratedClassifier` (full-batch L-BFGS, as
    in Guo et al.). Temperature scaling keeps the argmax, so accuracy is unchanged; vector
    scaling may change it. Matrix scaling (a full C x C map) is not offered: it overfits with
    many classes. For two classes, vector scaling is Platt scaling of the logit difference
    with separate slopes per class. The catalogue entry is "from-memory"; the formula (NLL of
    :math:`z/T`, T fitted on a validation set) is the paper's Section 4.2 and agrees with it.

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. "On Calibration of Modern Neural Networks."
    ICML 2017, arXiv:1706.04599.

    Examples
    --------
    >>> import torch
    >>> loss = TemperatureScaling(n_classes=2, reduction="none")
    >>> with torch.no_grad():
    ...     _ = loss.log_temperature.fill_(0.6931471805599453)  # T = 2
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [4.0, 0.0]])
    >>> out = loss(z, torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.3133, 0.3133, 0.6931, 2.1269]
    """

    def __init__(self, *, affine: bool = False, n_classes: int, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.affine = affine
        self.n_classes = n_classes
        self._init_temperature()
        if affine:
            self.weight = nn.Parameter(torch.ones(int(n_classes)))
            self.bias = nn.Parameter(torch.zeros(int(n_classes)))

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the calibrated logits: ``z / T``, or ``weight * z + bias`` with ``affine``."""
        if self.affine:
            return logits * self.weight.to(logits.dtype) + self.bias.to(logits.dtype)
        return super().calibrate(logits)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        check_logits(input)
        labels = as_class_target(target)
        return F.cross_entropy(self.calibrate(input), labels, reduction="none")

    def extra_repr(self) -> str:
        return f"affine={self.affine}, n_classes={self.n_classes}, reduction={self.reduction!r}"
