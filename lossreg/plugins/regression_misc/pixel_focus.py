"""Pixel-focus loss: L1 re-weighted towards the outputs whose errors are large for the batch."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import as_float_target, check_batch_reduction, row_weights

__all__ = ["PixelFocus"]


class PixelFocus(nn.Module):
    r"""Focal-style L1: each element's absolute error weighted by its size relative to the
    batch mean absolute error.

    With :math:`e_{ik}=\hat y_{ik}-y_{ik}` and :math:`\bar e` the (row-weighted) mean of
    :math:`|e|` over the batch's elements,

    .. math::

        w_{ik} = \mathrm{sg}\Big(\big(|e_{ik}|/\bar e\big)^{\gamma}\Big),\qquad
        \ell_i = \frac1K\sum_k w_{ik}\,|e_{ik}|,\qquad
        L = \frac{\sum_i s_i\,\ell_i}{\sum_i s_i}

    (``sg`` is stop-gradient, :math:`s_i` the sample weights). :math:`\gamma=0` is the mean
    absolute error. Batch-level (the normaliser :math:`\bar e` is a batch statistic):
    ``"mean"`` or ``"sum"`` (the mean times the total weight).

    Input (N,) or (N, K); float targets of the same shape. Prediction: identity.

    Parameters
    ----------
    gamma : float in [0, inf), default=1.0
        Focusing exponent; larger puts more weight on the outputs with large errors.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    The catalogue's reconstruction was marked UNVERIFIED and could not be checked: the
    authors' repository (yunfanLu/ev-demosaic) holds only a README in the available snapshot,
    and the paper text was not available. The formula implemented is the catalogue's, which
    is complete (the exponent :math:`\gamma` and the batch-mean normaliser are explicit);
    the default :math:`\gamma=1` is a lossreg choice inside the catalogue's range 1-2, not a
    published default. The weights are detached, so the gradient is that of an L1 loss with
    fixed per-element weights (``gradcheck`` of the batch value does not hold, by design).
    A batch whose errors are all 0 has loss 0 (the weights are set to 1 instead of 0/0).

    References
    ----------
    Y. Lu, Y. Xu, W. Ma, W. Guo, H. Xiong. "Event Camera Demosaicing via Swin Transformer
    and Pixel-focus Loss." CVPR Workshops 2024, pp. 1095-1105.

    Examples
    --------
    >>> import torch
    >>> pred = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.5, 0.5], [1.0, 4.0]])
    >>> target = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    >>> round(PixelFocus()(pred, target).item(), 4)
    2.0714
    """

    def __init__(self, *, gamma: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_batch_reduction(reduction, "pixel_focus")
        self.gamma = gamma

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the weighted-mean focal L1 of the batch (times the total weight for sum)."""
        target = as_float_target(target, input)
        n = input.shape[0]
        error = (input - target).reshape(n, -1).abs()
        weight = row_weights(sample_weight, n, input)
        total = weight.sum()
        tiny = torch.finfo(input.dtype).tiny
        with torch.no_grad():
            # Zero total weight gives 0, as lossreg.reduce does, not 0/0.
            scale = (weight[:, None] * error).sum() / (total * error.shape[1]).clamp_min(tiny)
            focus = (error / scale).pow(self.gamma) if scale > 0 else torch.ones_like(error)
        per_row = (focus * error).mean(dim=1)
        value = (weight * per_row).sum() / total.clamp_min(tiny)
        return value * total if self.reduction == "sum" else value

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"
