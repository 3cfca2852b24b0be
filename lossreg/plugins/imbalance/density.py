"""Density-normalised cross-entropy for data dominated by a background ("none") class."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import as_class_target

__all__ = ["DensityNormalizedCE"]


class DensityNormalizedCE(nn.Module):
    r"""Cross-entropy normalised by the number of foreground rows in the batch (batch-level).

    .. math::

        L = \gamma \sum_i w_i\,\mathrm{CE}_i,\qquad
        w_i = \begin{cases} \alpha / M_{FG} & y_i \ne b \\
        \beta / M_{FG} & y_i = b \ (\texttt{dnorm}) \\
        \beta / M_{BG} & y_i = b \ (\texttt{dnorm\_fgbg}) \end{cases}

    where :math:`b` is the background class and :math:`M_{FG}`, :math:`M_{BG}` count the
    batch's foreground and background rows. Background rows thus weigh more when the batch
    has many foreground rows and less when it has few, unlike the plain mean. Logits (N, C);
    class indices (N,).

    Parameters
    ----------
    alpha, beta, gamma : float >= 0, default=1.0
        Foreground weight, background weight, overall scale (1 each: "hyperparameter-free").
    background_class : int >= 0, default=0
        Index of the background class.
    mode : {"dnorm", "dnorm_fgbg"}, default="dnorm"
        Normalise background rows by :math:`M_{FG}` or by :math:`M_{BG}`.
    reduction : {"mean", "sum"}, default="mean"
        ``mean`` returns :math:`L` (already normalised); ``sum`` returns :math:`N L`. There is
        no per-row form: ``none`` raises.

    Notes
    -----
    Checked against bknyaz/sgg ``lib/losses.py`` (``edge_losses``): weights exactly as above;
    a batch without foreground rows keeps weight 1 for its background rows in ``dnorm``
    (the reference's guard), and a class without rows keeps weight 1 in ``dnorm_fgbg``.
    Sample weights :math:`s_i` multiply each row's term and the counts become
    :math:`M_{FG}=\sum_{y_i\ne b} s_i` (and likewise :math:`M_{BG}`); with unit weights this is
    the reference. The optional per-group normalisation of the paper is not implemented.

    References
    ----------
    B. Knyazev, H. de Vries, C. Cangea, G. W. Taylor, A. Courville, E. Belilovsky. "Graph
    Density-Aware Losses for Novel Compositions in Scene Graph Generation." BMVC 2020,
    arXiv:2005.08230.

    Examples
    --------
    >>> import torch
    >>> loss = DensityNormalizedCE()
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> round(loss(logits, torch.tensor([0, 1, 0, 0])).item(), 4)
    1.6402
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 1.0,
        background_class: int = 0,
        mode: str = "dnorm",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"density_normalized_ce is batch-level: reduction must be 'mean' or 'sum'. "
                f"Got {reduction!r}; it has no per-row form."
            )
        if mode not in ("dnorm", "dnorm_fgbg"):
            raise ValueError(f"mode must be 'dnorm' or 'dnorm_fgbg'. Got {mode!r}.")
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.background_class = background_class
        self.mode = mode
        self.reduction = reduction

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        labels = as_class_target(target)
        ce = -input.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
        if sample_weight is None:
            s = torch.ones_like(ce)
        else:
            s = torch.as_tensor(sample_weight, dtype=ce.dtype, device=ce.device).reshape(-1)
        background = labels == self.background_class
        m_fg = (s * ~background).sum()
        m_bg = (s * background).sum()
        ones = torch.ones_like(ce)
        # The reference leaves weight 1 where a normaliser is zero (no rows of that kind).
        fg_weight = torch.where(m_fg > 0, self.alpha / m_fg.clamp_min(1e-12), ones)
        if self.mode == "dnorm":
            bg_weight = torch.where(m_fg > 0, self.beta / m_fg.clamp_min(1e-12), ones)
        else:
            bg_weight = torch.where(m_bg > 0, self.beta / m_bg.clamp_min(1e-12), ones)
        weight = torch.where(background, bg_weight, fg_weight)
        loss = self.gamma * (s * weight * ce).sum()
        return loss if self.reduction == "mean" else loss * ce.shape[0]

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, "
            f"background_class={self.background_class}, mode={self.mode!r}"
        )
