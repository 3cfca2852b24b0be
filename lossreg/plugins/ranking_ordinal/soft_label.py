"""DeQA-Score losses over K score levels: Gaussian soft labels and the Thurstone fidelity loss."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lossreg import Link, LossModule, as_float_target

from ._private import check_batch_reduction, row_weights

__all__ = ["EXPECTED_SCORE_LINK", "GaussianSoftLabel", "ThurstoneFidelity"]

# DeQA-Score's epsilon inside the square roots and variances: "eps=1e-8 is important. eps=0
# is unable to step" (the gradient of sqrt at 0 is infinite).
_EPS = 1e-8


class _LevelScores:
    """Mapping between K score levels 1..K and the target scale [target_min, target_max]."""

    n_levels: int
    target_min: float
    target_max: float

    def _scale(self) -> float:
        return (self.n_levels - 1) / (float(self.target_max) - float(self.target_min))

    def _to_levels(self, y: torch.Tensor) -> torch.Tensor:
        return ((y - self.target_min) * self._scale() + 1).clamp(1, self.n_levels)

    def expected_level(self, output: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\hat\mu = \sum_k p_k k` on the level scale 1..K, shape (N,)."""
        levels = torch.arange(1, output.shape[1] + 1, dtype=output.dtype, device=output.device)
        return output.softmax(dim=1) @ levels

    def level_var(self, output: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\hat\sigma^2=\sum_kp_k(k-\hat\mu)^2` on the level scale, (N,)."""
        levels = torch.arange(1, output.shape[1] + 1, dtype=output.dtype, device=output.device)
        mean = self.expected_level(output)
        return (output.softmax(dim=1) * (levels[None, :] - mean[:, None]).square()).sum(dim=1)

    def level_std(self, output: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\hat\sigma` on the level scale, shape (N,)."""
        return self.level_var(output).sqrt()

    def predict_score(self, output: torch.Tensor) -> torch.Tensor:
        """Return the expected level mapped back to the target scale, shape (N,)."""
        return (self.expected_level(output) - 1) / self._scale() + self.target_min

    def predict_std(self, output: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\hat\sigma` of the level distribution in target units, shape (N,)."""
        return self.level_std(output) / self._scale()


class GaussianSoftLabel(_LevelScores, LossModule):
    r"""KL divergence from a discretised-Gaussian soft label over K levels to softmax(logits).

    The target :math:`y_i` is rescaled to :math:`\mu_i\in[1,K]` with the training range
    (``target_min``, ``target_max``), its std to :math:`\sigma_i` likewise. Then

    .. math::

        q_k = \mathcal N(k;\mu_i,\sigma_i^2)\ (\text{"pdf"})\quad\text{or}\quad
        \Phi\big(\tfrac{k+1/2-\mu_i}{\sigma_i}\big)-\Phi\big(\tfrac{k-1/2-\mu_i}{\sigma_i}\big)
        \ (\text{"cdf"}),\qquad k = 1..K,

    fixed affinely, :math:`q'_k=\max(aq_k+b,0)` with :math:`a,b` solving
    :math:`\sum_k(aq_k+b)=1` and :math:`\sum_k k(aq_k+b)=\mu_i`. If :math:`\sigma_i` is below
    ``std_threshold`` or :math:`|\sum_k kq'_k-\mu_i|` exceeds ``fit_threshold``, :math:`q'`
    is the two-level label that puts :math:`\mu_i` between its neighbouring levels. Finally
    :math:`\ell_i=\mathrm{KL}(q'_i\,\Vert\,\mathrm{softmax}(z_i))`.

    Input (N, K) level logits; target: float values (N,). Predict
    :math:`\hat\mu=\sum_k p_k k` mapped back to the target scale with the ``expected_score``
    link; :meth:`predict_std` gives :math:`\hat\sigma=\sqrt{\sum_kp_k(k-\hat\mu)^2}` there.

    Parameters
    ----------
    n_levels : int in [2, inf), default=5
        Number of levels K (5 in the paper).
    mode : {"pdf", "cdf"}, default="pdf"
        Density at the level, or mass of the level's unit interval ("cdf" suits small stds).
    sigma : float in (0, inf), default=1.0
        Target std in level units, used when no per-row ``target_std`` is passed (an
        assumption: with 0.5 most labels fall back to two levels near the centre).
    std_threshold : float in [0, inf), default=0.2
        Below this std (level units) the two-level label is used.
    fit_threshold : float in [0, inf), default=0.1
        Largest allowed error of the fixed label's mean before the two-level fallback.
    target_min, target_max : float
        Training target range (data params) mapped to levels 1 and K.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against DeQA-Score (zhiyuanyou/DeQA-Score): ``build_soft_labels/gen_soft_label.py``
    (rescaling ``4 (mos - min) / (max - min) + 1``, std ``4 std / (max - min)``, pdf / cdf
    levels, ``adjust_gaussian_bar``, ``max(p a + b, 0)``, the two-level fallback
    ``get_binary_probs`` with ``thre_std = 0.2`` and ``thre_diff = 0.1`` from its
    ``config.json``) and ``softkl_loss`` (``kl_div(log softmax, target)``). As there, the
    clipped label is **not** renormalised (the catalogue said to renormalise; the code wins);
    the fallback catches poor fits. One deliberate difference: the reference divides by
    ``B - 3 A + 1e-9``, which at :math:`\mu` exactly at the centre level (a 0 / 0 system)
    gives :math:`a = 0` and a uniform label; here that case uses :math:`a = 1/\sum_k q_k`,
    :math:`b = 0` (the normalised Gaussian, which has the right mean; nearby targets get a
    slightly sharper label). The label is built in float64 (it is data, not differentiated)
    and cast to the logits' dtype. The paper has a per-row replicate std (MOS std); pass it
    as ``target_std=`` (target units) to ``forward``. lossreg has no fit extra for it yet, so
    the estimator uses the constant ``sigma`` (an assumption, not from the paper). Targets
    outside the training range are clamped to levels 1..K.

    References
    ----------
    Z. You, X. Cai, J. Gu, T. Xue, C. Dong. "Teaching Large Language Models to Regress
    Accurate Image Quality Scores using Score Distribution." CVPR 2025.

    Examples
    --------
    >>> import torch
    >>> loss = GaussianSoftLabel(target_min=0.0, target_max=4.0, reduction="none")
    >>> logits = torch.tensor([[0.0, 1.0, 2.0, 1.0, 0.0]] * 4)
    >>> [round(v, 4) for v in loss(logits, torch.tensor([2.0, 0.0, 2.5, 4.0])).tolist()]
    [0.0308, 2.6964, 0.1908, 2.6964]
    """

    def __init__(
        self,
        *,
        n_levels: int = 5,
        mode: str = "pdf",
        sigma: float = 1.0,
        std_threshold: float = 0.2,
        fit_threshold: float = 0.1,
        target_min: float,
        target_max: float,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if mode not in ("pdf", "cdf"):
            raise ValueError(f"mode must be 'pdf' or 'cdf'. Got {mode!r} instead.")
        if not target_max > target_min:
            raise ValueError(
                f"target_max ({target_max!r}) must exceed target_min ({target_min!r})."
            )
        self.n_levels = n_levels
        self.mode = mode
        self.sigma = sigma
        self.std_threshold = std_threshold
        self.fit_threshold = fit_threshold
        self.target_min = target_min
        self.target_max = target_max

    def soft_labels(
        self, target: torch.Tensor, like: torch.Tensor, target_std: Any = None
    ) -> torch.Tensor:
        """Return the (N, K) soft labels :math:`q'` of float targets (no gradient)."""
        k_levels = self.n_levels
        out_dtype = like.dtype
        # The label is data, not a function of the parameters: build it in float64, where the
        # affine fix near the centre level is well conditioned, and cast it at the end.
        like = like.detach().to(torch.float64)
        with torch.no_grad():
            y = as_float_target(target.reshape(-1), like[:, 0])
            mu = self._to_levels(y)
            if target_std is None:
                sd = torch.full_like(mu, float(self.sigma))
            else:
                std = torch.as_tensor(target_std, dtype=like.dtype, device=like.device)
                sd = std.reshape(-1) * self._scale()
            levels = torch.arange(1, k_levels + 1, dtype=like.dtype, device=like.device)
            # A zero std would divide by 0; such rows take the two-level label anyway.
            safe_sd = sd.clamp_min(1e-12)[:, None]
            z = (levels[None, :] - mu[:, None]) / safe_sd
            if self.mode == "pdf":
                q = torch.exp(-0.5 * z.square()) / (safe_sd * math.sqrt(2 * math.pi))
            else:
                half = 0.5 / safe_sd
                q = torch.special.ndtr(z + half) - torch.special.ndtr(z - half)
            total, first = q.sum(dim=1), q @ levels
            centre = (k_levels + 1) / 2
            # At mu = centre a symmetric q makes the 2x2 system singular (0 / 0); the plain
            # normalisation a = 1 / sum(q), b = 0 solves it there.
            at_centre = (mu - centre).abs() < 1e-6
            denominator = torch.where(at_centre, torch.ones_like(mu), first - centre * total)
            a = torch.where(at_centre, 1 / total, (mu - centre) / denominator)
            b = (1 - a * total) / k_levels
            fixed = (a[:, None] * q + b[:, None]).clamp_min(0)
            error = (fixed @ levels - mu).abs()
            lower = mu.floor().clamp(1, k_levels - 1)
            upper_mass = mu - lower
            index = (lower - 1).long()
            two = torch.zeros_like(q)
            two.scatter_(1, index[:, None], (1 - upper_mass)[:, None])
            two.scatter_add_(1, index[:, None] + 1, upper_mass[:, None])
            fallback = (sd < self.std_threshold) | (error > self.fit_threshold)
            return torch.where(fallback[:, None], two, fixed).to(out_dtype)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, *, target_std: Any = None, **extras: Any
    ) -> torch.Tensor:
        if input.ndim != 2 or input.shape[1] != self.n_levels:
            raise ValueError(
                f"Loss 'gaussian_soft_label' has {self.n_levels} levels, so the output must "
                f"have shape (N, {self.n_levels}). Got {tuple(input.shape)}."
            )
        q = self.soft_labels(target, input, target_std)
        return (torch.special.xlogy(q, q) - q * input.log_softmax(dim=1)).sum(dim=1)

    def extra_repr(self) -> str:
        return (
            f"n_levels={self.n_levels}, mode={self.mode!r}, sigma={self.sigma}, "
            f"target_min={self.target_min}, target_max={self.target_max}, "
            f"reduction={self.reduction!r}"
        )


class ThurstoneFidelity(_LevelScores, nn.Module):
    r"""Fidelity loss between Thurstone pair probabilities of predicted and target scores.

    For every ordered pair :math:`(A, B)` of rows in the batch, with predicted level mean and
    variance :math:`\hat\mu, \hat\sigma^2` of softmax(logits) over levels 1..K and targets
    :math:`\mu, \sigma` rescaled to the level scale:

    .. math::

        \hat p = \Phi\Big(\frac{\hat\mu_A-\hat\mu_B}
                             {\sqrt{\hat\sigma_A^2+\hat\sigma_B^2+\epsilon}}\Big),\quad
        p = \Phi\Big(\frac{\mu_A-\mu_B}{\sqrt{\sigma_A^2+\sigma_B^2+\epsilon}}\Big),\quad
        \ell_{AB} = 1-\sqrt{p\hat p+\epsilon}-\sqrt{(1-p)(1-\hat p)+\epsilon}

    (``variant="continuous"``; :math:`p` is a constant). ``variant="binary"``:
    :math:`\hat p=\Phi((\hat\mu_A-\hat\mu_B)/\sqrt2)`, :math:`p=\mathbb 1[\mu_A>\mu_B]`,
    :math:`\ell_{AB}=1-\sqrt{\hat p}` if :math:`p=1` else :math:`1-\sqrt{1-\hat p}`.
    The loss is the (weighted) mean over the ordered pairs :math:`A \ne B`; both orders give
    the same continuous loss. Input (N, K) level logits; target: float values (N,).

    Parameters
    ----------
    n_levels : int in [2, inf), default=5
        Number of levels K.
    variant : {"continuous", "binary"}, default="continuous"
        Pair probabilities from means and stds, or binary preferences (the paper's two forms).
    sigma : float in [0, inf), default=1.0
        Target std in level units, used when no per-row ``target_std`` is passed.
    fix_std : bool, default=False
        Use :math:`\hat\sigma = 1` for every row (the reference's ``use_fix_std``).
    detach_std : bool, default=False
        Stop the gradient through :math:`\hat\sigma` (``detach_pred_std``).
    target_min, target_max : float
        Training target range (data params) mapped to levels 1 and K.
    reduction : {"mean", "sum"}, default="mean"
        Batch-level (pairs): ``"none"`` is refused; ``"sum"`` adds the pair losses.

    Notes
    -----
    Checked against ``rating_loss`` and ``binary_rating_loss`` (fidelity branch) of
    zhiyuanyou/DeQA-Score (``src/model/modeling_mplug_owl2.py``): the same
    :math:`\Phi` via ``erf``, :math:`\epsilon=10^{-8}` inside the square roots and the
    variances ("eps=0 is unable to step"), and a detached :math:`p`. There pairs come from a
    pair data set and the binary form divides by the number of pairs; here all ordered pairs
    of the batch are used (group-free), weighted by :math:`w_Aw_B`, so batches need several
    rows with different targets. A per-row replicate std can be passed as ``target_std=``
    (target units); the estimator has no fit extra for it yet and uses ``sigma``. The paper
    uses it next to ``gaussian_soft_label`` (combine them with ``weighted_sum``).

    References
    ----------
    Z. You, X. Cai, J. Gu, T. Xue, C. Dong. "Teaching Large Language Models to Regress
    Accurate Image Quality Scores using Score Distribution." CVPR 2025.

    Examples
    --------
    >>> import torch
    >>> loss = ThurstoneFidelity(target_min=0.0, target_max=4.0)
    >>> logits = torch.tensor([[2.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0, 0.0],
    ...                        [0.0, 0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    >>> round(loss(logits, torch.tensor([0.5, 2.0, 3.5, 2.0])).item(), 4)
    0.0109
    """

    def __init__(
        self,
        *,
        n_levels: int = 5,
        variant: str = "continuous",
        sigma: float = 1.0,
        fix_std: bool = False,
        detach_std: bool = False,
        target_min: float,
        target_max: float,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if variant not in ("continuous", "binary"):
            raise ValueError(f"variant must be 'continuous' or 'binary'. Got {variant!r}.")
        if not target_max > target_min:
            raise ValueError(
                f"target_max ({target_max!r}) must exceed target_min ({target_min!r})."
            )
        self.n_levels = n_levels
        self.variant = variant
        self.sigma = sigma
        self.fix_std = fix_std
        self.detach_std = detach_std
        self.target_min = target_min
        self.target_max = target_max
        self.reduction = check_batch_reduction(reduction, "thurstone_fidelity")

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        target_std: Any = None,
        **extras: Any,
    ) -> torch.Tensor:
        if input.ndim != 2 or input.shape[1] != self.n_levels:
            raise ValueError(
                f"Loss 'thurstone_fidelity' has {self.n_levels} levels, so the output must "
                f"have shape (N, {self.n_levels}). Got {tuple(input.shape)}."
            )
        n = input.shape[0]
        weight = row_weights(sample_weight, n, input)
        mu = self._to_levels(as_float_target(target.reshape(-1), input[:, 0]))
        mean = self.expected_level(input)
        gap = mean[:, None] - mean[None, :]
        if self.variant == "binary" or self.fix_std:
            pred = torch.special.ndtr(gap / math.sqrt(2.0))
        else:
            var = self.level_var(input)
            var = var.detach() if self.detach_std else var
            pred = torch.special.ndtr(gap / torch.sqrt(var[:, None] + var[None, :] + _EPS))
        with torch.no_grad():
            if self.variant == "binary":
                truth = (mu[:, None] > mu[None, :]).to(input.dtype)
            else:
                if target_std is None:
                    sd = torch.full_like(mu, float(self.sigma))
                else:
                    std = torch.as_tensor(target_std, dtype=input.dtype, device=input.device)
                    sd = std.reshape(-1) * self._scale()
                spread = torch.sqrt(sd[:, None].square() + sd[None, :].square() + _EPS)
                truth = torch.special.ndtr((mu[:, None] - mu[None, :]) / spread)
        if self.variant == "binary":
            pair_loss = torch.where(
                truth > 0, 1 - torch.sqrt(pred + _EPS), 1 - torch.sqrt(1 - pred + _EPS)
            )
        else:
            pair_loss = (
                1 - torch.sqrt(pred * truth + _EPS) - torch.sqrt((1 - pred) * (1 - truth) + _EPS)
            )
        off_diagonal = ~torch.eye(n, dtype=torch.bool, device=input.device)
        pair_weight = weight[:, None] * weight[None, :] * off_diagonal.to(input.dtype)
        total = (pair_weight * pair_loss).sum()
        if self.reduction == "sum":
            return total
        return total / pair_weight.sum().clamp_min(torch.finfo(input.dtype).tiny)

    def extra_repr(self) -> str:
        return (
            f"n_levels={self.n_levels}, variant={self.variant!r}, sigma={self.sigma}, "
            f"reduction={self.reduction!r}"
        )


def _expected_score(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None:
        levels = torch.arange(1, output.shape[1] + 1, dtype=output.dtype, device=output.device)
        return output.softmax(dim=1) @ levels
    return criterion.predict_score(output)


#: Predicts the expected level sum_k p_k k, mapped back to the target scale.
EXPECTED_SCORE_LINK = Link(
    "expected_score",
    _expected_score,
    "value",
    "expected level value sum_k p_k v_k on the target scale",
)
