"""ACR: adaptive coordinate-based regression loss, difficulty from a PCA shape model of targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lossreg import LossModule, as_float_target

__all__ = ["ACR"]

#: Explained-variance levels of the shape model by training progress (reference schedule).
_SCHEDULE = ((0.15, 0.80), (0.30, 0.85), (0.70, 0.90), (1.01, 0.95))


class ACR(LossModule):
    r"""Adaptive coordinate-based regression loss for correlated multi-output targets.

    A PCA shape model of the training targets (mean :math:`m`, eigenpairs
    :math:`(\lambda_j, v_j)`) reconstructs each target from its top components whose
    explained variance reaches the current level, with coefficients clipped to
    :math:`\pm3\sqrt{\lambda_j}`: :math:`\tilde y_i`. The difficulty of each output is
    :math:`\varphi_{ik}=|y_{ik}-\tilde y_{ik}|/\max_k|y_{ik}-\tilde y_{ik}|\in[0,1]`, and with
    :math:`e=\hat y-y`:

    .. math::

        \ell_{ik} = \begin{cases}\lambda\ln\big(1+|e_{ik}|^{2-\varphi_{ik}}\big) & |e_{ik}|\le1\\
                    e_{ik}^2 + \varphi_{ik}\ln2 - 1 & |e_{ik}|>1\end{cases},\qquad
        \ell_i = \frac1M\sum_k \ell_{ik}

    Input (N, M); float targets (N, M) (M >= 2 outputs; a single output has no shape model
    and gets :math:`\varphi = 0`). Prediction: identity.

    Parameters
    ----------
    lam : float in (0, inf), default=1.0
        :math:`\lambda` of the small-error branch (the loss is continuous at
        :math:`|e|=1` only where :math:`\lambda=\varphi`).
    pca_variance : float in (0, 1] or None, default=None
        Fixed explained-variance level of the shape model; ``None`` follows the reference
        schedule through ``set_epoch``: 80% for the first 15% of the epochs, then 85% (to
        30%), 90% (to 70%) and 95%.
    target_values : list of lists
        The training targets (data param), for the shape model.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against aliprf/ACR-Loss (``acr_loss.py``, ``pca_utilities.py``,
    ``data_util.get_asm``, ``train.calculate_adoptive_weight``): the two branches, the
    constant :math:`C=\varphi\ln2-1`, the clipped PCA reconstruction and the row-max
    normalisation of :math:`\varphi` agree. The reference multiplies the mean by 100 (a
    constant factor, left out here) and switches the PCA level at epochs 15/30/70 of its
    100-epoch runs, mapped here to fractions of ``max_epochs``. A row whose target equals its
    reconstruction gets :math:`\varphi = 0` (the reference divides 0 by 0). :math:`\varphi` is
    computed from the targets only, so it carries no gradient.

    References
    ----------
    A. P. Fard, M. H. Mahoor. "ACR Loss: Adaptive Coordinate-based Regression Loss for Face
    Alignment." ICPR 2022, arXiv:2203.15835.

    Examples
    --------
    >>> import torch
    >>> train = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.1], [3.0, 2.9]]
    >>> loss = ACR(pca_variance=0.9, target_values=train, reduction="none")
    >>> pred = torch.tensor([[0.5, 0.0], [1.0, 3.0], [2.0, 2.0], [0.0, 0.0]])
    >>> out = loss(pred, torch.tensor([[0.0, 0.0], [1.0, 1.2], [2.0, 2.0], [3.0, 2.8]]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.2006, 1.4666, 0.0, 8.1068]
    """

    def __init__(
        self,
        *,
        lam: float = 1.0,
        pca_variance: float | None = None,
        target_values: Sequence[Any],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.lam = lam
        self.pca_variance = pca_variance
        self.target_values = target_values
        values = torch.as_tensor(target_values, dtype=torch.float64)
        values = values.reshape(values.shape[0], -1)
        mean = values.mean(dim=0)
        centred = values - mean
        cov = centred.t() @ centred / max(values.shape[0] - 1, 1)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        order = torch.argsort(eigvals, descending=True)
        self.register_buffer("mean_", mean)
        self.register_buffer("eigvals_", eigvals[order].clamp_min(0))
        self.register_buffer("eigvecs_", eigvecs[:, order])
        # The explained-variance level in force (the schedule's first level until set_epoch).
        level = _SCHEDULE[0][1] if pca_variance is None else pca_variance
        self.register_buffer("level_", torch.tensor(float(level), dtype=torch.float64))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Follow the reference's explained-variance schedule (unless ``pca_variance`` is set)."""
        if self.pca_variance is not None:
            return
        progress = epoch / max(max_epochs, 1)
        level = next(v for limit, v in _SCHEDULE if progress <= limit)
        self.level_.fill_(level)

    def n_components(self) -> int:
        """Number of leading components whose explained variance reaches the current level."""
        total = float(self.eigvals_.sum())
        if total <= 0:
            return 0
        ratio = torch.cumsum(self.eigvals_, 0) / total
        reached = torch.nonzero(ratio >= float(self.level_) - 1e-12)
        return int(reached[0, 0]) + 1 if reached.numel() else self.eigvals_.numel()

    def difficulty(self, target: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\varphi` for (N, M) targets, in [0, 1] (float64)."""
        y = target.to(torch.float64).reshape(target.shape[0], -1)
        k = self.n_components()
        vecs, bound = self.eigvecs_[:, :k], 3 * self.eigvals_[:k].sqrt()
        b = (y - self.mean_) @ vecs
        b = torch.maximum(torch.minimum(b, bound), -bound)
        gap = (y - (self.mean_ + b @ vecs.t())).abs()
        top = gap.max(dim=1, keepdim=True).values
        return torch.where(top > 0, gap / torch.where(top > 0, top, 1.0), 0.0)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        y = as_float_target(target, input)
        n = input.shape[0]
        pred, y = input.reshape(n, -1), y.reshape(n, -1)
        if pred.shape[1] != self.mean_.numel():
            raise ValueError(
                f"acr was fitted on {self.mean_.numel()} target columns but got "
                f"{pred.shape[1]} outputs per row."
            )
        phi = self.difficulty(y).to(input.dtype)
        error = (pred - y).abs()
        small = error <= 1
        # Large errors never reach the pow: their (unused) branch would overflow and its
        # backward would put inf * 0 = NaN into the gradient.
        base = torch.where(small, error, torch.ones_like(error))
        low = self.lam * torch.log1p(base.pow(2 - phi))
        high = error.square() + phi * math.log(2) - 1
        return torch.where(small, low, high).mean(dim=1)

    def extra_repr(self) -> str:
        return f"lam={self.lam}, pca_variance={self.pca_variance}, reduction={self.reduction!r}"
