"""Metrix: contrastive loss plus a loss on mixed embeddings with interpolated labels."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import as_class_target

from ._private import BatchLoss, check_embeddings, label_masks

__all__ = ["MetrixContrastive"]


def _avg_non_zero(terms: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean over the positive terms (PML's AvgNonZeroReducer); 0 when there is none."""
    active = (terms > 0).to(terms.dtype) * weight
    return (terms * active).sum() / active.sum().clamp_min(torch.finfo(terms.dtype).tiny)


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of normalised rows, paired row by row."""
    squared = (F.normalize(a, dim=-1) - F.normalize(b, dim=-1)).square().sum(-1)
    # sqrt has an infinite derivative at 0 (identical rows): the clamp keeps it finite.
    return squared.clamp_min(torch.finfo(a.dtype).tiny).sqrt()


def _mixed_distance(
    x: torch.Tensor, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, lam: float
) -> torch.Tensor:
    """:func:`_distance` of ``x[a]`` and the mix ``lam x[p] + (1 - lam) x[n]``, per triplet.

    Built from the batch's Gram matrices instead of gathering a (T, D) mix per triplet: with
    :math:`m = \\lambda x_p + (1-\\lambda) x_n`, :math:`\\|m\\|^2 = \\lambda^2 G_{pp} +
    (1-\\lambda)^2 G_{nn} + 2\\lambda(1-\\lambda) G_{pn}` and :math:`\\hat x_a \\cdot m =
    \\lambda S_{ap} + (1-\\lambda) S_{an}`, so :math:`d^2 = \\|\\hat x_a - \\hat m\\|^2 = 2 - 2\\,
    \\hat x_a \\cdot m / \\|m\\|`. The triplets of a batch are O(N^3); this keeps their cost to a
    few scalar operations each (the gathered form took seconds per call at 200 rows).
    """
    gram = x @ x.T
    cross = F.normalize(x, dim=-1) @ x.T  # unit anchors against raw rows
    norm_sq = lam**2 * gram[p, p] + (1 - lam) ** 2 * gram[n, n] + 2 * lam * (1 - lam) * gram[p, n]
    tiny = torch.finfo(x.dtype).tiny
    # F.normalize divides by max(norm, eps): the same floor, taken before the square root so
    # that a zero mix has a finite gradient as well as a finite value
    norm = norm_sq.clamp_min(1e-24).sqrt()
    cosine = (lam * cross[a, p] + (1 - lam) * cross[a, n]) / norm
    # sqrt has an infinite derivative at 0 (identical rows): the clamp keeps it finite.
    return (2 - 2 * cosine).clamp_min(tiny).sqrt()


class MetrixContrastive(BatchLoss):
    r"""Metrix (embedding mixup) for the contrastive loss (batch-level, stochastic).

    Clean term, on L2-normalised embeddings with Euclidean distance :math:`d`:

    .. math::

        L_{clean} = \operatorname{avg}_{>0}\{[d_{ap}]_+\} + \operatorname{avg}_{>0}\{[m-d_{an}]_+\}

    over all positive pairs (same label) and negative pairs, each averaged over its non-zero
    terms (:math:`m` = ``neg_margin``). Each call draws
    :math:`\lambda\sim\mathrm{Beta}(\beta,\beta)` and one of two mixing modes with probability 1/2:

    - positive-negative mixing, for every anchor :math:`a` with a positive :math:`p` and a
      negative :math:`n`: :math:`e_m=\lambda e_p+(1-\lambda)e_n`, mixed label :math:`\lambda`;
    - anchor-negative mixing, for every anchor :math:`a` **without** a positive in the batch and
      each of its negatives: :math:`e_m=\lambda e_a+(1-\lambda)e_n`;

    with :math:`d_m = d(a, e_m)` (the mix is normalised too) and

    .. math::

        L_{mix} = \operatorname{avg}_{>0}\{\lambda[d_m]_+\}
                + \operatorname{avg}_{>0}\{(1-\lambda)[m-d_m]_+\}, \qquad
        L = L_{clean} + w\,L_{mix}

    with :math:`w` = ``pos_neg_weight`` (0.4) or ``anchor_neg_weight`` (0.3).

    Input: embeddings (N, D); target: int labels (N,). No per-row form: ``reduction`` is
    "mean" or "sum" (the same value: the terms are averages). ``sample_weight`` weights each
    pair or triplet by its anchor's weight inside the averages. Randomness comes from torch's
    global generator.

    Parameters
    ----------
    neg_margin : float in (0, inf), default=0.5
        Margin :math:`m` of the negative pairs (the positive margin is 0).
    mix_alpha : float in (0, inf), default=2.0
        :math:`\beta` of the Beta distribution of :math:`\lambda`.
    pos_neg_weight : float in [0, inf), default=0.4
        Weight of the positive-negative mixing loss.
    anchor_neg_weight : float in [0, inf), default=0.3
        Weight of the anchor-negative mixing loss.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Checked against the authors' code (billpsomas/Metrix_ICLR22 = billpsomas/metrix,
    ``train.py`` ``embed_metrix_contrastive``, ``mixup/utils.py``, ``mixup/losses.py``,
    ``main.py``): PML ``ContrastiveLoss(neg_margin=0.5)`` with ``LpDistance`` (normalised
    embeddings, also applied to the mixed embedding) and ``AvgNonZeroReducer`` for the positive
    and negative parts separately; ``random.randint(0, 1)`` picks the mode; Beta(2, 2); weights
    0.4 and 0.3 (embedding mixup). Departures: the code mixes each anchor's negatives with its
    *first* positive in batch order (repeated once per positive), which depends on row order;
    here every (anchor, positive, negative) triplet is used, the order-free form the catalogue
    describes. The catalogue entry omits that anchor-negative mixing only concerns anchors
    without an in-batch positive; the code's rule is followed, so with a class-balanced sampler
    that mode adds nothing. Input and feature mixup need a second forward pass and are not
    offered. :meth:`terms` computes the loss for a given mode and :math:`\lambda`.

    References
    ----------
    S. Venkataramanan et al. "It Takes Two to Tango: Mixup for Deep Metric Learning."
    ICLR 2022, arXiv:2106.04990.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> loss = MetrixContrastive()
    >>> round(loss.terms(x, y, mode="pos_neg", lam=0.5).item(), 4)
    0.8205
    """

    MODES = ("pos_neg", "anchor_neg")

    def __init__(
        self,
        *,
        neg_margin: float = 0.5,
        mix_alpha: float = 2.0,
        pos_neg_weight: float = 0.4,
        anchor_neg_weight: float = 0.3,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.neg_margin = neg_margin
        self.mix_alpha = mix_alpha
        self.pos_neg_weight = pos_neg_weight
        self.anchor_neg_weight = anchor_neg_weight

    def draw(self, like: torch.Tensor) -> tuple[str, float]:
        """Draw the mixing mode and :math:`\\lambda` from torch's global generator."""
        mode = self.MODES[int(torch.randint(2, ()).item())]
        concentration = torch.tensor(float(self.mix_alpha), dtype=torch.float64)
        lam = float(torch.distributions.Beta(concentration, concentration).sample())
        return mode, lam

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        mode, lam = self.draw(input)
        return self.terms(input, target, mode=mode, lam=lam, sample_weight=sample_weight)

    def terms(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        mode: str,
        lam: float,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss for a given mixing ``mode`` ("pos_neg" or "anchor_neg") and ``lam``."""
        x = check_embeddings(input)
        labels = as_class_target(target)
        if labels.shape[0] != x.shape[0]:
            raise ValueError(f"Got {x.shape[0]} embeddings and {labels.shape[0]} labels.")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}.")
        self.check_weight(sample_weight, x.shape[0])
        w = (
            torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
            if sample_weight is None
            else torch.as_tensor(sample_weight, dtype=x.dtype, device=x.device).reshape(-1)
        )
        pos, neg = label_masks(labels)
        a_pos, p_pos = pos.nonzero(as_tuple=True)
        a_neg, n_neg = neg.nonzero(as_tuple=True)
        clean = _avg_non_zero(_distance(x[a_pos], x[p_pos]), w[a_pos]) + _avg_non_zero(
            (self.neg_margin - _distance(x[a_neg], x[n_neg])).relu(), w[a_neg]
        )
        if mode == "pos_neg":
            # Every (a, p, n): p a positive of a, n a negative of a.
            a, p, n = (pos.unsqueeze(2) & neg.unsqueeze(1)).nonzero(as_tuple=True)
            d_mix = _mixed_distance(x, a, p, n, lam)
            weight = self.pos_neg_weight
        else:
            lonely = neg & ~pos.any(dim=1, keepdim=True)
            a, n = lonely.nonzero(as_tuple=True)
            d_mix = _distance(x[a], lam * x[a] + (1 - lam) * x[n])
            weight = self.anchor_neg_weight
        mix = _avg_non_zero(lam * d_mix, w[a]) + _avg_non_zero(
            (1 - lam) * (self.neg_margin - d_mix).relu(), w[a]
        )
        return clean + weight * mix

    def extra_repr(self) -> str:
        return (
            f"neg_margin={self.neg_margin}, mix_alpha={self.mix_alpha}, "
            f"pos_neg_weight={self.pos_neg_weight}, anchor_neg_weight={self.anchor_neg_weight}, "
            f"reduction={self.reduction!r}"
        )
