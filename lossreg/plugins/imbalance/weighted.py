"""Re-weighting by class frequency: weighted cross-entropy and the class-balanced wrapper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import lossreg
from lossreg import LossModule, as_class_target

from ._private import counts_buffer, effective_number_weights, reduce_weighted

__all__ = ["ClassBalanced", "WeightedCrossEntropy"]

#: Base losses of ``class_balanced`` and whether they take class labels (softmax) or 0/1 targets.
CB_BASES: dict[str, str] = {
    "cross_entropy": "softmax",
    "focal": "softmax",
    "bce": "sigmoid",
    "binary_focal": "sigmoid",
}


class WeightedCrossEntropy(LossModule):
    r"""Cross-entropy with per-class weights, "balanced" by default.

    .. math::

        \ell_i = w_{y_i}\,\bigl(\mathrm{logsumexp}(z_i) - z_{i,y_i}\bigr), \qquad
        w_c = \frac{N}{C\, n_c} \ \text{(balanced)}

    The ``mean`` reduction follows ``torch.nn.CrossEntropyLoss(weight=w)``: it divides by
    :math:`\sum_i s_i w_{y_i}` (with sample weights :math:`s_i`), not by N; ``none`` returns
    :math:`s_i w_{y_i} \mathrm{CE}_i`. Input logits (N, C); targets class indices (N,).

    Parameters
    ----------
    class_weight : sequence of C floats >= 0, or None, default=None
        Per-class weights; ``None`` means "balanced",
        :math:`w_c = N/(C n_c)` (scikit-learn's ``compute_class_weight("balanced")``).
    class_counts : sequence of C ints
        Training rows per class (a data param, fitted per fold).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    A class absent from the training fold would get an infinite balanced weight; the
    constructor raises instead. With the torch convention the balanced weights change the
    relative weight of the classes only; :math:`\frac1N\sum_i w_{y_i}\ell_i` would differ by a
    batch-dependent factor.

    References
    ----------
    J. Terven et al. "Loss Functions and Metrics in Deep Learning." arXiv:2307.02694.

    Examples
    --------
    >>> import torch
    >>> loss = WeightedCrossEntropy(class_counts=[3, 1], reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0846, 0.2539, 0.4621, 1.3863]
    """

    def __init__(
        self,
        *,
        class_weight: Sequence[float] | None = None,
        class_counts: Sequence[int],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.class_weight = class_weight
        self.class_counts = class_counts
        if class_weight is None:
            counts = counts_buffer(class_counts)
            weight = counts.sum() / (counts.numel() * counts)
        else:
            weight = torch.as_tensor(class_weight, dtype=torch.float64).reshape(-1)
            if weight.numel() != len(class_counts):
                raise ValueError(
                    f"class_weight has {weight.numel()} values but there are "
                    f"{len(class_counts)} classes; pass one weight per class."
                )
        self.register_buffer("class_weight_", weight.clone())

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        return -input.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        labels = as_class_target(target)
        class_weight = self.class_weight_.to(input.dtype)
        row_weight = class_weight[labels]
        if sample_weight is None and self.reduction == "mean" and input.ndim == 2:
            # Fast path: torch's fused kernel gives sum_i w_{y_i} l_i in two ops instead of
            # five; the division is reduce()'s, so a batch whose weights are all zero still
            # gives 0, not torch's 0/0 = NaN. (The label is never -(2**63): no row is skipped.)
            total = F.cross_entropy(
                input, labels, weight=class_weight, reduction="sum", ignore_index=-(2**63)
            )
            return total / row_weight.sum().clamp_min(torch.finfo(input.dtype).tiny)
        return reduce_weighted(
            self.per_sample_loss(input, labels), row_weight, self.reduction, sample_weight
        )

    def extra_repr(self) -> str:
        return f"class_weight={self.class_weight}, reduction={self.reduction!r}"


class ClassBalanced(LossModule):
    r"""Class-balanced loss: a base loss weighted by the inverse effective number of samples.

    .. math::

        E_c = \frac{1-\beta^{n_c}}{1-\beta}, \qquad
        w_c = \frac{C\,/E_c}{\sum_k 1/E_k}, \qquad
        \ell_i = w_{y_i}\, \mathrm{base}_i

    For softmax bases (``cross_entropy``, ``focal``) targets are class indices (N,) and the
    logits (N, C). For sigmoid bases (``bce``, ``binary_focal``) a binary target with one
    logit per row gets its class weight :math:`w_{y_i}` (``class_counts`` = [negatives,
    positives]); a multilabel target (N, L) gets the weight :math:`w_c` on every term of
    label c (``class_counts`` = positives per label), and the row value is
    :math:`\frac1L\sum_c w_c\,\mathrm{base}(z_{ic}, y_{ic})`.

    Parameters
    ----------
    base : {"focal", "cross_entropy", "bce", "binary_focal"}, default="focal"
        The registered loss to weight, built with ``lossreg.create_loss(base,
        reduction="none")``.
    beta : float in [0, 1), default=0.9999
        0 gives no re-weighting; towards 1 the weights approach inverse frequency.
    gamma : float >= 0 or None, default=None
        Focusing parameter handed to a focal base; ``None`` keeps the base's default (2).
    class_counts : sequence of ints
        Training rows per class, or positives per label (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    tasks_ : frozenset of str
        The tasks this instance fits: binary and multiclass for a softmax base, binary and
        multilabel for a sigmoid one (estimators check the target against it).

    Notes
    -----
    Checked against the official code (richardaecn/class-balanced-loss) and its PyTorch
    port in frank-xwang/RIDE-LongTailRecognition: same effective-number weights normalised
    to sum to C. The official code divides the weighted sum by the number of rows, not by
    the sum of weights, so ``mean`` here is the plain mean of :math:`w_{y_i}\mathrm{base}_i`
    (unlike ``weighted_cross_entropy``). The official sigmoid focal loss has no
    :math:`\alpha_t` (the class weight replaces it), so a ``binary_focal`` base is built with
    ``alpha=None``. The weights are constants (no gradient), which avoids the popular port's
    bug of passing ``weights=`` to ``binary_cross_entropy_with_logits``.

    References
    ----------
    Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie. "Class-Balanced Loss Based on Effective
    Number of Samples." CVPR 2019, arXiv:1901.05555.

    Examples
    --------
    >>> import torch
    >>> loss = ClassBalanced(base="cross_entropy", beta=0.9, class_counts=[30, 1],
    ...                      reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> values = loss(logits, torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.024, 0.2299, 0.1311, 1.2552]
    """

    def __init__(
        self,
        *,
        base: str = "focal",
        beta: float = 0.9999,
        gamma: float | None = None,
        class_counts: Sequence[int],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if base not in CB_BASES:
            raise ValueError(
                f"class_balanced supports the bases {', '.join(CB_BASES)}. Got {base!r}."
            )
        self.base = base
        self.beta = beta
        self.gamma = gamma
        self.class_counts = class_counts
        params: dict[str, Any] = {}
        if gamma is not None:
            if base not in ("focal", "binary_focal"):
                raise ValueError(f"gamma applies to a focal base only; base is {base!r}.")
            params["gamma"] = gamma
        if base == "binary_focal":
            params["alpha"] = None
        self.base_loss: nn.Module = lossreg.create_loss(base, reduction="none", **params)
        # The tasks this instance fits: a softmax base takes class labels only, so
        # multilabel targets need a sigmoid base (estimators and the kit read tasks_).
        self.tasks_ = (
            frozenset({"binary", "multiclass", "multilabel"}) & lossreg.get_spec(base).tasks
        )
        counts = counts_buffer(class_counts, allow_zero=True)
        self.register_buffer("class_weight_", effective_number_weights(counts, beta))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        weight = self.class_weight_.to(input.dtype)
        if CB_BASES[self.base] == "softmax":
            if target.ndim == 2 and target.shape[1] > 1:
                raise ValueError(
                    f"class_balanced with base={self.base!r} takes class labels of shape (N,); "
                    "for multilabel targets use base='binary_focal' or base='bce'."
                )
            labels = as_class_target(target)
            return weight[labels] * self.base_loss(input, labels)
        if input.ndim == 1 or input.shape[-1] == 1:
            if weight.numel() != 2:
                raise ValueError(
                    f"A binary target needs class_counts of length 2; got {weight.numel()}."
                )
            labels = as_class_target(target.reshape(input.shape[0], -1)[:, :1])
            return weight[labels] * self.base_loss(input, target)
        if input.shape[-1] != weight.numel():
            raise ValueError(
                f"The output has {input.shape[-1]} labels but class_counts has "
                f"{weight.numel()}; pass one positive count per label."
            )
        target = target.reshape(input.shape).to(input.dtype)
        columns = [
            weight[c] * self.base_loss(input[:, c], target[:, c]) for c in range(input.shape[-1])
        ]
        return torch.stack(columns, dim=1).mean(dim=1)

    def extra_repr(self) -> str:
        return f"base={self.base!r}, beta={self.beta}, gamma={self.gamma}"
