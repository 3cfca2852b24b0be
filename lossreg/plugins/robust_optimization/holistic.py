"""Holistic robust loss (epsilon = 0): a KL ball around a poisoned empirical distribution."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ._private import BatchWrapper, batch_reduce, row_weights

__all__ = ["HolisticRobust", "holistic_weights"]

#: The reference replaces alpha = 0 by this (a tiny poisoning budget keeps the problem solvable).
_ALPHA_FLOOR = 1e-6
#: The reference replaces r = 0 (with alpha > 0) by this, "for numerical stability".
_R_FLOOR = 1e-3


def holistic_weights(
    losses: torch.Tensor, alpha: float, r: float, empirical: torch.Tensor | None = None
) -> torch.Tensor:
    r"""The optimal :math:`p^*` (length N + 1, last entry on the worst loss) for one batch.

    Solves :math:`\max_{p,q,s}\sum_{i\le N}p_i\ell_i+p_{N+1}\max\ell` subject to
    :math:`p,q\in\Delta^{N+1}`, :math:`s\ge0`, :math:`q_i+s_i=\hat P_i`, :math:`\sum s\le\alpha`,
    :math:`\mathrm{KL}(q\Vert p)\le r` in closed form plus a 1-D root search (see
    :class:`HolisticRobust`). Computed in float64 on the CPU; returns ``losses``'s dtype.
    """
    values = losses.detach().cpu().double()
    n = values.shape[0]
    base = (
        torch.full((n,), 1.0 / n, dtype=torch.float64)
        if empirical is None
        else (empirical.detach().cpu().double() / empirical.detach().cpu().double().sum())
    )
    worst = float(values.max())
    # Poisoning: the adversary removes alpha mass from the lowest losses (each row at most its
    # own mass) and puts it on the worst point; this is optimal for every KL multiplier.
    q = base.clone()
    budget = min(alpha, 1.0)
    for i in torch.argsort(values, stable=True).tolist():
        if budget <= 0:
            break
        take = min(float(q[i]), budget)
        q[i] -= take
        budget -= take
    q_worst = 1.0 - float(q.sum())
    ext = torch.cat([values, torch.tensor([worst], dtype=torch.float64)])
    qx = torch.cat([q, torch.tensor([q_worst], dtype=torch.float64)])
    support = qx > 0
    top = float(ext[support].max())
    # Dual: min over eta > top of eta - exp(sum_j q_j log(eta - l_j) - r); its derivative
    # 1 - sum_j p_j(eta) increases in eta, so bisect on u = log(eta - top).

    def mass(u: float) -> tuple[float, torch.Tensor]:
        gap = (top - ext[support]) + math.exp(u)
        lam = math.exp(float((qx[support] * gap.log()).sum()) - r)
        p = lam * qx[support] / gap
        return float(p.sum()), p

    lo, hi = -60.0, math.log(max(abs(top), 1.0)) + 60.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        total, _ = mass(mid)
        if total > 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13:
            break
    _, p_support = mass(0.5 * (lo + hi))
    p = torch.zeros(n + 1, dtype=torch.float64)
    p[support] = p_support / p_support.sum()
    return p.to(dtype=losses.dtype, device=losses.device)


class HolisticRobust(BatchWrapper):
    r"""Holistic robust (HR) loss without evasion: KL-DRO around a poisoned batch.

    With batch losses :math:`\ell_1..\ell_N` (detached inside the solver) and
    :math:`\ell_{\max}=\max\ell`,

    .. math::

        p^*=\arg\max_{p,q,s}\sum_{i\le N}p_i\ell_i+p_{N+1}\ell_{\max}
        \ \text{s.t.}\ p,q\in\Delta^{N+1},\ s\ge0,\ q_i+s_i=\tfrac1N,\ \textstyle\sum s\le\alpha,
        \ \mathrm{KL}(q\Vert p)\le r,

    and :math:`L=\sum_ip^*_i\ell_i+p^*_{N+1}\max_i\ell_i` with :math:`p^*` constant.

    Input, target and link are those of ``base``.

    Parameters
    ----------
    base : str, default="cross_entropy"
    base_params : dict or None, default=None
    alpha : float in [0, 0.3], default=0.1
        Poisoning (total-variation) budget; 0 is replaced by :math:`10^{-6}` as in the
        reference.
    r : float in [0, 1], default=0.01
        KL radius (statistical error); 0 with ``alpha > 0`` is replaced by :math:`10^{-3}`
        as in the reference. ``alpha = r = 0`` is ERM.
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` multiplies the value by the batch's total row weight.

    Notes
    -----
    Checked against RyanLucas3/HR_Neural_Networks ``HR.py`` (the cvxpy program with the
    exponential cone ``ExpCone(-t, q, p)``, i.e. :math:`\sum_j q_j\log(q_j/p_j)\le r`, the
    guards on :math:`\alpha` and :math:`r`, and the returned
    ``dot(p[:N], loss) + max(loss) * p[N]``): agreement. Instead of a conic solver, lossreg
    solves the program exactly: for every KL multiplier the optimal poisoning removes the
    :math:`\alpha` mass from the lowest losses (so :math:`q` is found greedily), and the
    KL-ball step has the dual :math:`\min_{\eta}\eta-e^{-r}\prod_j(\eta-\tilde\ell_j)^{q_j}`,
    a 1-D root search, with :math:`p_j=\lambda q_j/(\eta-\tilde\ell_j)`. A test compares it
    with scipy's generic constrained solver. The evasion part (:math:`\epsilon>0`, PGD on
    the inputs) needs the inputs and the model and is out of a criterion's scope. Sample
    weights replace the uniform empirical distribution :math:`1/N` by :math:`w_i/\sum w`.
    Defaults :math:`\alpha=0.1`, :math:`r=0.01` follow the tabular DRO library the catalogue
    cites.

    References
    ----------
    Bennouna, Lucas, Van Parys, "Certified Robust Neural Networks: Generalization and
    Corruption Resistance", ICML 2023, arXiv:2303.02251.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> round(HolisticRobust()(logits, labels).item(), 4)
    1.5817
    """

    _name = "holistic_robust"

    def __init__(
        self,
        *,
        base: str = "cross_entropy",
        base_params: Mapping[str, Any] | None = None,
        alpha: float = 0.1,
        r: float = 0.01,
        reduction: str = "mean",
        **data_params: Any,
    ) -> None:
        super().__init__(base=base, base_params=base_params, reduction=reduction, **data_params)
        self.alpha = alpha
        self.r = r

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return :math:`\\sum_i p^*_i \\ell_i + p^*_{N+1} \\max_i \\ell_i`."""
        losses = self.base_losses(input, target, extras)
        weight = row_weights(sample_weight, losses)
        # The reference's guards, in its order: alpha = 0 -> 1e-6; r = 0 with alpha != 0 ->
        # 1e-3; neither above 1e-6 -> plain ERM.
        alpha = _ALPHA_FLOOR if self.alpha == 0 else self.alpha
        r = _R_FLOOR if self.r == 0 and self.alpha != 0 else self.r
        if not (r > _ALPHA_FLOOR or alpha > _ALPHA_FLOOR):
            value = (weight * losses).sum() / weight.sum()
            return batch_reduce(value, self.reduction, weight.sum())
        p = holistic_weights(losses, alpha, r, None if sample_weight is None else weight)
        value = (p[:-1] * losses).sum() + p[-1] * losses.max()
        return batch_reduce(value, self.reduction, weight.sum())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha!r}, r={self.r!r}"
