"""Square losses on class scores: one-hot MSE, rescaled square loss, and squentropy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import target_log_prob

__all__ = ["OneHotMSE", "RescaledSquare", "Squentropy"]


class OneHotMSE(LossModule):
    r"""Half squared error between class scores and a (scaled) one-hot target.

    .. math::

        \ell_i = \tfrac12 \lVert z_i - s\, e_{y_i} \rVert_2^2

    Input scores have shape (N, C); targets are class indices (N,). With :math:`s = 1` this
    is :math:`C/2` times ``rescaled_square(k=1, M=1)``.

    Parameters
    ----------
    scale : float in (0, inf), default=1.0
        Target value :math:`s` of the true class.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Not a probability model: predict by argmax. The neural-collapse analysis of the paper
    adds weight decay on weights and features (optimizer / module options, not part of the
    loss). The :math:`\tfrac12` follows the paper's :math:`\frac{1}{2N}\lVert WH - Y\rVert_F^2`.

    References
    ----------
    H. Dang, T. Tran, S. Osher, H. Tran-The, N. Ho, T. Nguyen. "Neural Collapse in Deep
    Linear Networks: From Balanced to Imbalanced Data." ICML 2023, arXiv:2301.00437.

    Examples
    --------
    >>> import torch
    >>> loss = OneHotMSE(reduction="none")
    >>> scores = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    >>> [round(v, 4) for v in loss(scores, torch.tensor([0, 1, 0, 0])).tolist()]
    [0.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.scale = scale

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        # torch's fused squared difference: one op forward and backward instead of two.
        elements = F.mse_loss(input, self._scaled_one_hot(input, target), reduction="none")
        return 0.5 * elements.sum(dim=1)

    def fused_mean(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor | None:
        if input.shape[0] == 0:
            return None  # the mean of no rows: the general path's NaN, not a division error
        total = F.mse_loss(input, self._scaled_one_hot(input, target), reduction="sum")
        return total * (0.5 / input.shape[0])

    def _scaled_one_hot(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(as_class_target(target), input.shape[1]).to(input.dtype)
        return onehot if self.scale == 1 else self.scale * onehot

    def extra_repr(self) -> str:
        return f"scale={self.scale}, reduction={self.reduction!r}"


class RescaledSquare(LossModule):
    r"""Rescaled square loss of Hui & Belkin for classification.

    .. math::

        \ell_i = \frac1C\Big[k\,(z_{i,y_i} - M)^2 + \sum_{j \ne y_i} z_{ij}^2\Big]

    Input scores have shape (N, C); targets are class indices (N,).

    Parameters
    ----------
    k : float in (0, inf), default=1.0
        Weight of the true-class term.
    m : float in (0, inf), default=1.0
        Target value :math:`M` of the true class (named ``M`` in the paper; parameter names
        are lowercase in lossreg).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    :math:`k = M = 1` is the recommended setting for few classes; the origin paper rescales
    with larger :math:`k, M` for many (42 or more) classes, whose exact values were not
    checked here. Training is slow with many classes at :math:`k = M = 1`, the motivation of
    squentropy. Not a probability model: predict by argmax.

    References
    ----------
    L. Hui, M. Belkin. "Evaluation of Neural Architectures Trained with Square Loss vs
    Cross-Entropy in Classification Tasks." ICLR 2021, arXiv:2006.07322.

    Examples
    --------
    >>> import torch
    >>> loss = RescaledSquare(reduction="none")
    >>> scores = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    >>> [round(v, 4) for v in loss(scores, torch.tensor([0, 1, 0, 0])).tolist()]
    [0.0, 0.6667, 0.6667, 0.6667]
    """

    def __init__(self, *, k: float = 1.0, m: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.k = k
        self.m = m

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target).unsqueeze(1)
        true = input.gather(1, labels).squeeze(1)
        others = input.scatter(1, labels, 0.0).square().sum(dim=1)
        return (self.k * (true - self.m).square() + others) / input.shape[1]

    def extra_repr(self) -> str:
        return f"k={self.k}, m={self.m}, reduction={self.reduction!r}"


class Squentropy(LossModule):
    r"""Squentropy: cross-entropy plus the mean square of the wrong-class logits.

    .. math::

        \ell_i = -\log p_{t} + \frac{1}{C-1}\sum_{j \ne y_i} z_{ij}^2

    Input logits have shape (N, C) with C >= 2; targets are class indices (N,).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Not shift-invariant: the square term pins wrong-class logits to 0, so the output bias
    matters. The paper's abstract (arXiv:2302.03952) defines the loss as "the sum of the
    cross-entropy loss and the average square loss over the incorrect classes", which is
    the formula above and the catalogue's. No hyperparameter (third-party ``true_scale`` /
    ``onehot_scale`` options are not part of the paper's loss).

    References
    ----------
    L. Hui, M. Belkin, S. Wright. "Cut your Losses with Squentropy." ICML 2023,
    arXiv:2302.03952.

    Examples
    --------
    >>> import torch
    >>> loss = Squentropy(reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 1, 0, 0])).tolist()]
    [0.2395, 0.9076, 2.0986, 2.0514]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        log_pt = target_log_prob(input.log_softmax(dim=-1), labels)
        wrong = input.scatter(1, labels.unsqueeze(1), 0.0).square().sum(dim=1)
        wrong = wrong / (input.shape[1] - 1)
        return -log_pt + wrong
