"""Tabular augmentation for two-view losses: random feature corruption plus Gaussian noise."""

from __future__ import annotations

import torch

__all__ = ["FeatureCorruption"]


class FeatureCorruption:
    """Replace a random fraction of each row's features by the same features of other rows.

    The corrupted value of feature j in row i comes from feature j of a random row of the same
    batch, so it follows that feature's marginal distribution (the SCARF scheme for tabular
    contrastive learning); optional Gaussian noise is added on top. Randomness comes from
    torch's global generator, which the estimator seeds (and restores) around training.

    Parameters
    ----------
    rate : float in [0, 1), default=0.3
        Probability that a feature of a row is replaced.
    noise : float >= 0, default=0.0
        Standard deviation of additive Gaussian noise (in the units of the scaled inputs).

    References
    ----------
    D. Bahri, H. Jiang, Y. Tay, D. Metzler. "SCARF: Self-Supervised Contrastive Learning
    using Random Feature Corruption." ICLR 2022, arXiv:2106.15147.
    """

    def __init__(self, rate: float = 0.3, noise: float = 0.0) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"augmentation rate must be in [0, 1). Got {rate!r} instead.")
        if noise < 0:
            raise ValueError(f"augmentation noise must be >= 0. Got {noise!r} instead.")
        self.rate = rate
        self.noise = noise

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        donors = torch.randint(n, x.shape, device=x.device)
        replaced = x.gather(0, donors)
        mask = torch.rand(x.shape, device=x.device) < self.rate
        out = torch.where(mask, replaced, x)
        if self.noise:
            out = out + self.noise * torch.randn_like(out)
        return out

    def __repr__(self) -> str:
        return f"FeatureCorruption(rate={self.rate}, noise={self.noise})"
