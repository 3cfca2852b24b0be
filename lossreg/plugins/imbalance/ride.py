"""RIDE: LDAM-DRW per expert plus a (negative) diversity KL towards the experts' mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lossreg import Link, as_class_target

from ._private import counts_buffer, effective_number_weights, ldam_margins, one_hot_like

__all__ = ["RIDE", "RIDE_LINK", "expert_logits"]


def expert_logits(output: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Return expert logits as (N, E, C) from an (N, E, C) or a flat (N, E*C) output."""
    if output.ndim == 3:
        if output.shape[1] != num_experts:
            raise ValueError(
                f"ride expects {num_experts} experts on axis 1; got shape {tuple(output.shape)}."
            )
        return output
    if output.ndim != 2 or output.shape[1] % num_experts:
        raise ValueError(
            f"ride expects expert logits of shape (N, E, C) or (N, E*C) with E={num_experts}; "
            f"got shape {tuple(output.shape)}."
        )
    return output.reshape(output.shape[0], num_experts, -1)


def _expert_mean_softmax(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    num_experts = getattr(criterion, "num_experts", None)
    if num_experts is None:
        raise ValueError("the ride link needs the fitted criterion to know the number of experts")
    return expert_logits(output, num_experts).mean(dim=1).softmax(dim=-1)


RIDE_LINK = Link(
    "expert_mean_softmax",
    _expert_mean_softmax,
    "proba",
    "softmax of the mean of the experts' logits (output reshaped to (N, E, C))",
)


class RIDE(nn.Module):
    r"""RIDE loss: LDAM-DRW on every expert plus a diversity term (batch-level).

    With expert logits :math:`z_e` (E experts), their mean :math:`\bar z`, margins
    :math:`\Delta_c = K/n_c^{1/4}` (:math:`\max\Delta` = ``max_m``):

    .. math::

        L = \sum_e \Bigl[\mathrm{CE}_{w}\bigl(z_e - s\,\Delta_{y} e_{y},\ y\bigr)
            + \beta_{div}\,\bar T^2\,\frac1N\sum_i
            \mathrm{KL}\bigl(\mathrm{softmax}(\mathrm{sg}(\bar z_i)/T)\,\Vert\,
            \mathrm{softmax}(z_{e,i}/T)\bigr)\Bigr]

    Before the deferred re-weighting epoch, :math:`w = 1` and :math:`T = T_0`. From it on,
    :math:`w_c` are the effective-number weights (:math:`\beta=0.9999`, normalised to sum to
    C; :math:`\mathrm{CE}_w` divides by :math:`\sum_i w_{y_i}` as torch does) and the
    temperature is per class, :math:`T_c = T_0\,u_c` with
    :math:`u_c = (C\pi_c r + 1 - r) / \max_k(C\pi_k r + 1 - r)` and
    :math:`\bar T = \mathrm{mean}_c T_c`.

    The module output holds all experts: shape (N, E*C) (the estimator's head has
    ``num_experts * n_classes`` outputs) or (N, E, C); targets are class indices (N,). The
    predict link is the softmax of the experts' mean logits.

    Parameters
    ----------
    num_experts : int >= 1, default=3
        E (3 or 4 in the paper).
    max_m : float > 0, default=0.5
        Largest LDAM margin.
    s : float > 0, default=30.0
        Margin scale (the reference's experts emit cosine logits already scaled by 30; with
        raw MLP logits use ``s=1``).
    diversity_factor : float, default=-0.2
        :math:`\beta_{div}`; negative maximises the experts' disagreement.
    diversity_temperature : float > 0, default=1.0
        :math:`T_0`.
    reweight_factor : float in [0, 1), default=0.05
        :math:`r` of the per-class temperatures.
    beta : float in [0, 1), default=0.9999
        Effective-number parameter of the deferred class weights.
    drw_fraction : float in [0, 1], default=0.8
        Deferred re-weighting starts at epoch ``drw_fraction * max_epochs`` (160 of 200).
    class_counts : sequence of C ints > 0
        Training rows per class (data param).
    reduction : {"mean", "sum"}, default="mean"
        ``mean`` returns L as above; ``sum`` returns N L. No per-row form.

    Notes
    -----
    Checked against frank-xwang/RIDE-LongTailRecognition ``model/loss.py`` (``RIDELoss``),
    which differs from the catalogue's summary in three points, all followed here: the margin
    is subtracted as :math:`s\Delta` from the logits (the logits are not multiplied by s);
    the per-class temperatures are used only after the re-weighting epoch; the diversity
    target is the softmax of the mean logits, detached. With ``diversity_factor=0`` the
    reference applies the LDAM term to the mean logits; here it stays per expert. The
    negative diversity term makes the loss unbounded below in principle: monitor it.
    Sample weights :math:`s_i` multiply each row's terms (:math:`\mathrm{CE}_w` divides by
    :math:`\sum_i s_i w_{y_i}`, the KL mean by :math:`\sum_i s_i`). The routing module and the
    distillation variant are not part of the loss.

    References
    ----------
    X. Wang, L. Lian, Z. Miao, Z. Liu, S. X. Yu. "Long-tailed Recognition by Routing Diverse
    Distribution-Aware Experts." ICLR 2021, arXiv:2010.01809.

    Examples
    --------
    >>> import torch
    >>> loss = RIDE(num_experts=2, s=1.0, class_counts=[16, 1])
    >>> logits = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 1.0],
    ...                        [1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.5]])
    >>> round(loss(logits, torch.tensor([0, 1, 0, 1])).item(), 4)
    0.9548
    """

    def __init__(
        self,
        *,
        num_experts: int = 3,
        max_m: float = 0.5,
        s: float = 30.0,
        diversity_factor: float = -0.2,
        diversity_temperature: float = 1.0,
        reweight_factor: float = 0.05,
        beta: float = 0.9999,
        drw_fraction: float = 0.8,
        class_counts: Sequence[int],
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"ride is batch-level: reduction must be 'mean' or 'sum'. Got {reduction!r}."
            )
        self.num_experts = num_experts
        self.max_m = max_m
        self.s = s
        self.diversity_factor = diversity_factor
        self.diversity_temperature = diversity_temperature
        self.reweight_factor = reweight_factor
        self.beta = beta
        self.drw_fraction = drw_fraction
        self.class_counts = class_counts
        self.reduction = reduction
        counts = counts_buffer(class_counts)
        self.register_buffer("margin_", ldam_margins(counts, max_m))
        self.register_buffer("drw_weight_", effective_number_weights(counts, beta))
        c = counts.numel()
        spread = c * (counts / counts.sum()) * reweight_factor + 1 - reweight_factor
        self.register_buffer("drw_temperature_", diversity_temperature * spread / spread.max())
        # State switched by set_epoch: current class weights and per-class temperatures.
        self.register_buffer("class_weight_", torch.ones_like(counts))
        self.register_buffer("temperature_", torch.full_like(counts, diversity_temperature))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Switch deferred re-weighting (weights and temperatures) on at the DRW epoch."""
        if epoch >= self.drw_fraction * max_epochs:
            self.class_weight_.copy_(self.drw_weight_)
            self.temperature_.copy_(self.drw_temperature_)
        else:
            self.class_weight_.fill_(1.0)
            self.temperature_.fill_(self.diversity_temperature)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        experts = expert_logits(input, self.num_experts)
        labels = as_class_target(target)
        n = experts.shape[0]
        if sample_weight is None:
            s_i = torch.ones(n, dtype=experts.dtype, device=experts.device)
        else:
            s_i = torch.as_tensor(sample_weight, dtype=experts.dtype, device=experts.device)
            s_i = s_i.reshape(-1)
        tiny = torch.finfo(experts.dtype).tiny
        row_weight = s_i * self.class_weight_.to(experts.dtype)[labels]
        temperature = self.temperature_.to(experts.dtype)
        t_mean = temperature.mean()
        target_dist = (experts.mean(dim=1).detach() / temperature).softmax(dim=-1)
        log_target = target_dist.clamp_min(tiny).log()
        margin = self.s * one_hot_like(labels, experts[:, 0]) * self.margin_.to(experts.dtype)
        total = experts.new_zeros(())
        for e in range(self.num_experts):
            z = experts[:, e]
            ce = -(z - margin).log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
            total = total + (row_weight * ce).sum() / row_weight.sum().clamp_min(tiny)
            log_q = (z / temperature).log_softmax(dim=-1)
            kl = (target_dist * (log_target - log_q)).sum(dim=-1)
            diversity = (s_i * kl).sum() / s_i.sum().clamp_min(tiny)
            total = total + self.diversity_factor * t_mean.square() * diversity
        return total if self.reduction == "mean" else total * n

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, max_m={self.max_m}, s={self.s}, "
            f"diversity_factor={self.diversity_factor}, drw_fraction={self.drw_fraction}"
        )
