"""Neural-collapse feature regularisation: within-class compactness and equiangular class means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lossreg import LossModule, as_class_target, reduce

from ._private import counts_buffer

__all__ = ["NC_BASES", "NeuralCollapseReg"]

#: the classification loss the two feature terms are added to
NC_BASES = ("cross_entropy", "logit_adjusted")


def _pair(input: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(input, Mapping) and "logits" in input and "features" in input:
        input = (input["logits"], input["features"])
    if not (isinstance(input, tuple | list) and len(input) == 2):
        raise ValueError(
            "Loss 'neural_collapse_reg' needs the network's penultimate features next to its "
            "logits: pass the input as (logits, features), features of shape (N, D) "
            "(estimators do this)."
        )
    return input[0], input[1]


class NeuralCollapseReg(LossModule):
    r"""Cross-entropy (or logit-adjusted CE) plus two neural-collapse feature regularisers.

    With penultimate features :math:`h_i` (N, D), class centres :math:`\mu_c` (below),
    :math:`\bar\mu` the unweighted mean of the available centres and
    :math:`u_c = (\mu_c-\bar\mu)/\lVert\mu_c-\bar\mu\rVert`,

    .. math::

        \ell_i = \mathrm{CE}\big(z_i + \tau\log\pi\,[\text{logit\_adjusted}],\ y_i\big)
        + \lambda_w\,\lVert h_i-\mu_{y_i}\rVert^2 + \lambda_b\,L_b,\qquad
        L_b = \frac{1}{|P|}\sum_{(c,c')\in P}\Big(u_c^\top u_{c'}+\frac{1}{C-1}\Big)^2

    over the ordered pairs :math:`P` of distinct available classes: the within-class term
    pulls each feature onto its class centre (NC1), the between-class term pushes the
    pairwise cosines of the centred class means to the simplex-ETF value
    :math:`-1/(C-1)` (NC2). :math:`L_b` is a batch-level term added to every row, so the
    mean over rows is :math:`\overline{\mathrm{CE}}+\lambda_w\overline{\lVert h-\mu\rVert^2}
    +\lambda_b L_b`.

    Class centres: :math:`m_c` is the (sample-weighted) mean feature of class :math:`c` in the
    batch, with gradient; :math:`s_c` a moving-average buffer (no gradient). A class in the
    batch has :math:`\mu_c=\beta s_c+(1-\beta)m_c` (:math:`\mu_c=m_c` the first time it is
    seen); a class absent from the batch has :math:`\mu_c=s_c` if it was seen before, and is
    left out otherwise (so rare classes keep their place in :math:`L_b` between the batches
    that hold them). In training mode :math:`s_c \leftarrow \mathrm{sg}(\mu_c)` for the classes
    in the batch; in eval mode the state is read, never moved.

    The input is the pair ``(logits, features)`` (or a dict with those keys): logits (N, C),
    features (N, D); targets are class indices (N,).

    Parameters
    ----------
    within_weight : float >= 0, default=0.1
        :math:`\lambda_w`, weight of the within-class term.
    between_weight : float >= 0, default=1.0
        :math:`\lambda_b`, weight of the between-class (equiangular) term.
    momentum : float in [0, 1), default=0.9
        :math:`\beta` of the class-centre moving average; 0 uses the batch means alone.
    base : {"cross_entropy", "logit_adjusted"}, default="cross_entropy"
        The classification loss the terms are added to.
    tau : float >= 0, default=1.0
        Strength of the logit adjustment (``base="logit_adjusted"`` only).
    n_classes : int
        Data param: the number of classes C.
    class_priors : sequence of C floats > 0
        Data param: class frequencies of the training fold (for ``logit_adjusted``).
    feature_dim : int
        Data param: the width D of the features.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    center_ : buffer of shape (C, D), float64
        The moving-average class centres :math:`s_c`.
    seen_ : buffer of shape (C,), bool
        Whether class c has had a centre yet.

    Notes
    -----
    The paper's own rule could not be read: a search found only its abstract and
    introduction (arXiv:2302.12453; hf.zsm.im/papers/2302.12453.md), which say that two
    explicit feature regularisation terms induce neural collapse (within-class features close
    together, class means maximally distant) and plug into existing long-tail losses, but do
    not give the formulas, and no official code for the regulariser was found (the first
    author's repository corwinliu9669/Neural_Collapse holds NC measurements only). This is
    therefore the lossreg catalogue's *unverified reconstruction*, made definite where the
    catalogue leaves a choice: squared deviation of the cosines, over all pairs of available
    classes, centred by the unweighted mean of the class means (the centre of a simplex ETF,
    which a count-weighted global mean of long-tailed features is not), and moving-average
    centres mixed with the batch means. The default weights are choices in the catalogue's
    range (0.01 to 1), not the paper's. Verdicts obtained with this loss are about this
    reconstruction. Its spec says ``outputs="logits+features"``: estimators train it on the
    pair (logits, last hidden layer) and predict with the softmax of the logits.

    References
    ----------
    X. Liu, J. Zhang, T. Hu, H. Cao, L. Pan, Y. Yao. "Inducing Neural Collapse in Deep
    Long-tailed Learning." AISTATS 2023, arXiv:2302.12453.

    Examples
    --------
    >>> import torch
    >>> loss = NeuralCollapseReg(n_classes=2, class_priors=[0.5, 0.5], feature_dim=2,
    ...                          reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    >>> features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 1.0]])
    >>> values = loss((logits, features), torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.2269, 0.1269, 0.7931, 0.0486]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        class_priors: Sequence[float],
        feature_dim: int,
        within_weight: float = 0.1,
        between_weight: float = 1.0,
        momentum: float = 0.9,
        base: str = "cross_entropy",
        tau: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if base not in NC_BASES:
            raise ValueError(f"base must be one of {NC_BASES!r}. Got {base!r} instead.")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1). Got {momentum!r} instead.")
        self.within_weight = within_weight
        self.between_weight = between_weight
        self.momentum = momentum
        self.base = base
        self.tau = tau
        self.n_classes = int(n_classes)
        self.class_priors = class_priors
        self.feature_dim = int(feature_dim)
        priors = counts_buffer(class_priors, "class_priors")
        if priors.numel() != self.n_classes:
            raise ValueError(
                f"class_priors has {priors.numel()} values for {self.n_classes} classes; pass "
                "one prior per class."
            )
        adjust = tau * torch.log(priors) if base == "logit_adjusted" else torch.zeros_like(priors)
        self.register_buffer("offset_", adjust)
        self.register_buffer(
            "center_", torch.zeros(self.n_classes, self.feature_dim, dtype=torch.float64)
        )
        self.register_buffer("seen_", torch.zeros(self.n_classes, dtype=torch.bool))

    def forward(
        self,
        input: Any,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the regularised loss, reduced over the rows (weights also weigh the means)."""
        rows = self.per_sample_loss(input, target, sample_weight=sample_weight, **extras)
        return reduce(rows, self.reduction, sample_weight)

    def per_sample_loss(
        self,
        input: Any,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return base loss + within-class term of each row + the batch's between term, (N,)."""
        logits, features = _pair(input)
        labels = as_class_target(target).to(logits.device)
        h = features.to(logits.dtype)
        if h.ndim != 2 or h.shape[1] != self.feature_dim:
            raise ValueError(
                f"Loss 'neural_collapse_reg' was built for features of shape (N, "
                f"{self.feature_dim}); got {tuple(h.shape)}."
            )
        adjusted = logits + self.offset_.to(logits.dtype)
        base = -adjusted.log_softmax(dim=-1).gather(1, labels[:, None])[:, 0]
        centers, available = self._centers(h, labels, sample_weight)
        within = (h - centers[labels]).pow(2).sum(dim=1)
        return (
            base
            + self.within_weight * within
            + self.between_weight * self._between(centers[available])
        )

    def _centers(
        self, h: torch.Tensor, labels: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class centres (C, D) mixing the stored ones with the batch means; which are defined."""
        weight = torch.ones(len(labels), dtype=h.dtype, device=h.device)
        if sample_weight is not None:
            weight = torch.as_tensor(sample_weight, dtype=h.dtype, device=h.device).reshape(-1)
        one_hot = nn.functional.one_hot(labels, self.n_classes).to(h.dtype) * weight[:, None]
        mass = one_hot.sum(dim=0)
        in_batch = mass > 0
        # Classes whose rows all weigh 0 have no batch mean; the clamp keeps 0/0 out of autograd.
        batch_mean = (one_hot.T @ h) / mass.clamp_min(torch.finfo(h.dtype).tiny)[:, None]
        stored = self.center_.to(h.dtype)
        seen = self.seen_.to(h.device)
        beta = seen.to(h.dtype)[:, None] * self.momentum  # in h's dtype: float64 stays exact
        mixed = beta * stored + (1 - beta) * batch_mean
        centers = torch.where(in_batch[:, None], mixed, stored)
        if self.training:  # validation batches read the centres without moving them
            self.center_.copy_(torch.where(in_batch[:, None], centers.detach(), stored))
            self.seen_.copy_(seen | in_batch)
        return centers, in_batch | seen

    def _between(self, means: torch.Tensor) -> torch.Tensor:
        """Mean squared deviation of the centred class means' cosines from -1/(C-1)."""
        k = means.shape[0]
        if k < 2 or self.n_classes < 2:
            return means.new_zeros(())
        centred = means - means.mean(dim=0, keepdim=True)
        norm = torch.linalg.vector_norm(centred, dim=1, keepdim=True)
        # A centre at the mean has no direction; eps keeps the division (and its gradient)
        # finite, giving that class cosines of 0.
        unit = centred / norm.clamp_min(torch.finfo(means.dtype).eps)
        cosine = unit @ unit.T
        off = ~torch.eye(k, dtype=torch.bool, device=means.device)
        return (cosine[off] + 1.0 / (self.n_classes - 1)).pow(2).mean()

    def extra_repr(self) -> str:
        return (
            f"within_weight={self.within_weight!r}, between_weight={self.between_weight!r}, "
            f"momentum={self.momentum!r}, base={self.base!r}, tau={self.tau!r}, "
            f"reduction={self.reduction!r}"
        )
