"""PHI-S: MSE after isotropic standardisation of multi-output targets (Hadamard rotation)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lossreg import Link, LossModule

__all__ = ["PHI_S_INVERSE", "PhiSMSE", "hadamard_width", "sylvester_hadamard"]


def hadamard_width(n_outputs: int) -> int:
    """Return the width of the standardised space: the smallest power of two >= ``n_outputs``."""
    return 1 << max(int(n_outputs) - 1, 0).bit_length()


def sylvester_hadamard(width: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Return the orthonormal Sylvester-Hadamard matrix of a power-of-two ``width``."""
    if width < 1 or width & (width - 1):
        raise ValueError(f"A Sylvester-Hadamard matrix needs a power-of-two width; got {width}.")
    h = torch.ones(1, 1, dtype=dtype)
    while h.shape[0] < width:
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    return h / math.sqrt(width)


class PhiSMSE(LossModule):
    r"""Mean squared error in the PHI-S space: targets rotated by PCA then a Hadamard matrix
    and scaled by one isotropic factor, so that every output has unit variance.

    From the training targets (mean :math:`m`, covariance :math:`\Sigma=U\Lambda U^\top`,
    :math:`D` columns, padded to :math:`D'`, the next power of two):

    .. math::

        y' = \frac1\alpha\,H\begin{bmatrix}U^\top(y-m)\\0\end{bmatrix},\qquad
        \alpha=\sqrt{\mathrm{tr}\,\Sigma/D'},\qquad
        \ell_i = \frac1{D'}\big\lVert \hat y'_i - y'_i\big\rVert^2

    with :math:`H` the orthonormal :math:`D'\times D'` Sylvester-Hadamard matrix. Every
    column of :math:`y'` has variance exactly 1 on the training rows (the diagonal of
    :math:`H\Lambda H^\top/\alpha^2`); a rotation keeps distances, so for :math:`D'=D` the
    loss equals the original-space squared error over the mean target variance.

    Input (N, D') in the standardised space; float targets (N,) or (N, D) in the original
    space. Prediction: the inverse map :math:`y = m + \alpha\,U\,[H^\top\hat y']_{1..D}`.

    Parameters
    ----------
    target_values : list
        The training targets (data param), for :math:`m` and :math:`\Sigma`.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against the paper (section 2.2.5, Theorem 2.1 and Eqs. 22-26: :math:`R=HU^\top`,
    :math:`\alpha=\phi^{-1}`, :math:`\phi^2=\frac1C\sum_i\lambda_i`; the loss is the MSE of
    Eq. 1 on the transformed targets, with the inverse map used to predict in the original
    space) and the authors' code (NVlabs/RADIO ``examples/common/phi_s.py``
    ``get_phi_s_matrix`` and ``hadamard.py``): centre by the mean, ``torch.cov``
    (denominator N-1), ``eigh`` with negative eigenvalues set to 0, normalised Sylvester
    Hadamard :math:`H`, transform :math:`\alpha^{-1}HU^\top`; all agree with the catalogue.
    For a width that is not a power of two, the paper and code use other Hadamard
    constructions (Paley) where one exists and the code falls back to a random orthogonal
    matrix (which equalises the variances only approximately); here the target is padded
    with zero-variance directions to the next power of two (the catalogue's "or padded"),
    which keeps the transform exact and deterministic at the cost of :math:`D'-D` extra
    output columns, and :math:`\alpha` divides the total variance by :math:`D'`. The paper
    notes the transform is unique up to signs; each eigenvector is flipped so that its
    diagonal entry :math:`U_{jj}` is non-negative, so the map does not depend on the sign
    ``eigh`` happens to return. Constant training targets give :math:`\alpha=1`.

    References
    ----------
    M. Ranzinger, J. Barker, G. Heinrich, P. Molchanov, J. Kautz, B. Catanzaro, A. Tao.
    "PHI-S: Distribution Balancing for Label-Free Multi-Teacher Distillation."
    arXiv:2410.01680.

    Examples
    --------
    >>> import torch
    >>> train = [[0.0, 0.0], [1.0, 10.0], [2.0, 18.0], [3.0, 33.0]]
    >>> loss = PhiSMSE(target_values=train, reduction="none")
    >>> y = torch.tensor(train)
    >>> bool(torch.allclose(loss.transform(y).var(dim=0), torch.ones(2)))
    True
    >>> pred = loss.transform(y) + torch.tensor([[0.5, 0.5]])
    >>> [round(v, 4) for v in loss(pred, y).tolist()]
    [0.25, 0.25, 0.25, 0.25]
    """

    def __init__(self, *, target_values: Sequence[Any], reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.target_values = target_values
        values = torch.as_tensor(target_values, dtype=torch.float64)
        values = values.reshape(values.shape[0], -1)
        d = values.shape[1]
        width = hadamard_width(d)
        mean = values.mean(dim=0)
        centred = values - mean
        cov = centred.t() @ centred / max(values.shape[0] - 1, 1)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        # eigh's signs are arbitrary: make U_jj >= 0 so the transform is reproducible.
        signs = torch.where(eigvecs.diagonal() < 0, -1.0, 1.0).to(eigvecs.dtype)
        eigvecs = eigvecs * signs
        total = float(eigvals.clamp_min(0).sum())
        alpha = math.sqrt(total / width) if total > 0 else 1.0
        h = sylvester_hadamard(width)[:, :d]  # the columns that meet the D real directions
        self.register_buffer("mean_", mean)
        self.register_buffer("forward_", h @ eigvecs.t() / alpha)  # (D', D)
        self.register_buffer("inverse_", alpha * eigvecs @ h.t())  # (D, D')

    def transform(self, target: torch.Tensor) -> torch.Tensor:
        """Map (N, D) original-space targets to the (N, D') standardised space."""
        y = target.reshape(target.shape[0], -1)
        centred = y - self.mean_.to(y.dtype)
        return centred @ self.forward_.to(y.dtype).t()

    def inverse_transform(self, output: torch.Tensor) -> torch.Tensor:
        """Map (N, D') standardised outputs ((N,) for D' = 1) back to (N, D) predictions."""
        out = output.reshape(output.shape[0], -1)
        return out @ self.inverse_.to(out.dtype).t() + self.mean_.to(out.dtype)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        n = input.shape[0]
        pred = input.reshape(n, -1)
        width, d = self.forward_.shape
        if pred.shape[1] != width:
            raise ValueError(
                f"phi_s_mse was fitted on {d} target columns, whose standardised space has "
                f"{width} columns, but got {pred.shape[1]} outputs per row."
            )
        # The target is in the original space (D columns), the input in the standardised one.
        y = target.to(input.dtype).reshape(n, -1)
        if y.shape[1] != d:
            raise ValueError(
                f"phi_s_mse was fitted on {d} target columns but got targets with {y.shape[1]}."
            )
        return (pred - self.transform(y)).square().mean(dim=1)

    def extra_repr(self) -> str:
        width, d = self.forward_.shape
        return f"n_outputs={d}, width={width}, reduction={self.reduction!r}"


def _inverse(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None or not hasattr(criterion, "inverse_transform"):
        raise ValueError(
            "The phi_s_inverse link needs the fitted criterion (its target mean and rotation)."
        )
    return criterion.inverse_transform(output)


#: Predicts in the original target space: the inverse PHI-S map of the output.
PHI_S_INVERSE = Link(
    "phi_s_inverse",
    _inverse,
    "value",
    "inverse PHI-S map m + alpha U H^T y' of the standardised output",
)
