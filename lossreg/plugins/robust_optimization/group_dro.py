"""GroupDRO: online exponentiated-gradient weights on the worst groups (Sagawa et al.)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lossreg import InvalidLossParameterError

from ._private import BatchWrapper, batch_reduce, group_ids, group_means, row_weights

__all__ = ["GroupDRO"]


class GroupDRO(BatchWrapper):
    r"""Group distributionally robust optimisation with online group weights.

    Per batch, with :math:`\hat\ell_g` the (sample-weighted) mean base loss of group
    :math:`g` (0 for groups absent from the batch),

    .. math::

        a_g = \hat\ell_g + C/\sqrt{n_g} \ (C>0), \quad
        q_g \leftarrow \frac{q_g e^{\eta a_g}}{\sum_h q_h e^{\eta a_h}}, \quad
        L = \sum_g q_g \hat\ell_g ,

    with :math:`q` updated without gradient *before* it weighs the losses (as in the
    reference code) and only while the module is in training mode.

    Input, target and link are those of ``base``; ``group`` holds one int id >= 0 per row.

    Parameters
    ----------
    base : str, default="cross_entropy"
        A registered loss with a per-row form.
    base_params : dict or None, default=None
        The base loss's hyperparameters (and data params).
    step_size : float > 0, default=0.01
        :math:`\eta`, the step of the exponentiated-gradient update of :math:`q`.
    adj : float in [0, inf), default=0.0
        :math:`C`, the generalisation adjustment; ``adj > 0`` needs ``group_counts``.
    normalize_loss : bool, default=False
        Divide the adjusted losses by their sum before the update.
    n_groups : int >= 1 or None, default=None
        Number of groups; ``None`` grows :math:`q` on demand to the largest id seen + 1.
    group_counts : sequence of int or None, default=None
        Training rows per group, :math:`n_g` (needed only for ``adj > 0``).
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` multiplies the value by the batch's total row weight.

    Attributes
    ----------
    q_ : buffer of shape (G,)
        The group weights; uniform at construction (a new fit builds a new loss, so each
        fit starts uniform), saved with the model's state.

    Notes
    -----
    Checked against kohpangwei/group_DRO ``loss.py`` (``compute_group_avg``,
    ``compute_robust_loss``): absent groups get mean loss 0 and still take part in the
    normalisation; the update uses the *new* :math:`q`; the adjustment applies only when
    :math:`C>0`. Discrepancy kept from the reference (the catalogue's pitfall): the reference
    adds :math:`C/\sqrt{n_g}` in place to the group losses, so with :math:`C>0` the reported
    loss includes these constants; lossreg follows the reference (gradients are the same).
    Growing :math:`q` on demand: a new group enters with weight :math:`1/G_{new}` and the old
    weights are scaled by :math:`G_{old}/G_{new}`, which equals the reference whenever every
    group id up to the largest appears before the first update (pass ``n_groups`` to be sure).
    The paper's key ingredient is strong regularisation: use a large ``weight_decay`` (up to
    1) or early stopping on the estimator. Sample weights weigh rows inside their group's
    mean. The value depends on batch composition. The spec declares
    ``sampler="group_balanced"``: the estimators put every group of the fold in every
    training batch in equal shares, the stratified form of the reference code's training
    loader with ``--reweight_groups`` (``data/dro_dataset.py``: a ``WeightedRandomSampler``
    with row weights :math:`n/n_g`, ``len(data)`` draws with replacement), which the paper's
    GroupDRO runs use.

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
    >>> loss = GroupDRO(step_size=1.0)
    >>> round(loss(logits, labels, group=torch.tensor([0, 0, 1, 1])).item(), 4)
    1.2884
    >>> [round(v, 4) for v in loss.q_.tolist()]
    [0.4297, 0.5703]
    """

    _name = "group_dro"
    _own_extras = ("group",)

    def __init__(
        self,
        *,
        base: str = "cross_entropy",
        base_params: Mapping[str, Any] | None = None,
        step_size: float = 0.01,
        adj: float = 0.0,
        normalize_loss: bool = False,
        n_groups: int | None = None,
        group_counts: Sequence[int] | None = None,
        reduction: str = "mean",
        **data_params: Any,
    ) -> None:
        super().__init__(base=base, base_params=base_params, reduction=reduction, **data_params)
        self.step_size = step_size
        self.adj = adj
        self.normalize_loss = normalize_loss
        self.n_groups = n_groups
        self.group_counts = group_counts
        if adj > 0 and group_counts is None:
            raise InvalidLossParameterError(
                f"Loss 'group_dro': adj={adj!r} needs group_counts (training rows per group); "
                "pass group_counts=[n_0, n_1, ...] or set adj=0."
            )
        if group_counts is not None and n_groups is not None and len(group_counts) != n_groups:
            raise InvalidLossParameterError(
                f"Loss 'group_dro': group_counts has {len(group_counts)} values but "
                f"n_groups={n_groups!r}; pass one count per group."
            )
        size = n_groups if n_groups is not None else len(group_counts or ())
        self.register_buffer("q_", torch.full((size,), 1.0 / size) if size else torch.ones(0))
        counts = torch.as_tensor(list(group_counts or ()), dtype=torch.float32)
        self.register_buffer("group_counts_", counts)

    def _grow(self, n_groups: int) -> None:
        old = self.q_.shape[0]
        if n_groups <= old:
            return
        if self.n_groups is not None or self.group_counts is not None:
            raise ValueError(
                f"Loss 'group_dro' was built for {old} groups but got group id {n_groups - 1}; "
                f"ids must be 0..{old - 1}."
            )
        q = self.q_ * (old / n_groups)
        fresh = torch.full((n_groups - old,), 1.0 / n_groups, dtype=q.dtype, device=q.device)
        self.q_ = torch.cat([q, fresh])

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return :math:`\\sum_g q_g \\hat\\ell_g`, updating :math:`q` in training mode."""
        losses = self.base_losses(input, target, extras)
        group = group_ids(group, losses.shape[0], self._name).to(losses.device)
        weight = row_weights(sample_weight, losses)
        self._grow(int(group.max()) + 1 if group.numel() else 0)
        group_loss, _ = group_means(losses, group, self.q_.shape[0], weight)
        if self.adj > 0:
            # The reference adds the adjustment in place, so it is part of the value too.
            group_loss = group_loss + self.adj / self.group_counts_.to(group_loss).sqrt()
        q = self.q_.to(group_loss.dtype)
        if self.training:
            adjusted = group_loss.detach()
            if self.normalize_loss:
                adjusted = adjusted / adjusted.sum()
            # Multiplicative update in log space: q * exp(eta * a), renormalised.
            q = torch.softmax(q.log() + self.step_size * adjusted, dim=0)
            # The state takes the dtype of the losses, so float64 training keeps every digit.
            self.q_ = q.detach()
        return batch_reduce(group_loss @ q.detach(), self.reduction, weight.sum())

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, step_size={self.step_size!r}, adj={self.adj!r}, "
            f"normalize_loss={self.normalize_loss!r}, n_groups={self.n_groups!r}"
        )
