"""Greedy CVaR over groups with EMA reference losses (the group_DRO code's "btl" variant)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lossreg import InvalidLossParameterError

from ._private import BatchWrapper, batch_reduce, group_ids, group_means, row_weights

__all__ = ["GroupCVaR"]


class GroupCVaR(BatchWrapper):
    r"""CVaR over groups: the worst groups by an EMA of their losses weigh :math:`\pi_g/\alpha`.

    Per batch, with :math:`\hat\ell_g` the (sample-weighted) mean base loss of group
    :math:`g` (0 when absent) and training fractions :math:`\pi_g`:

    .. math::

        \bar\ell_g\leftarrow(1-\gamma)\bar\ell_g+\gamma\hat\ell_g\ (g\text{ present}),\quad
        r_g=\bar\ell_g+C/\sqrt{n_g},

    sort the groups by :math:`r_g` descending; the leading groups get
    :math:`w_g=\pi_g/\alpha` while their cumulative fraction is :math:`\le\alpha`, the next
    one :math:`1-\sum w`, the rest 0; :math:`w\leftarrow\mu\pi+(1-\mu)w`;
    :math:`L=\sum_gw_g\hat\ell_g`. The first observation of a group initialises its EMA.

    Input, target and link are those of ``base``; ``group`` holds one int id >= 0 per row.

    Parameters
    ----------
    base : str, default="cross_entropy"
    base_params : dict or None, default=None
    alpha : float in (0, 1], default=0.2
        CVaR level: the fraction of the (group-weighted) data the loss concentrates on.
    gamma : float in (0, 1], default=0.1
        EMA rate of the group reference losses.
    min_var_weight : float in [0, 1], default=0.0
        :math:`\mu`, mixes the ERM group weights :math:`\pi` back in.
    adj : float >= 0, default=0.0
        :math:`C`; needs ``group_counts``.
    group_counts : sequence of int or None, default=None
        Training rows per group. ``None``: :math:`\pi` is the running share of the rows seen
        in training so far (exact from the second epoch on; an estimate during the first).
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` multiplies the value by the batch's total row weight.

    Attributes
    ----------
    ema_, ema_seen_, seen_counts_ : buffers of shape (G,)
        The EMA of group losses, whether each is initialised, and rows seen per group; grown
        on demand to the largest group id + 1 (sized by ``group_counts`` when given).

    Notes
    -----
    Checked against kohpangwei/group_DRO ``loss.py`` (``update_exp_avg_loss``,
    ``compute_robust_loss_btl``, ``compute_robust_loss_greedy``): agreement, with two
    guards the reference lacks: when every group fits under :math:`\alpha` no "next" group
    exists (the reference would index past the end), and the EMA and counts update only in
    training mode. The weights are piecewise constant in the losses (no gradient through
    them). Groups absent from a batch keep their EMA. The spec declares
    ``sampler="group_stratified"``: every group in every training batch, in proportion to
    its size, so that without ``group_counts`` the running shares :math:`\pi_g` stay the
    training fractions (a balanced sampler would make them uniform). A group with fewer
    rows than there are batches has rows repeated to be in each batch, which lifts its
    running share slightly; pass ``group_counts`` for exact fractions. The reference code's
    loader is a plain shuffle unless ``--reweight_groups`` is given; which one its CVaR runs
    used is not documented.

    References
    ----------
    Sagawa, Koh, Hashimoto, Liang, "Distributionally Robust Neural Networks for Group Shifts:
    On the Importance of Regularization for Worst-Case Generalization", ICLR 2020,
    arXiv:1911.08731.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> loss = GroupCVaR(alpha=0.5)
    >>> round(loss(logits, labels, group=torch.tensor([0, 0, 1, 1])).item(), 4)
    1.41
    """

    _name = "group_cvar"
    _own_extras = ("group",)

    def __init__(
        self,
        *,
        base: str = "cross_entropy",
        base_params: Mapping[str, Any] | None = None,
        alpha: float = 0.2,
        gamma: float = 0.1,
        min_var_weight: float = 0.0,
        adj: float = 0.0,
        group_counts: Sequence[int] | None = None,
        reduction: str = "mean",
        **data_params: Any,
    ) -> None:
        super().__init__(base=base, base_params=base_params, reduction=reduction, **data_params)
        self.alpha = alpha
        self.gamma = gamma
        self.min_var_weight = min_var_weight
        self.adj = adj
        self.group_counts = group_counts
        if adj > 0 and group_counts is None:
            raise InvalidLossParameterError(
                f"Loss 'group_cvar': adj={adj!r} needs group_counts (training rows per group); "
                "pass group_counts=[n_0, n_1, ...] or set adj=0."
            )
        size = len(group_counts or ())
        counts = torch.as_tensor(list(group_counts or ()), dtype=torch.float32)
        self.register_buffer("group_counts_", counts)
        self.register_buffer("ema_", torch.zeros(size))
        self.register_buffer("ema_seen_", torch.zeros(size, dtype=torch.bool))
        self.register_buffer("seen_counts_", torch.zeros(size))

    def _grow(self, n_groups: int) -> None:
        old = self.ema_.shape[0]
        if n_groups <= old:
            return
        if self.group_counts is not None:
            raise ValueError(
                f"Loss 'group_cvar' was built for {old} groups but got group id "
                f"{n_groups - 1}; ids must be 0..{old - 1}."
            )
        extra = n_groups - old
        self.ema_ = torch.cat([self.ema_, self.ema_.new_zeros(extra)])
        self.ema_seen_ = torch.cat([self.ema_seen_, self.ema_seen_.new_zeros(extra)])
        self.seen_counts_ = torch.cat([self.seen_counts_, self.seen_counts_.new_zeros(extra)])

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return :math:`\\sum_g w_g \\hat\\ell_g`, updating the EMA in training mode."""
        losses = self.base_losses(input, target, extras)
        group = group_ids(group, losses.shape[0], self._name).to(losses.device)
        weight = row_weights(sample_weight, losses)
        self._grow(int(group.max()) + 1 if group.numel() else 0)
        n_groups = self.ema_.shape[0]
        group_loss, _ = group_means(losses, group, n_groups, weight)
        rows = torch.bincount(group, minlength=n_groups).to(losses.dtype)
        present = rows > 0
        ema = self.ema_.to(losses.dtype)
        seen = self.ema_seen_
        if self.training:
            keep = (1 - self.gamma * present.to(ema.dtype)) * seen.to(ema.dtype)
            ema = ema * keep + group_loss.detach() * (1 - keep)
            self.ema_ = ema
            self.ema_seen_ = seen | present
            self.seen_counts_ = self.seen_counts_.to(losses.dtype) + rows
        if self.group_counts is not None:
            frac = self.group_counts_.to(losses.dtype)
        else:
            frac = self.seen_counts_.to(losses.dtype)
            if not bool(frac.sum() > 0):
                frac = rows  # nothing seen in training yet: this batch's shares
        frac = frac / frac.sum()
        ref = ema
        if self.adj > 0:
            ref = ref + self.adj / self.group_counts_.to(ref.dtype).sqrt()
        w = self._greedy_weights(ref, frac)
        return batch_reduce(group_loss @ w, self.reduction, weight.sum())

    def _greedy_weights(self, ref: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(ref, descending=True, stable=True)
        sorted_frac = frac[order]
        mask = torch.cumsum(sorted_frac, dim=0) <= self.alpha
        w = mask.to(frac.dtype) * sorted_frac / self.alpha
        last = int(mask.sum())
        if last < w.shape[0]:  # the reference would index past the end otherwise
            w[last] = 1 - w.sum()
        w = sorted_frac * self.min_var_weight + w * (1 - self.min_var_weight)
        out = torch.empty_like(w)
        out[order] = w
        return out.detach()

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, alpha={self.alpha!r}, gamma={self.gamma!r}, "
            f"min_var_weight={self.min_var_weight!r}, adj={self.adj!r}"
        )
