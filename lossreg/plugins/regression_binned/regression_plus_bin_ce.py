"""Squared error on a regression output plus cross-entropy on an auxiliary bin head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import Link, LossModule

from ._bins import bin_edges, scalar_range, scalar_target
from .histogram_ce import bin_index

__all__ = ["FIRST_COLUMN", "RegressionPlusBinCE"]


class RegressionPlusBinCE(LossModule):
    r"""Squared error of a regression output plus :math:`\lambda` times a bin cross-entropy.

    .. math::

        \ell_i = (\hat y_i - y_i)^2
                 - \lambda\log\mathrm{softmax}(z^{\mathrm{bins}}_i)_{\mathrm{bin}(y_i)}

    The network has ``1 + n_bins`` outputs: column 0 is :math:`\hat y`, the other columns are
    the logits of :math:`K` equal-width bins over the training target range (the auxiliary
    classification head; targets outside the range fall in the end bins). Prediction: column 0.

    Input has shape (N, 1 + n_bins); targets are floats of shape (N,) or (N, 1).

    Parameters
    ----------
    n_bins : int >= 2, default=10
        Number of bins :math:`K` of the auxiliary head.
    lam : float in [0, inf), default=1.0
        Weight :math:`\lambda` of the cross-entropy; 0 gives plain squared error.
    target_min, target_max : float
        The training fold's target range (data params).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The entry is from memory and its authors' repository was not identified. The paper
    (arXiv:2308.10603) adds a classification loss on binned targets through an extra linear
    layer on the penultimate features that is discarded at test time, which is this layout;
    the bin layout (equal-width) and :math:`\lambda=1` follow the catalogue. The CE term is
    expected to help mainly when the training targets are imbalanced.

    References
    ----------
    S. L. Pintea, Y. Lin, J. Dijkstra, J. C. van Gemert. "A step towards understanding why
    classification helps regression." ICCV 2023, arXiv:2308.10603.

    Examples
    --------
    >>> import torch
    >>> loss = RegressionPlusBinCE(n_bins=2, target_min=0.0, target_max=2.0, reduction="none")
    >>> output = torch.tensor([[0.5, 1.0, 0.0], [1.5, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    >>> out = loss(output, torch.tensor([0.5, 1.0, 1.0, 2.0]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.3133, 0.5633, 0.6931, 7.0486]
    """

    #: Index of the first bin logit in the output (the link reads it too).
    bin_offset = 1

    def __init__(
        self,
        *,
        n_bins: int = 10,
        lam: float = 1.0,
        target_min: float | Sequence[float],
        target_max: float | Sequence[float],
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_bins = n_bins
        self.lam = lam
        self.target_min = target_min
        self.target_max = target_max
        edges = bin_edges(*scalar_range(target_min, target_max, 0.0), n_bins)
        self.register_buffer("edges_", edges)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        if input.ndim != 2 or input.shape[1] != 1 + self.n_bins:
            raise ValueError(
                f"regression_plus_bin_ce needs 1 + n_bins = {1 + self.n_bins} outputs per row. "
                f"Got shape {tuple(input.shape)}."
            )
        y = scalar_target(target, input)
        squared = (input[:, 0] - y).square()
        k = bin_index(y, self.edges_).to(input.device)
        log_p = input[:, 1:].log_softmax(dim=-1).gather(1, k.unsqueeze(1)).squeeze(1)
        return squared - self.lam * log_p

    def extra_repr(self) -> str:
        return f"n_bins={self.n_bins}, lam={self.lam}, reduction={self.reduction!r}"


def _first_column(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return output[:, 0]


#: The regression head is column 0; the bin logits are auxiliary.
FIRST_COLUMN = Link(
    "regression_head",
    _first_column,
    "value",
    "column 0 is the prediction; other columns are auxiliary",
)
