"""Homoscedastic uncertainty weighting of one regression head and one classification head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lossreg import Link, LossModule

__all__ = ["MIXED_HEADS", "UncertaintyWeightedMixed", "mixed_width"]

#: (scale of the squared error, scale of the cross-entropy) per form: Kendall et al.'s
#: Gaussian likelihood gives 1/2 for regression and 1 for a softmax classifier
_SCALES = {"kendall": (0.5, 1.0), "simplified": (1.0, 1.0)}
#: scale of each s_t term per form
_LOG_SCALES = {"kendall": 0.5, "simplified": 1.0}


def mixed_width(context: Mapping[str, Any]) -> int:
    """One value output plus one logit per class of the class column."""
    return 1 + int(context["n_classes"])


def _mixed_heads(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    # The value column stays as it is; the class logits become probabilities.
    return torch.cat([output[:, :1], output[:, 1:].softmax(dim=-1)], dim=1)


#: the link of a mixed target: column 0 the predicted value (identity), columns 1.. the class
#: probabilities (softmax of the class logits)
MIXED_HEADS = Link(
    "mixed_heads",
    _mixed_heads,
    "value",
    "column 0 the predicted value; columns 1.. softmax of the class logits",
)


class UncertaintyWeightedMixed(LossModule):
    r"""Squared error of a value head plus cross-entropy of a class head, weighted by learned
    homoscedastic task uncertainties.

    With one learnable :math:`s_t=\log\sigma_t^2` per task, the regression task
    :math:`L_{1,i}=(\hat y_i-y_i)^2` and the classification task
    :math:`L_{2,i}=-\log\mathrm{softmax}(z_i)_{c_i}`:

    .. math::

        \ell_i = \sum_{t=1}^{2}\Big[c_t\,e^{-s_t}L_{t,i} + d\,s_t\Big]

    ``form="kendall"``: :math:`c_1=\tfrac12`, :math:`c_2=1`, :math:`d=\tfrac12` (Kendall et
    al.: :math:`\frac{1}{2\sigma_1^2}L_1+\log\sigma_1` for a Gaussian output,
    :math:`\frac{1}{\sigma_2^2}L_2+\log\sigma_2` for a softmax classifier);
    ``form="simplified"``: :math:`c_t=d=1` (:math:`\sum_t e^{-s_t}L_t+s_t`).
    ``weights="equal"``: :math:`\ell_i=L_{1,i}+L_{2,i}`, the unweighted sum (the paper's
    equal-weight baseline; no parameter is learned and ``form`` plays no part).

    Input (N, 1 + C): column 0 the predicted value, columns 1..C the class logits. Target
    (N, 2) floats: the value, then the class index 0..C-1. Prediction: :data:`MIXED_HEADS`
    (the value; softmax of the logits).

    Parameters
    ----------
    form : {"kendall", "simplified"}, default="kendall"
    weights : {"learned", "equal"}, default="learned"
        ``"learned"``: the uncertainty weighting above; ``"equal"``: the plain sum.
    init_log_var : float, default=0.0
        Initial :math:`s_t` of both tasks.
    n_classes : int
        Classes :math:`C` of the class column (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    ``log_var`` (regression, classification) is an ``nn.Parameter`` that the estimator hands
    to the optimizer. Both base losses are per row, so their means are on comparable
    reductions (the catalogue's pitfall). :math:`s_t` is learned by the same optimizer as the
    network, with its weight decay.

    References
    ----------
    A. Kendall, Y. Gal, R. Cipolla. "Multi-Task Learning Using Uncertainty to Weigh Losses for
    Scene Geometry and Semantics." CVPR 2018, arXiv:1705.07115.

    Examples
    --------
    >>> import torch
    >>> loss = UncertaintyWeightedMixed(n_classes=2, reduction="none")
    >>> out = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 1.0], [0.5, 1.0, 1.0]])
    >>> target = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.0]])
    >>> [round(v, 4) for v in loss(out, target).tolist()]
    [1.1931, 2.1269, 0.8133, 0.6931]
    """

    def __init__(
        self,
        *,
        form: str = "kendall",
        weights: str = "learned",
        init_log_var: float = 0.0,
        n_classes: int,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if form not in _SCALES:
            raise ValueError(f"form must be 'kendall' or 'simplified'. Got {form!r} instead.")
        if weights not in ("learned", "equal"):
            raise ValueError(f"weights must be 'learned' or 'equal'. Got {weights!r} instead.")
        if int(n_classes) < 2:
            raise ValueError(f"n_classes must be at least 2. Got {n_classes!r} instead.")
        self.form = form
        self.weights = weights
        self.init_log_var = init_log_var
        self.n_classes = n_classes
        if weights == "learned":
            self.log_var = nn.Parameter(torch.full((2,), float(init_log_var)))

    def task_losses(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unweighted per-row losses (N, 2): squared error, cross-entropy."""
        width = 1 + int(self.n_classes)
        if input.ndim != 2 or input.shape[1] != width:
            raise ValueError(
                f"uncertainty_weighted_mixed with n_classes={self.n_classes} takes (N, {width}) "
                f"outputs (a value, then {self.n_classes} class logits). Got shape "
                f"{tuple(input.shape)}."
            )
        if target.ndim != 2 or target.shape[1] != 2:
            raise ValueError(
                "uncertainty_weighted_mixed takes (N, 2) targets: the value, then the class "
                f"index. Got shape {tuple(target.shape)}."
            )
        value = target[:, 0].to(input.dtype)
        labels = target[:, 1].round().long()
        squared = (input[:, 0] - value).square()
        logits = input[:, 1:]
        # log-softmax through logsumexp: stable for large logits
        picked = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
        cross_entropy = torch.logsumexp(logits, dim=1) - picked
        return torch.stack([squared, cross_entropy], dim=1)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        losses = self.task_losses(input, target)
        if self.weights == "equal":
            return losses.sum(dim=1)
        s = self.log_var.to(input.dtype)
        c = torch.tensor(_SCALES[self.form], dtype=input.dtype, device=input.device)
        return (c * torch.exp(-s) * losses).sum(dim=1) + _LOG_SCALES[self.form] * s.sum()

    def extra_repr(self) -> str:
        return (
            f"form={self.form!r}, weights={self.weights!r}, n_classes={self.n_classes}, "
            f"reduction={self.reduction!r}"
        )
