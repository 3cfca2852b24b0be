"""Adaptive multi-head contrastive learning (AMCL): NT-Xent with learned pair temperatures."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import LossModule

from ._private import split_views

__all__ = ["AMCLInfoNCE"]


class AMCLInfoNCE(LossModule):
    r"""AMCL NT-Xent: per-pair temperatures from a learned network, top-k negatives, several heads.

    For each head, each view direction and each anchor :math:`a` with positive :math:`p`:

    .. math::

        \ell_a = -\frac{s_{ap}}{\tau_{ap}} + \operatorname{mean}_{n\in\mathrm{top}k}
                 \frac{s_{an}}{\tau_{an}} + \beta\,\Omega(\tau_{ap})
                 - \beta\sum_{n\in\mathrm{top}k}\big[\log\tau_{an}+1/\tau_{an}\big],
        \qquad \Omega(\tau)=\tfrac d2\log\tau+1/\tau

    with cosine similarities :math:`s`, :math:`\tau(a,b)=\tau_{\min}+(\tau_{\max}-\tau_{\min})
    \,\sigma(-\phi(\hat a)^\top\phi(\hat b))`, :math:`\phi` a shared two-layer MLP
    (d -> d -> d, ReLU) owned by this module, and top-k the k most similar of the 2N-2 other
    embeddings of the batch. A row's value sums the heads of the mean of its two directions.

    Input: embeddings (2N, H*d) - rows i and i+N two views of row i, each row the
    concatenation of H heads of width d; target: ignored. ``reduction="none"`` returns (N,);
    "mean" equals the reference's objective.

    Parameters
    ----------
    num_heads : int in [1, inf), default=3
        :math:`H`; ``embedding_dim`` must be a multiple of it.
    beta : float in [0, inf), default=0.01
        Weight of the temperature regularisers.
    tau_min, tau_max : float, default=1e-5, 2.0
        Range of the temperatures.
    topk : int in [1, inf), default=100
        Negatives kept per anchor (all 2N-2 when fewer).
    embedding_dim : int
        Data param: the network's output width H*d (sizes :math:`\phi`).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against LeiWangR/cl ``amcl/losses.py`` (``AMCLNTXentLoss``, ``TemperatureHead``):
    same terms, sum over heads of the average of the two directions. The temperature network
    is learnable and must reach the optimizer. With :math:`\tau_{\min}=10^{-5}` the logits reach
    :math:`10^5`: keep float32 or float64.

    References
    ----------
    L. Wang, P. Koniusz, T. Gedeon, L. Zheng. "Adaptive Multi-head Contrastive Learning."
    ECCV 2024, arXiv:2310.05615.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> loss = AMCLInfoNCE(embedding_dim=4, num_heads=2, reduction="none")
    >>> x = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0],
    ...                   [0.8, 0.6, 0.6, 0.8], [-0.6, 0.8, 0.8, -0.6]])
    >>> [round(v, 4) for v in loss(x, None).tolist()]
    [-1.6726, -1.6627]
    """

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_heads: int = 3,
        beta: float = 0.01,
        tau_min: float = 1e-5,
        tau_max: float = 2.0,
        topk: int = 100,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if int(embedding_dim) % int(num_heads):
            raise ValueError(
                f"embedding_dim={embedding_dim!r} must be a multiple of num_heads={num_heads!r} "
                "(each head has the same width)."
            )
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.beta = beta
        self.tau_min = tau_min
        self.tau_max = tau_max
        self.topk = topk
        d = int(embedding_dim) // int(num_heads)
        self.phi = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))

    def _phi(self, z: torch.Tensor) -> torch.Tensor:
        # The MLP's parameters are cast per call (not with .to(), which would convert them in
        # place), so float64 inputs stay float64 and the parameters keep their dtype.
        first, second = self.phi[0], self.phi[2]
        hidden = F.relu(F.linear(z, first.weight.to(z.dtype), first.bias.to(z.dtype)))
        return F.linear(hidden, second.weight.to(z.dtype), second.bias.to(z.dtype))

    def temperature(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\tau(a, b)` for unit embeddings, pairing the last-but-one axes."""
        score = (self._phi(a) * self._phi(b)).sum(dim=-1)
        return self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(-score)

    def _direction(self, a: torch.Tensor, p: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        """Per-anchor loss; ``others`` (n, 2n-2, d) holds each anchor's negatives."""
        d = a.shape[1]
        tau_pos = self.temperature(a, p)
        sim = (a.unsqueeze(1) * others).sum(dim=-1)
        k = min(int(self.topk), others.shape[1])
        values, index = sim.topk(k, dim=1)
        chosen = others.gather(1, index.unsqueeze(-1).expand(-1, -1, d))
        tau_neg = self.temperature(a.unsqueeze(1).expand_as(chosen), chosen)
        omega = 0.5 * d * torch.log(tau_pos) + 1 / tau_pos
        reg_neg = (torch.log(tau_neg) + 1 / tau_neg).sum(dim=1)
        pos = (a * p).sum(dim=-1)
        return -pos / tau_pos + (values / tau_neg).mean(dim=1) + self.beta * (omega - reg_neg)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor | None, **extras: Any
    ) -> torch.Tensor:
        x, _, n = split_views(input, None)
        if n < 2 or x.shape[1] != int(self.embedding_dim):
            raise ValueError(
                f"AMCLInfoNCE takes a (2N, {self.embedding_dim}) batch of two views with N >= 2. "
                f"Got shape {tuple(x.shape)}."
            )
        heads = F.normalize(x.reshape(2 * n, int(self.num_heads), -1), dim=-1)
        off = ~torch.eye(n, dtype=torch.bool, device=x.device)
        total = x.new_zeros(n)
        for h in range(int(self.num_heads)):
            z1, z2 = heads[:n, h], heads[n:, h]
            same = z1.unsqueeze(0).expand(n, -1, -1)[off].reshape(n, n - 1, -1)
            other = z2.unsqueeze(0).expand(n, -1, -1)[off].reshape(n, n - 1, -1)
            forward = self._direction(z1, z2, torch.cat([same, other], dim=1))
            backward = self._direction(z2, z1, torch.cat([other, same], dim=1))
            total = total + (forward + backward) / 2
        return total

    def extra_repr(self) -> str:
        return (
            f"embedding_dim={self.embedding_dim}, num_heads={self.num_heads}, beta={self.beta}, "
            f"tau_min={self.tau_min}, tau_max={self.tau_max}, topk={self.topk}, "
            f"reduction={self.reduction!r}"
        )
