"""EnsLoss: random calibrated loss-derivatives, a stochastic ensemble of convex margin losses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import reduce

from ._private import binary_margin

__all__ = ["EnsLoss"]


class EnsLoss(nn.Module):
    r"""EnsLoss: a batch-level loss defined by random, calibrated loss-derivatives.

    For the margins :math:`s_i = (2y_i-1) f_i` of a batch:

    1. draw :math:`\varepsilon_i \sim \mathcal N(0, 1)` and invert a Box-Cox transform:
       :math:`g_i = e^{\varepsilon_i}` if :math:`\lambda = 0`, else
       :math:`\max(1 + \lambda\varepsilon_i, 0)^{1/\lambda}`; :math:`d_i = -g_i`;
    2. sort :math:`d` ascending, clip at -1, and give the most negative derivative to the
       smallest margin (derivatives non-decreasing in the margin: an implied convex loss);
    3. where :math:`s_i > 1`, :math:`d_i \leftarrow d_i / s_i` (super-linear tail); then
       :math:`d_i \leftarrow d_i - 10^{-6}` (strictly negative: classification-calibrated);
    4. :math:`L = \operatorname{mean}_i \mathrm{sg}(d_i)\, s_i`, whose gradient is
       :math:`d_i\,\partial s_i`.

    The score has shape (N,) or (N, 1); targets are {0, 1} labels.

    Parameters
    ----------
    lam : float in [0, inf), default=0.0
        Box-Cox :math:`\lambda` of the derivative distribution.
    seed : int or None, default=None
        ``None`` draws from torch's global generator. An int makes the draws reproducible:
        call ``k`` uses a generator seeded with ``seed + k`` (the call counter is the buffer
        ``calls_``, saved with the module).
    reduction : {"mean", "sum"}, default="mean"
        ``"none"`` is refused: the derivatives depend on the whole batch. Sample weights give
        the weighted mean (or sum) of :math:`\mathrm{sg}(d_i) s_i`; the rank assignment itself
        ignores them.

    Notes
    -----
    The loss *value* is meaningless (only its gradient is defined): never early-stop or
    select models on it; score with a separate metric. Checked against the authors' code,
    statmlben/ensLoss ``losses.py`` (class ``ensLoss``): same draw, sort, clip at -1, rank
    assignment, division by the margin above 1 and the -1e-6 shift; it agrees with the
    catalogue. The reference hard-codes CUDA; this module follows the input's device. Not
    proper: the score gives a sign; probabilities need a post-hoc calibrator.

    References
    ----------
    B. Dai. "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in
    Classification." ICML 2025, arXiv:2409.00908.

    Examples
    --------
    >>> import torch
    >>> loss = EnsLoss(seed=0)
    >>> f = torch.tensor([2.0, -0.5, 0.3, 1.0], requires_grad=True)
    >>> value = loss(f, torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> (grad,) = torch.autograd.grad(value, f)
    >>> [round(v, 4) for v in grad.tolist()]
    [-0.0141, 0.1864, -0.25, 0.25]
    """

    def __init__(
        self, *, lam: float = 0.0, seed: int | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"ensloss is a batch-level loss: reduction must be 'mean' or 'sum'. Got "
                f"{reduction!r} instead."
            )
        self.lam = lam
        self.seed = seed
        self.reduction = reduction
        self.register_buffer("calls_", torch.zeros((), dtype=torch.int64))

    def _noise(self, n: int, like: torch.Tensor) -> torch.Tensor:
        if self.seed is None:
            return torch.randn(n, dtype=like.dtype, device=like.device)
        generator = torch.Generator().manual_seed(self.seed + int(self.calls_))
        self.calls_ += 1
        return torch.randn(n, generator=generator, dtype=like.dtype).to(like.device)

    def derivatives(self, margin: torch.Tensor) -> torch.Tensor:
        """Draw the loss-derivatives :math:`d_i` for a batch of margins (no gradient)."""
        margin = margin.detach()
        eps = self._noise(margin.shape[0], margin)
        # Inverse Box-Cox; lam = 0 is its exponential limit.
        boxcox = (1 + self.lam * eps).clamp_min(0).pow(1 / self.lam) if self.lam else None
        g = torch.exp(eps) if boxcox is None else boxcox
        d_sorted = torch.sort(-g).values.clamp_min(-1.0)
        d = torch.empty_like(d_sorted)
        d[torch.argsort(margin)] = d_sorted
        tail = margin > 1
        d = torch.where(tail, d / torch.where(tail, margin, torch.ones_like(margin)), d)
        return d - 1e-6

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        margin = binary_margin(input, target)
        return reduce(self.derivatives(margin) * margin, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return f"lam={self.lam}, seed={self.seed}, reduction={self.reduction!r}"
