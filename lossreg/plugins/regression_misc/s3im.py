"""S3IM: MSE plus stochastic structural dissimilarity of randomly re-tiled batches."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import as_float_target

__all__ = ["S3IM"]

# SSIM stabilisers for values in [0, 1] (Wang et al. 2004), as the reference.
_C1 = 0.01**2
_C2 = 0.03**2


def _gaussian_window(size: int, channels: int, like: torch.Tensor) -> torch.Tensor:
    # The reference centres the window at size // 2 (asymmetric for even sizes), sigma 1.5.
    x = torch.arange(size, dtype=like.dtype, device=like.device) - size // 2
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def _ssim(a: torch.Tensor, b: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Mean SSIM of two (1, C, H, W) images with a Gaussian window, as the reference."""
    channels = a.shape[1]
    window = _gaussian_window(size, channels, a)
    pad = (size - 1) // 2
    # A pseudo-image smaller than the window (tiny batches) gets zero rows/columns added at
    # its end, so that at least one window fits.
    short_h = max(size - (a.shape[2] + 2 * pad), 0)
    short_w = max(size - (a.shape[3] + 2 * pad), 0)
    if short_h or short_w:
        a = F.pad(a, (0, short_w, 0, short_h))
        b = F.pad(b, (0, short_w, 0, short_h))

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, padding=pad, groups=channels, stride=stride)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.square()
    var_b = blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a.square() + mu_b.square() + _C1) * (var_a + var_b + _C2)
    return (num / den).mean()


class S3IM(nn.Module):
    r"""S3IM: mean squared error plus :math:`\lambda` times stochastic structural dissimilarity.

    The batch's index list is the identity followed by :math:`R-1` random permutations; the
    gathered predictions and targets (:math:`N R` rows, :math:`C` outputs) are laid out as a
    :math:`C`-channel pseudo-image of height :math:`H` and width :math:`W R`
    (:math:`N = HW`), and

    .. math::

        L = \mathrm{MSE}(\hat y, y) + \lambda\,\big(1-\mathrm{SSIM}_{k,s}(\hat Y, Y)\big)

    with a :math:`k\times k` Gaussian window (:math:`\sigma=1.5`) applied with stride
    :math:`s`. A stochastic, batch-level loss. Input (N,) or (N, C); float targets of the same
    shape. Prediction: identity.

    Parameters
    ----------
    lam : float in [0, inf), default=1.0
        Weight :math:`\lambda` of the S3IM term; 0 gives plain MSE.
    kernel_size : int >= 1, default=4
    stride : int >= 1, default=4
    repeat : int >= 1, default=10
        :math:`R`, the number of tilings (the first is the batch order).
    patch_height : int >= 1 or None, default=None
        :math:`H`; the batch size must then be a multiple of it (:math:`W = N/H`). The paper
        uses :math:`H=W=64` with batches of 4096 rays. ``None`` takes the largest divisor of
        :math:`N` not above :math:`\sqrt N`, so that any batch size works.
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` is ``mean`` times the batch size.

    Notes
    -----
    Checked against Madaoer/S3IM-Neural-Fields (``model_components/s3im.py``, ``ssim.py``):
    the index list, the permute-and-reshape tiling, the Gaussian window centred at ``k // 2``
    with :math:`\sigma=1.5`, padding :math:`(k-1)//2`, the stride and the constants
    :math:`C_1=0.01^2`, :math:`C_2=0.03^2` agree. The reference hard-codes 3 channels (RGB);
    any number of outputs works here. The SSIM constants assume targets in [0, 1]: scale the
    targets. Permutations come from torch's default generator (``torch.manual_seed``
    reproduces them). Sample weights cannot be honoured by the structural term and raise. A
    pseudo-image smaller than the window (tiny batches) is zero-padded at its end.

    References
    ----------
    Z. Xie, X. Yang, Y. Yang, Q. Sun, Y. Jiang, H. Wang, Y. Cai, M. Sun. "S3IM: Stochastic
    Structural SIMilarity and Its Unreasonable Effectiveness for Neural Fields." ICCV 2023,
    arXiv:2308.07032.

    Examples
    --------
    >>> import torch
    >>> loss = S3IM(repeat=1)
    >>> pred = torch.tensor([[0.1, 0.2], [0.4, 0.4], [0.5, 0.9], [0.8, 0.7]])
    >>> target = torch.tensor([[0.0, 0.2], [0.5, 0.5], [0.5, 1.0], [1.0, 0.7]])
    >>> round(loss(pred, target).item(), 4)
    0.033
    """

    def __init__(
        self,
        *,
        lam: float = 1.0,
        kernel_size: int = 4,
        stride: int = 4,
        repeat: int = 10,
        patch_height: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"s3im is a batch-level loss: reduction must be 'mean' or 'sum'. Got "
                f"{reduction!r}; it has no per-row form for 'none'."
            )
        self.lam = lam
        self.kernel_size = kernel_size
        self.stride = stride
        self.repeat = repeat
        self.patch_height = patch_height
        self.reduction = reduction

    def _height(self, n: int) -> int:
        if self.patch_height is not None:
            if n % self.patch_height:
                raise ValueError(
                    f"s3im with patch_height={self.patch_height} needs a batch size that is a "
                    f"multiple of it; got {n} rows. Use drop_last or patch_height=None."
                )
            return int(self.patch_height)
        return max(h for h in range(1, math.isqrt(n) + 1) if n % h == 0)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if sample_weight is not None:
            raise ValueError(
                "s3im cannot honour sample weights: its structural term compares re-tiled "
                "patches of the batch, not rows."
            )
        n = input.shape[0]
        pred = input.reshape(n, -1)
        y = as_float_target(target, input).reshape(n, -1)
        mse = (pred - y).square().mean()
        if self.lam == 0:
            return mse if self.reduction == "mean" else mse * n
        height = self._height(n)
        width = n // height
        order = [torch.arange(n, device=input.device)]
        order += [torch.randperm(n).to(input.device) for _ in range(self.repeat - 1)]
        index = torch.cat(order)
        channels = pred.shape[1]
        shape = (1, channels, height, width * self.repeat)
        src = pred[index].t().reshape(shape)
        tgt = y[index].t().reshape(shape)
        loss = mse + self.lam * (1 - _ssim(src, tgt, self.kernel_size, self.stride))
        return loss if self.reduction == "mean" else loss * n

    def extra_repr(self) -> str:
        return (
            f"lam={self.lam}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"repeat={self.repeat}, patch_height={self.patch_height}, "
            f"reduction={self.reduction!r}"
        )
