"""APRE: adjustable probabilistic reconstruction error of a mean-and-variance autoencoder."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import split_heads

__all__ = ["APRE"]


class APRE(LossModule):
    r"""Adjustable probabilistic reconstruction error (Gaussian NLL with weighted terms).

    The output holds a reconstruction :math:`\mu` and a raw scale :math:`r` per column; the
    variance is :math:`v=\mathrm{softplus}(r)+\epsilon` and

    .. math::

        \ell_i = \sum_{d=1}^{D}\Big[\alpha\,\frac{(x_{id}-\mu_{id})^2}{v_{id}}
                 + \beta\log v_{id}\Big]

    :math:`\alpha=\beta=1` is the probabilistic reconstruction error (PRE), twice the Gaussian
    NLL without its constant. Meant for an autoencoder-style regressor fitted with the input
    as target, ``LossRegressor(loss="apre").fit(X, X)``: ``predict`` returns the
    reconstruction :math:`\mu`, ``predict(X, return_std=True)`` also :math:`\sqrt v`, and
    :meth:`outlier_score` the paper's adjusted score of new rows. It fits any
    multi-output regression with a variance head as well.

    Output (N, 2D) = D means then D raw scales; float targets (N,) or (N, D).

    Parameters
    ----------
    alpha : float in (0, inf), default=1.0
        Weight of the variance-scaled squared error during training.
    beta : float in (0, inf), default=1.0
        Weight of the log-variance term during training.
    eps : float in (0, inf), default=1e-05
        Added to the softplus variance (the reference's constant).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The catalogue's reconstruction was marked UNVERIFIED (weights or exponents?). Checked
    against the authors' code (``libs/loss.py`` ``apre`` / ``apre_samples``,
    ``libs/train.py``, ``main.py`` of the paper's repository): :math:`\alpha` and
    :math:`\beta` are **weights** of the two sums, the second head is a variance through
    ``softplus`` plus :math:`10^{-5}` (it divides the squared error, not its square), the
    terms are summed over columns and averaged over rows. Two differences from the
    catalogue: the reference **trains with PRE** (it passes :math:`\alpha=\beta=1` to the
    training loss whatever ``--alpha`` / ``--beta`` say) and applies the adjustable weights
    only to the outlier score (command-line defaults :math:`\alpha=0.5`, :math:`\beta=2`);
    so the defaults here are 1 and :meth:`outlier_score` takes the scoring weights. Training
    with other weights is allowed (the minimiser in :math:`v` is
    :math:`\alpha(x-\mu)^2/\beta`, still finite). The mean-shift scoring of the paper moves
    test rows towards the mean of their k nearest training neighbours before scoring; it is a
    transformation of the data, not part of the loss, and is not provided here.

    References
    ----------
    X. Tan, J. Yang, J. Chen, S. Rahardja, S. Rahardja. "Improving Autoencoder-based Outlier
    Detection with Adjustable Probabilistic Reconstruction Error and Mean-shift Outlier
    Scoring." arXiv:2304.00709.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.5, -1.0], [2.0, 0.5]])
    >>> loss = APRE(reduction="none")
    >>> [round(v, 4) for v in loss(out, torch.tensor([1.0, 1.0, 0.0, 0.0])).tolist()]
    [1.0762, 0.7547, -0.3627, 4.0802]
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        beta: float = 1.0,
        eps: float = 1e-5,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    def _terms(
        self, input: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        (mean, raw), target = split_heads(input, target, 2, "apre")
        variance = F.softplus(raw) + self.eps
        return (target - mean).square() / variance, torch.log(variance)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        fit, log_var = self._terms(input, target)
        return (self.alpha * fit + self.beta * log_var).sum(dim=1)

    def outlier_score(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        alpha: float = 0.5,
        beta: float = 2.0,
    ) -> torch.Tensor:
        """Return the APRE outlier score of each row, (N,): larger is more anomalous.

        The defaults are the reference's command-line defaults; the paper tunes them per data
        set.
        """
        fit, log_var = self._terms(output, target)
        return (alpha * fit + beta * log_var).sum(dim=1)

    def predict_std(self, output: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\sqrt{\\mathrm{softplus}(r)+\\epsilon}`, shape (N, D)."""
        return (F.softplus(output[:, output.shape[1] // 2 :]) + self.eps).sqrt()

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, eps={self.eps!r}, reduction={self.reduction!r}"
        )
