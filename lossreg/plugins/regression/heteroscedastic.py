"""SNR-weighted heteroscedastic regression: a β-NLL variance head and an SNR-weighted mean head."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ._private import beta_nll_weight, check_batch_reduction, row_weights, split_heads

__all__ = ["SNRWeightedHeteroscedastic"]


class SNRWeightedHeteroscedastic(nn.Module):
    r"""Mean head trained by an SNR-weighted MSE, variance head by a β-NLL on the detached mean.

    With :math:`s = \max(\text{raw}, \log\epsilon)` the predicted log-variance and, over the
    batch's elements,

    .. math::

        r_i = \big(|y_i|\, e^{-s_i}\big)^\gamma, \quad
        w_i = \mathrm{sg}\Big(\mathrm{sigmoid}\Big(\frac{r_i - \min r}{\max r - \min r}\Big)\Big),

        L = \mathrm{mean}_i\, w_i (y_i - \mu_i)^2
          + \mathrm{mean}_i\, \mathrm{sg}\big(e^{\beta s_i}\big)
            \Big[\tfrac12 (y_i - \mathrm{sg}(\mu_i))^2 e^{-s_i} + \tfrac12 s_i\Big]

    (``sg`` is stop-gradient). The mean receives gradient only from the weighted MSE and the
    log-variance only from the β-NLL, so one criterion trains both heads jointly. Output
    (N, 2K) = means then log-variances (as ``gaussian_nll``); float targets (N,) or (N, K),
    the N×K elements pooled. Batch-level (the min-max normalisation uses the whole batch):
    ``"mean"`` or ``"sum"``; sample weights count as row frequencies.

    Parameters
    ----------
    gamma : float in (0, inf), default=0.5
        Exponent of the relative SNR map.
    beta : float in [0, 1], default=0.5
        β-NLL exponent of the variance loss.
    laplace : bool, default=False
        Use the reference's Laplace variance loss :math:`\tfrac12|y - \mu| e^{-s} + \tfrac12 s`.
    warm_start_epochs : int in [0, inf), default=0
        The reference's ``--warm_start``: for the first W epochs only the mean term (with
        :math:`w = 1`), for the next W only the variance term, then both; ``set_epoch`` drives
        it, and 0 trains both from the start.
    eps : float in (0, inf), default=1e-06
        Variance floor.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    The catalogue's reconstruction was marked UNVERIFIED; checked against the authors' code
    (Voldemort108X/hetero_uncertainty, ``src/voxelmorph/voxelmorph/torch/losses.py``:
    ``WeightedMSE``, ``VarianceNLL``, ``compute_SNR_from_variance``; ``train.py`` defaults
    ``--gamma 0.5 --beta 0.5``). Differences from the catalogue: the weight is a
    **sigmoid of the min-max-normalised** :math:`(y/\sigma^2)^\gamma` (not normalised to mean
    1), and the variance head uses β-NLL. Deviations from the code: the reference alternates
    two optimisers on two networks (here one sum, which gives each head the same gradient
    directions); it uses :math:`y` (image intensities, non-negative) where we use
    :math:`|y|` so that signed tabular targets do not give NaN; a batch with constant SNR
    gets :math:`w = \mathrm{sigmoid}(0)` instead of 0/0; and we add the variance floor.

    References
    ----------
    X. Zhang, D. H. Pak et al. "Heteroscedastic Uncertainty Estimation Framework for
    Unsupervised Registration." MICCAI 2024, arXiv:2312.00836.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, -1.0]])
    >>> loss = SNRWeightedHeteroscedastic()
    >>> round(loss(out, torch.tensor([0.5, 0.0, 2.0, 1.0])).item(), 4)
    1.4771
    """

    def __init__(
        self,
        *,
        gamma: float = 0.5,
        beta: float = 0.5,
        laplace: bool = False,
        warm_start_epochs: int = 0,
        eps: float = 1e-6,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.reduction = check_batch_reduction(reduction, "SNRWeightedHeteroscedastic")
        self.gamma = gamma
        self.beta = beta
        self.laplace = laplace
        self.warm_start_epochs = warm_start_epochs
        self.eps = eps
        # Which terms are on: (mean term, variance term, SNR weights); set_epoch changes it.
        self.register_buffer("phase_", torch.tensor([True, True, True]))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Apply the warm start: mean term only, then variance term only, then both."""
        w = self.warm_start_epochs
        if w and epoch < w:
            phase = [True, False, False]
        elif w and epoch < 2 * w:
            phase = [False, True, True]
        else:
            phase = [True, True, True]
        self.phase_.copy_(torch.tensor(phase))

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the batch loss (times the total weight for ``"sum"``)."""
        (mean, raw), target = split_heads(input, target, 2, "snr_weighted_heteroscedastic")
        n, k = mean.shape
        weight = row_weights(sample_weight, n, mean)
        if not bool((weight > 0).any()):
            raise ValueError("Loss 'snr_weighted_heteroscedastic' needs a row of positive weight.")
        element_weight = weight.repeat_interleave(k)
        mean, target, raw = mean.reshape(-1), target.reshape(-1), raw.reshape(-1)
        log_var = raw.clamp_min(math.log(self.eps))  # variance floor (zero gradient below)
        use_mean, use_variance, use_snr = (bool(v) for v in self.phase_)
        total = element_weight.sum()
        value = input.new_zeros(())
        if use_mean:
            snr_weight = self._snr_weight(target, log_var, element_weight) if use_snr else 1.0
            squared = (target - mean).square()
            value = value + (element_weight * snr_weight * squared).sum() / total
        if use_variance:
            residual = target - mean.detach()
            fit = residual.abs() if self.laplace else residual.square()
            nll = 0.5 * fit * torch.exp(-log_var) + 0.5 * log_var
            if self.beta:
                nll = nll * beta_nll_weight(log_var, self.beta)
            value = value + (element_weight * nll).sum() / total
        return value * weight.sum() if self.reduction == "sum" else value

    def _snr_weight(
        self, target: torch.Tensor, log_var: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():
            ratio = (target.abs() * torch.exp(-log_var)).pow(self.gamma)
            kept = ratio[weight > 0]
            low, spread = kept.min(), kept.max() - kept.min()
            # A batch with one SNR value has no spread: every row gets sigmoid(0).
            scaled = (ratio - low) / spread.clamp_min(torch.finfo(ratio.dtype).tiny)
            return torch.sigmoid(scaled)

    def predict_std(self, output: torch.Tensor) -> torch.Tensor:
        """Return the predicted standard deviations :math:`e^{s/2}`, shape (N, K)."""
        raw = output[:, output.shape[1] // 2 :]
        return torch.exp(0.5 * raw.clamp_min(math.log(self.eps)))

    def extra_repr(self) -> str:
        return (
            f"gamma={self.gamma}, beta={self.beta}, laplace={self.laplace}, "
            f"warm_start_epochs={self.warm_start_epochs}, eps={self.eps!r}, "
            f"reduction={self.reduction!r}"
        )
