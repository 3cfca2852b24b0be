"""Squared error on a regression output plus cross-entropy on an auxiliary bin head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import Link, LossModule

from ._bins import bin_edges, bin_logits, output_ranges, row_targets
from .histogram_ce import bin_index

__all__ = ["FIRST_COLUMN", "RegressionPlusBinCE"]


class RegressionPlusBinCE(LossModule):
    r"""Squared error of a regression output plus :math:`\lambda` times a bin cross-entropy.

    .. math::

        \ell_i = (\hat y_i - y_i)^2
                 - \lambda\log\mathrm{softmax}(z^{\mathrm{bins}}_i)_{\mathrm{bin}(y_i)}

    For T target columns the network has ``T * (1 + n_bins)`` outputs: columns ``0..T-1`` are
    :math:`\hat y`, then one block of ``n_bins`` logits per column over :math:`K` equal-width
    bins of its training range (the auxiliary classification head; targets outside the range
    fall in the end bins). The per-row loss is the mean over columns. Prediction: the first T
    columns.

    Input has shape (N, T * (1 + n_bins)); float targets (N,), (N, 1) or (N, T).

    Parameters
    ----------
    n_bins : int >= 2, default=10
        Number of bins :math:`K` of the auxiliary head.
    lam : float in [0, inf), default=1.0
        Weight :math:`\lambda` of the cross-entropy; 0 gives plain squared error.
    target_min, target_max : float or list of T floats
        The training fold's target range per column (data params).
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
        edges = bin_edges(*output_ranges(target_min, target_max, 0.0), n_bins)
        self.register_buffer("edges_", edges)  # (T, n_bins + 1)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        n_outputs = self.edges_.shape[0]
        logits = bin_logits(input, n_outputs, self.n_bins, offset=n_outputs)
        y = row_targets(target, input.shape[0], n_outputs).to(input.dtype)
        squared = (input[:, :n_outputs] - y).square()
        k = bin_index(y, self.edges_).to(input.device)
        log_p = logits.log_softmax(dim=-1).gather(2, k.unsqueeze(-1)).squeeze(-1)
        return (squared - self.lam * log_p).mean(dim=-1)

    def extra_repr(self) -> str:
        return f"n_bins={self.n_bins}, lam={self.lam}, reduction={self.reduction!r}"


def _regression_head(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    edges = getattr(criterion, "edges_", None)
    n_outputs = 1 if edges is None else edges.shape[0]
    return output[:, 0] if n_outputs == 1 else output[:, :n_outputs]


#: The regression head is the first n_outputs columns; the bin logits are auxiliary.
FIRST_COLUMN = Link(
    "regression_head",
    _regression_head,
    "value",
    "the first n_outputs columns are the prediction; the bin logits are auxiliary",
)
