"""Overlap (set-level) losses on soft counts: Dice, generalised Dice, (focal) Tversky, Jaccard.

All are batch-level: they compare the batch's soft true/false positives per label, so they
have no per-row value and depend on the batch size.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from ._private import as_label_matrix, check_batch_reduction, row_weights, soft_counts

__all__ = ["Dice", "FocalTversky", "GeneralizedDice", "Jaccard", "Tversky"]


class _Overlap(nn.Module, abc.ABC):
    """Shared forward: sigmoid probabilities, weighted soft counts, batch-level reduction."""

    name = "overlap"

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_batch_reduction(self.name, reduction)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        z, y = as_label_matrix(input, target)
        p = torch.sigmoid(z)
        loss = self.batch_loss(p, y, row_weights(sample_weight, z))
        return loss if self.reduction == "mean" else loss * z.shape[0]

    @abc.abstractmethod
    def batch_loss(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The batch value from probabilities, labels and (N, 1) row weights."""


def _masked_mean(per_label: torch.Tensor, y: torch.Tensor, skip_empty: bool) -> torch.Tensor:
    # As segmentation_models_pytorch: labels without positives contribute 0 but still count.
    if skip_empty:
        per_label = per_label * (y.sum(dim=0) > 0).to(per_label.dtype)
    return per_label.mean()


class Dice(_Overlap):
    r"""Soft Dice (soft F1) loss over the batch, per label.

    .. math::

        D_c = \frac{2\,TP_c + \varepsilon}{\sum_i p_{ic} + \sum_i y_{ic} + \varepsilon},
        \qquad L = 1 - \frac1L\sum_c D_c

    with :math:`p = \sigma(z)`, :math:`TP_c = \sum_i p_{ic} y_{ic}`; equivalently
    :math:`D = (2TP+\varepsilon)/(2TP+FP+FN+\varepsilon)`. Options: squared denominator
    :math:`\sum p^2 + \sum y^2` (V-Net), log form :math:`\frac1L\sum_c -\log D_c`, and
    per-row aggregation (``aggregate="sample"``: Dice over the labels of each row, averaged
    over rows). Logits (N, L) or (N,); 0/1 targets of the same shape.

    Parameters
    ----------
    smooth : float >= 0, default=1.0
        :math:`\varepsilon`.
    squared_denominator : bool, default=False
    log : bool, default=False
    aggregate : {"batch", "sample"}, default="batch"
    skip_empty : bool, default=False
        Zero the term of labels without positives in the batch (they still count in the
        mean, as ``segmentation_models_pytorch`` does).
    reduction : {"mean", "sum"}, default="mean"
        ``mean`` returns L; ``sum`` returns N L.

    Notes
    -----
    Follows ``segmentation_models_pytorch.losses.DiceLoss(mode="multilabel",
    from_logits=True)`` (sums over the batch per label, mean over labels), except that the
    empty-label mask is optional here (off by default): with it off, a label without
    positives still teaches the model to predict 0. The ``running`` aggregation of the
    catalogue is not implemented. Batch-level: the expected mini-batch Dice is not the
    population F1 and the gap grows as batches shrink. Sample weights :math:`s_i` weight
    each row's contribution to the soft counts.

    References
    ----------
    F. Milletari, N. Navab, S.-A. Ahmadi. "V-Net: Fully Convolutional Neural Networks for
    Volumetric Medical Image Segmentation." 3DV 2016, arXiv:1606.04797.

    Examples
    --------
    >>> import torch
    >>> loss = Dice()
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> round(loss(logits, targets).item(), 4)
    0.1982
    """

    name = "dice"

    def __init__(
        self,
        *,
        smooth: float = 1.0,
        squared_denominator: bool = False,
        log: bool = False,
        aggregate: str = "batch",
        skip_empty: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if aggregate not in ("batch", "sample"):
            raise ValueError(f"aggregate must be 'batch' or 'sample'. Got {aggregate!r}.")
        self.smooth = smooth
        self.squared_denominator = squared_denominator
        self.log = log
        self.aggregate = aggregate
        self.skip_empty = skip_empty

    def _score(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor, dim: int) -> torch.Tensor:
        tp = (w * p * y).sum(dim=dim)
        if self.squared_denominator:
            denominator = (w * (p.square() + y.square())).sum(dim=dim)
        else:
            denominator = (w * (p + y)).sum(dim=dim)
        score = (2 * tp + self.smooth) / (denominator + self.smooth).clamp_min(1e-12)
        # -log D needs D > 0; D = 0 only when smooth = 0 and TP = 0.
        return -torch.log(score.clamp_min(1e-12)) if self.log else 1 - score

    def batch_loss(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.aggregate == "sample":
            per_row = self._score(p, y, torch.ones_like(w), dim=1)
            return (w[:, 0] * per_row).sum() / w.sum().clamp_min(torch.finfo(p.dtype).tiny)
        return _masked_mean(self._score(p, y, w, dim=0), y, self.skip_empty)

    def extra_repr(self) -> str:
        return (
            f"smooth={self.smooth}, squared_denominator={self.squared_denominator}, "
            f"log={self.log}, aggregate={self.aggregate!r}, skip_empty={self.skip_empty}"
        )


class GeneralizedDice(_Overlap):
    r"""Generalised Dice loss: one Dice over all labels, each weighted by :math:`1/(\sum_i y)^2`.

    .. math::

        w_c = \frac{1}{(\sum_i y_{ic})^2},\qquad
        L = 1 - \frac{2\sum_c w_c TP_c + \varepsilon}
                     {\sum_c w_c \sum_i (p_{ic} + y_{ic}) + \varepsilon}

    A label without positives in the batch would get an infinite weight; it gets the largest
    finite weight of the batch instead (all weights 0 if no label has positives). Logits
    (N, L); 0/1 targets.

    Parameters
    ----------
    smooth : float >= 0, default=1e-5
        :math:`\varepsilon` (MONAI's ``smooth_nr = smooth_dr``).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Follows ``monai.losses.GeneralizedDiceLoss(sigmoid=True, batch=True,
    w_type="square")``, including its replacement of infinite weights by the maximum finite
    weight. Sample weights weight each row's soft counts (and the label weights).

    References
    ----------
    C. H. Sudre, W. Li, T. Vercauteren, S. Ourselin, M. J. Cardoso. "Generalised Dice
    overlap as a deep learning loss function for highly unbalanced segmentations."
    DLMIA 2017, arXiv:1707.03237.

    Examples
    --------
    >>> import torch
    >>> loss = GeneralizedDice()
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> round(loss(logits, targets).item(), 4)
    0.245
    """

    name = "generalized_dice"

    def __init__(self, *, smooth: float = 1e-5, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.smooth = smooth

    def batch_loss(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        tp = (w * p * y).sum(dim=0)
        ground = (w * y).sum(dim=0)
        predicted = (w * p).sum(dim=0)
        with torch.no_grad():
            empty = ground <= 0
            weight = 1.0 / ground.clamp_min(torch.finfo(p.dtype).tiny).square()
            finite = torch.where(empty, torch.zeros_like(weight), weight)
            weight = torch.where(empty, finite.max(), finite)
        numerator = 2 * (weight * tp).sum() + self.smooth
        denominator = (weight * (ground + predicted)).sum() + self.smooth
        return 1 - numerator / denominator.clamp_min(1e-12)

    def extra_repr(self) -> str:
        return f"smooth={self.smooth}"


class Tversky(_Overlap):
    r"""Tversky loss: Dice with separate weights on false positives and false negatives.

    .. math::

        T_c = \frac{TP_c + \varepsilon}{TP_c + \alpha FP_c + \beta FN_c + \varepsilon},
        \qquad L = 1 - \frac1L\sum_c T_c

    :math:`\alpha=\beta=0.5` gives Dice (same :math:`\varepsilon` convention up to a factor 2
    in the smoothing), :math:`\alpha=\beta=1` the Jaccard loss. Logits (N, L); 0/1 targets.

    Parameters
    ----------
    alpha : float >= 0, default=0.3
        Weight of false positives.
    beta : float >= 0, default=0.7
        Weight of false negatives (> alpha favours recall).
    smooth : float >= 0, default=1.0
        :math:`\varepsilon`.
    skip_empty : bool, default=False
        As :class:`Dice`.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Follows ``segmentation_models_pytorch.losses.TverskyLoss`` (whose defaults are
    :math:`\alpha=\beta=0.5`; the paper's are 0.3 / 0.7, used here). Batch-level.

    References
    ----------
    S. S. M. Salehi, D. Erdogmus, A. Gholipour. "Tversky loss function for image segmentation
    using 3D fully convolutional deep networks." MLMI 2017, arXiv:1706.05721.

    Examples
    --------
    >>> import torch
    >>> loss = Tversky()
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> round(loss(logits, targets).item(), 4)
    0.1522
    """

    name = "tversky"

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.7,
        smooth: float = 1.0,
        skip_empty: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.beta = beta
        self.smooth = smooth
        self.skip_empty = skip_empty

    def index(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        tp, fp, fn = soft_counts(p, y, w)
        denominator = tp + self.alpha * fp + self.beta * fn + self.smooth
        return (tp + self.smooth) / denominator.clamp_min(1e-12)

    def batch_loss(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _masked_mean(1 - self.index(p, y, w), y, self.skip_empty)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, smooth={self.smooth}"


class FocalTversky(Tversky):
    r"""Focal Tversky loss: per-label Tversky loss raised to :math:`1/\gamma`.

    .. math::

        L = \frac1L\sum_c (1 - T_c)^{1/\gamma}

    with :math:`T_c` from :class:`Tversky`. :math:`\gamma > 1` raises small losses (hard
    labels get relatively more weight); :math:`\gamma = 1` is ``tversky``.

    Parameters
    ----------
    alpha, beta, smooth, skip_empty : as :class:`Tversky` (0.3, 0.7, 1.0, False)
    gamma : float > 0, default=4/3
        Focal parameter; the exponent is :math:`1/\gamma` = 0.75.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    The paper (Abraham & Khan) defines the sum over classes of
    :math:`(1-TI_c)^{1/\gamma}`, which is followed here (mean over labels).
    ``segmentation_models_pytorch.TverskyLoss(gamma=g)`` instead raises the **mean** over
    classes to the power g (and g is the exponent, so 0.75 reproduces :math:`\gamma=4/3`
    only for a single label). An exponent below 1 has an unbounded derivative at
    :math:`1-T_c \to 0`; the base is floored at 1e-12 for that reason.

    References
    ----------
    N. Abraham, N. M. Khan. "A Novel Focal Tversky loss function with improved Attention
    U-Net for lesion segmentation." ISBI 2019, arXiv:1810.07842.

    Examples
    --------
    >>> import torch
    >>> loss = FocalTversky()
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> round(loss(logits, targets).item(), 4)
    0.2436
    """

    name = "focal_tversky"

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 4 / 3,
        smooth: float = 1.0,
        skip_empty: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            alpha=alpha, beta=beta, smooth=smooth, skip_empty=skip_empty, reduction=reduction
        )
        self.gamma = gamma

    def batch_loss(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        base = (1 - self.index(p, y, w)).clamp_min(1e-12)
        return _masked_mean(base.pow(1 / self.gamma), y, self.skip_empty)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, smooth={self.smooth}"


class Jaccard(_Overlap):
    r"""Soft Jaccard (IoU) loss over the batch, per label.

    .. math::

        J_c = \frac{TP_c + \varepsilon}{\sum_i p_{ic} + \sum_i y_{ic} - TP_c + \varepsilon},
        \qquad L = 1 - \frac1L\sum_c J_c

    Logits (N, L); 0/1 targets.

    Parameters
    ----------
    smooth : float >= 0, default=1.0
        :math:`\varepsilon`.
    skip_empty : bool, default=False
        As :class:`Dice`.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Follows ``segmentation_models_pytorch.losses.JaccardLoss(mode="multilabel")`` with the
    empty-label mask optional. Batch-level.

    References
    ----------
    J. Terven et al. "Loss Functions and Metrics in Deep Learning." arXiv:2307.02694.

    Examples
    --------
    >>> import torch
    >>> loss = Jaccard()
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> round(loss(logits, targets).item(), 4)
    0.2854
    """

    name = "jaccard"

    def __init__(
        self, *, smooth: float = 1.0, skip_empty: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.smooth = smooth
        self.skip_empty = skip_empty

    def batch_loss(self, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        tp, fp, fn = soft_counts(p, y, w)
        score = (tp + self.smooth) / (tp + fp + fn + self.smooth).clamp_min(1e-12)
        return _masked_mean(1 - score, y, self.skip_empty)

    def extra_repr(self) -> str:
        return f"smooth={self.smooth}, skip_empty={self.skip_empty}"
