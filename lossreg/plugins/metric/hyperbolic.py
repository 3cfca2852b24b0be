"""HypCD's hybrid contrastive loss: Poincare-distance and angle contrastive terms, blended."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import as_class_target

from ._private import BatchLoss, check_embeddings, neg_inf, reduce_terms

__all__ = ["HyperbolicSupConHybrid", "poincare_distance_matrix", "to_poincare"]

#: hyptorch's ``project`` keeps points this far (relative) inside the ball's boundary.
_BALL_EPS = 1e-3


def to_poincare(x: torch.Tensor, c: float, clip_r: float) -> torch.Tensor:
    r"""Map Euclidean rows into the Poincare ball of curvature :math:`-c`.

    Feature clipping :math:`x \leftarrow \min(1, r/\lVert x\rVert)\,x`, then the exponential map
    at the origin :math:`\exp_0(x) = \tanh(\sqrt c\lVert x\rVert)\,x/(\sqrt c\lVert x\rVert)`,
    then a projection inside the ball (HypCD's ``ToPoincare`` head, from hyptorch).
    """
    sqrt_c = c**0.5
    # The norm is clamped away from 0 so that a zero row maps to 0 with a finite gradient.
    norm = x.square().sum(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny).sqrt()
    x = x * torch.clamp(clip_r / norm, max=1.0)
    norm = norm.clamp(max=clip_r)
    y = torch.tanh(sqrt_c * norm) * x / (sqrt_c * norm)
    max_norm = (1 - _BALL_EPS) / sqrt_c
    y_norm = y.square().sum(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny).sqrt()
    return y * torch.clamp(max_norm / y_norm, max=1.0)


def poincare_distance_matrix(x: torch.Tensor, c: float) -> torch.Tensor:
    r"""Return :math:`d_c(x_i, x_j) = \frac{2}{\sqrt c}\operatorname{artanh}
    (\sqrt c\,\lVert(-x_i)\oplus_c x_j\rVert)` for all pairs of rows of ``x`` (in the ball)."""
    sqrt_c = c**0.5
    sq = x.square().sum(dim=1)
    dot = x @ x.T  # <x_i, x_j>; the Mobius sum uses <-x_i, x_j> = -dot
    left = (1 - 2 * c * dot + c * sq.unsqueeze(0)).unsqueeze(2) * (-x).unsqueeze(1)
    right = (1 - c * sq).reshape(-1, 1, 1) * x.unsqueeze(0)
    denom = 1 - 2 * c * dot + c**2 * sq.unsqueeze(1) * sq.unsqueeze(0)
    # The diagonal is exactly 0: the clamp gives sqrt a finite (zero) gradient there.
    norm = (left + right).square().sum(dim=2).clamp_min(torch.finfo(x.dtype).tiny).sqrt()
    # Points stay inside the ball, so the argument is < 1; the clamp only guards rounding.
    arg = (sqrt_c * norm / denom).clamp(max=1 - 1e-6)
    return 2 / sqrt_c * torch.atanh(arg)


class HyperbolicSupConHybrid(BatchLoss):
    r"""HypCD's hybrid loss: SupCon + self-supervised InfoNCE in the Poincare ball (batch-level).

    The (2N, D) output (rows i and i+N are two views of row i) is mapped into the Poincare
    ball of curvature :math:`-c` (feature clipping at radius :math:`r`, then :math:`\exp_0`).
    Two similarities are used:

    .. math::

        s^{d}_{ij} = -d_c(z_i, z_j), \qquad s^{a}_{ij} = \cos(z_i, z_j)

    and, for each, the GCD objective: an InfoNCE term over all 2N rows (positive: the other
    view, temperature :math:`\tau_u`) and a SupCon term over the labelled rows (positives:
    same label, temperature :math:`\tau_s`),

    .. math::

        L_s = (1-w)\,L^{u}_s + w\,L^{sup}_s \quad (s\in\{d, a\}), \qquad
        L = (1-\lambda_t)\,L_a + \lambda_t\,L_d,

    with :math:`\lambda_t = \lambda_{\max}\,\mathrm{clip}\big((t - t_0 + 1)/(t_1 - t_0),
    0, 1\big)` growing with the epoch :math:`t` (``set_epoch``; epoch 0 before the first call).

    Input: embeddings (2N, D) of two views; target: labels (N,), ``-1`` for unlabelled rows
    (they enter only the InfoNCE terms). ``reduction`` "mean" averages each term over its
    anchors (weighted by the anchor row's ``sample_weight``); "sum" sums them.

    Parameters
    ----------
    c : float in (0, inf), default=0.1
        Curvature magnitude of the ball.
    clip_r : float in (0, inf), default=2.3
        Feature-clipping radius before :math:`\exp_0`.
    temperature : float in (0, inf), default=1.0
        :math:`\tau_u` of the InfoNCE terms.
    sup_temperature : float in (0, inf), default=0.07
        :math:`\tau_s` of the SupCon terms.
    sup_con_weight : float in [0, 1], default=0.5
        :math:`w`.
    hyper_start_epoch, hyper_end_epoch : int, default=0, 200
        :math:`t_0, t_1` of the linear ramp of :math:`\lambda_t`.
    hyper_max_weight : float in [0, 1], default=1.0
        :math:`\lambda_{\max}`; 0 gives the Euclidean (angle-only) GCD loss.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Checked against the official code (Visual-AI/HypCD ``train/train_HypGCD.py``: its
    ``SupConLoss(hyper=...)``, ``info_nce_logits`` and the ``lambda_distance`` schedule;
    hyptorch's ``ToPoincare`` and ``dist_matrix``); defaults are that script's argparse
    defaults. The catalogue's reconstruction - one similarity
    :math:`-\alpha d_H + (1-\alpha)\cos` inside the contrastive losses - differs: the code
    computes the two contrastive losses separately and blends the *losses* with an
    epoch-dependent weight; the code is followed. As there, SupCon has no
    ``temperature/base_temperature`` factor and its contrast set holds only the labelled rows;
    the InfoNCE terms use every row. The cosine of the ball points equals the cosine of the
    raw outputs (:math:`\exp_0` is radial). hyptorch's small stabilisers (``+1e-5`` in the
    clipping norm and the Mobius denominator, a 15 clamp in tanh) are left out; the ball
    projection is kept. ``sample_weight`` weights anchors only (not the negatives in the
    denominators). ``LossEmbedder`` encodes every label as a class, so through it all rows
    are labelled (call the loss directly to mark rows ``-1``), and ``fit(X)`` without ``y``
    gives every row label 0, which makes all rows SupCon positives: pass ``y``.

    References
    ----------
    Y. Liu, Z. He, K. Han. "Hyperbolic Category Discovery." CVPR 2025, arXiv:2504.06120.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    >>> round(HyperbolicSupConHybrid()(x, torch.tensor([0, 1])).item(), 4)
    0.3007
    >>> round(HyperbolicSupConHybrid()(x, torch.tensor([0, 0])).item(), 4)
    4.5437
    >>> round(HyperbolicSupConHybrid()(x, torch.tensor([-1, -1])).item(), 4)  # no SupCon
    0.3007
    """

    def __init__(
        self,
        *,
        c: float = 0.1,
        clip_r: float = 2.3,
        temperature: float = 1.0,
        sup_temperature: float = 0.07,
        sup_con_weight: float = 0.5,
        hyper_start_epoch: int = 0,
        hyper_end_epoch: int = 200,
        hyper_max_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if not hyper_end_epoch > hyper_start_epoch:
            raise ValueError(
                "hyper_end_epoch must be larger than hyper_start_epoch. Got "
                f"hyper_start_epoch={hyper_start_epoch!r}, hyper_end_epoch={hyper_end_epoch!r}."
            )
        self.c = c
        self.clip_r = clip_r
        self.temperature = temperature
        self.sup_temperature = sup_temperature
        self.sup_con_weight = sup_con_weight
        self.hyper_start_epoch = hyper_start_epoch
        self.hyper_end_epoch = hyper_end_epoch
        self.hyper_max_weight = hyper_max_weight
        # The current epoch t (lambda_t follows from it): an integer buffer, so it is saved and
        # copied with the module and keeps its exact value under .double() / .half().
        self.register_buffer("epoch_", torch.tensor(0, dtype=torch.long))

    def _ramp(self, epoch: int) -> float:
        start, end = self.hyper_start_epoch, self.hyper_end_epoch
        value = (epoch - (start - 1)) / ((end - 1) - (start - 1))
        return min(max(value, 0.0), 1.0) * self.hyper_max_weight

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Set :math:`\\lambda_t` for epoch ``epoch`` (the ramp is in absolute epochs)."""
        self.epoch_.fill_(int(epoch))

    @property
    def distance_weight(self) -> float:
        """:math:`\\lambda_t`, the current weight of the distance loss."""
        return self._ramp(int(self.epoch_))

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_embeddings(input)
        labels = as_class_target(target)
        n = labels.shape[0]
        if input.shape[0] != 2 * n:
            raise ValueError(
                f"hyperbolic_supcon_hybrid takes a (2N, D) batch of two views (rows i and i+N "
                f"are views of row i) with N labels. Got {input.shape[0]} rows and {n} labels."
            )
        self.check_weight(sample_weight, n)
        z = to_poincare(input, self.c, self.clip_r)
        unit = F.normalize(z, dim=1)
        similarities = {
            "distance": -poincare_distance_matrix(z, self.c),
            "angle": unit @ unit.T,
        }
        labels2 = torch.cat([labels, labels])
        rows = torch.arange(2 * n, device=input.device) % n  # original row of each anchor
        losses = {}
        for key, sim in similarities.items():
            unsup = self._info_nce(sim / self.temperature, n)
            unsup = reduce_terms(unsup, rows, self.reduction, sample_weight)
            sup = self._sup_con(sim / self.sup_temperature, labels2, rows, sample_weight)
            losses[key] = (1 - self.sup_con_weight) * unsup + self.sup_con_weight * sup
        lam = self.distance_weight
        return (1 - lam) * losses["angle"] + lam * losses["distance"]

    @staticmethod
    def _info_nce(logits: torch.Tensor, n: int) -> torch.Tensor:
        """Per-anchor NT-Xent of a (2N, 2N) logit matrix: the other view against all others."""
        m = logits.shape[0]
        eye = torch.eye(m, dtype=torch.bool, device=logits.device)
        partner = (torch.arange(m, device=logits.device) + n) % m
        denom = torch.logsumexp(logits.masked_fill(eye, neg_inf(logits)), dim=1)
        return denom - logits[torch.arange(m, device=logits.device), partner]

    def _sup_con(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        rows: torch.Tensor,
        sample_weight: torch.Tensor | None,
    ) -> torch.Tensor:
        """SupCon over the labelled anchors, contrasted with the labelled rows only."""
        keep = labels >= 0
        if not bool(keep.any()):
            return logits.sum() * 0  # no labelled row: a zero still connected to the graph
        logits = logits[keep][:, keep]
        lab = labels[keep]
        eye = torch.eye(lab.shape[0], dtype=torch.bool, device=logits.device)
        log_prob = logits - torch.logsumexp(
            logits.masked_fill(eye, neg_inf(logits)), dim=1, keepdim=True
        )
        pos = (lab.unsqueeze(0) == lab.unsqueeze(1)) & ~eye
        mean_pos = torch.where(pos, log_prob, log_prob.new_zeros(())).sum(dim=1)
        per_anchor = -mean_pos / pos.sum(dim=1).clamp_min(1)
        return reduce_terms(per_anchor, rows[keep], self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return (
            f"c={self.c}, clip_r={self.clip_r}, temperature={self.temperature}, "
            f"sup_temperature={self.sup_temperature}, sup_con_weight={self.sup_con_weight}, "
            f"hyper_start_epoch={self.hyper_start_epoch}, "
            f"hyper_end_epoch={self.hyper_end_epoch}, hyper_max_weight={self.hyper_max_weight}, "
            f"reduction={self.reduction!r}"
        )
