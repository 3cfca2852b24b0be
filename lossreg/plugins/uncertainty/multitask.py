"""Homoscedastic uncertainty weighting of per-output squared errors with learnable log-variances."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import LossModule, as_float_target

__all__ = ["UncertaintyWeightedMultitask"]


class UncertaintyWeightedMultitask(LossModule):
    r"""Multi-output squared error weighted by learned task uncertainties.

    With one learnable :math:`s_t=\log\sigma_t^2` per output :math:`t`:

    .. math::

        \ell_i = \sum_{t=1}^{T}\Big[c\,e^{-s_t}(\hat y_{it}-y_{it})^2 + d\,s_t\Big]

    ``form="kendall"``: :math:`c=d=\tfrac12` (the Gaussian likelihood of Kendall et al.);
    ``form="simplified"``: :math:`c=d=1` (the common :math:`\sum_t e^{-s_t}L_t+s_t`). The mean
    over rows is :math:`\sum_t[c\,e^{-s_t}\mathrm{MSE}_t+d\,s_t]`.

    Input (N, T) predictions; float targets (N, T). Prediction: identity.

    Parameters
    ----------
    form : {"kendall", "simplified"}, default="kendall"
    init_log_var : float, default=0.0
        Initial :math:`s_t`.
    n_outputs : int
        Number of outputs :math:`T` (data param).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    ``log_var`` is an ``nn.Parameter``: the estimator must hand the criterion's parameters to
    the optimizer. Only regression outputs are covered: one value head and one class head
    (a classification task with :math:`c_t=1`) are ``uncertainty_weighted_mixed``, for mixed
    targets (``LossMixedEstimator``). The catalogue entry is from memory; Kendall et al.
    (eq. 7/10) write
    :math:`\frac{1}{2\sigma^2}L + \log\sigma` for regression, i.e. ``kendall`` here, and
    :math:`\frac1{\sigma^2}L+\log\sigma` for classification. The trajectory paper's exact
    variant was not confirmed.

    References
    ----------
    A. Kendall, Y. Gal, R. Cipolla. "Multi-Task Learning Using Uncertainty to Weigh Losses for
    Scene Geometry and Semantics." CVPR 2018, arXiv:1705.07115.

    Examples
    --------
    >>> import torch
    >>> loss = UncertaintyWeightedMultitask(n_outputs=2, reduction="none")
    >>> with torch.no_grad():
    ...     _ = loss.log_var.copy_(torch.tensor([0.0, 1.0]))
    >>> pred = torch.tensor([[1.0, 2.0], [0.0, 0.0], [1.0, 1.0], [3.0, -1.0]])
    >>> out = loss(pred, torch.zeros(4, 2))
    >>> [round(v, 4) for v in out.tolist()]
    [1.7358, 0.5, 1.1839, 5.1839]
    """

    def __init__(
        self,
        *,
        form: str = "kendall",
        init_log_var: float = 0.0,
        n_outputs: int,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if form not in ("kendall", "simplified"):
            raise ValueError(f"form must be 'kendall' or 'simplified'. Got {form!r} instead.")
        self.form = form
        self.init_log_var = init_log_var
        self.n_outputs = n_outputs
        self.log_var = nn.Parameter(torch.full((int(n_outputs),), float(init_log_var)))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        pred = input.reshape(input.shape[0], -1)
        y = y.reshape(pred.shape)
        if pred.shape[1] != self.log_var.numel():
            raise ValueError(
                f"uncertainty_weighted_multitask was built for n_outputs={self.n_outputs} but "
                f"got {pred.shape[1]} outputs per row."
            )
        scale = 0.5 if self.form == "kendall" else 1.0
        s = self.log_var.to(input.dtype)
        return (scale * torch.exp(-s) * (pred - y).square() + scale * s).sum(dim=-1)

    def extra_repr(self) -> str:
        return f"form={self.form!r}, n_outputs={self.n_outputs}, reduction={self.reduction!r}"
