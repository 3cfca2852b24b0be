"""Contrastive adversarial domain (CAD) bottlenecks on the network's features."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import check_batch_reduction

from ._private import batch_reduce
from .representation import cross_entropy_parts

__all__ = ["CADBottleneck", "CondCADBottleneck"]

#: SupCon's base temperature, fixed in the reference code (``self.base_temperature = 0.07``).
BASE_TEMPERATURE = 0.07


class CADBottleneck(nn.Module):
    r"""CAD: cross-entropy plus a contrastive bottleneck that hides the domain in the features.

    With features :math:`z_i` (N, D), domains :math:`d_i` (``group`` extra) and
    :math:`s_{ij}=\langle z_i,z_j\rangle/\tau` (:math:`s_{ii}` set to 0),

    .. math::

        \log P_{ij}=s_{ij}-\log\sum_{k\ne i}e^{s_{ik}},\qquad
        b_i=-\frac{\tau}{\tau_0}\log\sum_{j:\,d_j\ne d_i}P_{ij}\ \ (\texttt{flipped}),\qquad
        b_i=\frac{\tau}{\tau_0}\log\sum_{j:\,d_j=d_i}P_{ij}\ \ (\text{not flipped}),

    :math:`\tau_0=0.07`, over the rows that have another row of their label in the batch;
    rows whose sum is empty (no other-domain row, :math:`b_i=\infty`) are left out of the mean:

    .. math::

        L=\frac{\sum_iw_i\,\mathrm{CE}(\mathrm{logits}_i,y_i)}{\sum_iw_i}
        +\lambda\,\frac{\sum_{i\,\mathrm{finite}}w_ib_i}{\sum_{i\,\mathrm{finite}}w_i}.

    The input is the pair ``(logits, features)``: logits (N, C), features (N, D); targets
    class indices (N,); ``group`` the domain of each row.

    Parameters
    ----------
    bottleneck_weight : float >= 0, default=0.1
        :math:`\lambda` (DomainBed's ``lmbda``, searched in {1e-4, ..., 1e2}).
    temperature : float > 0, default=0.1
        :math:`\tau`.
    flipped : bool, default=True
        Maximise the probability of other-domain rows (True) instead of minimising that of
        same-domain rows; the reference finds the flipped form more stable.
    normalized : bool, default=False
        L2-normalise the features before the similarities.
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` multiplies the batch value by the total row weight.

    Notes
    -----
    Checked against facebookresearch/DomainBed ``algorithms.py`` (``AbstractCAD.bn_loss`` with
    ``is_conditional=False``; ``update``: ``clf_loss + lmbda * bn_loss``; hyperparameters
    ``lmbda=0.1``, ``temperature=0.1``, ``is_normalized=False``, ``is_project=False``,
    ``is_flipped=True``, ``base_temperature=0.07``): agreement, quirks included — the
    similarity matrix is multiplied by the off-diagonal mask, so in the non-flipped form the
    row's own term enters the numerator with similarity 0; only rows with another row of
    their label count, even here where labels are not otherwise used; the mean is over the
    finite :math:`b_i` (``finite_mean``). The catalogue's formula agrees. Departures: the
    optional projection head (``is_project``, off in every reference run) is not offered;
    sample weights weigh each row's CE and :math:`b_i` (the reference has none), while every
    row stays a candidate in the others' sums. Batches need rows of several domains: the
    spec declares ``sampler="group_balanced"`` (every domain in every training batch in equal
    shares, DomainBed's one minibatch per domain).

    References
    ----------
    Y. Ruan, Y. Dubois, C. J. Maddison, "Optimal Representations for Covariate Shift",
    ICLR 2022, arXiv:2201.00057.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.5], [0.0, 1.0]])
    >>> loss = CADBottleneck()
    >>> labels, group = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    >>> round(loss((logits, features), labels, group=group).item(), 4)
    0.269
    """

    _name = "cad_bottleneck"
    _conditional = False

    def __init__(
        self,
        *,
        bottleneck_weight: float = 0.1,
        temperature: float = 0.1,
        flipped: bool = True,
        normalized: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0. Got {temperature!r} instead.")
        self.bottleneck_weight = bottleneck_weight
        self.temperature = temperature
        self.flipped = flipped
        self.normalized = normalized
        self.reduction = check_batch_reduction(reduction, self._name)

    def forward(
        self,
        input: Any,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the weighted mean cross-entropy plus the weighted bottleneck term."""
        _, features, labels, log_p, weight, domain, _, mass, value = cross_entropy_parts(
            input, target, sample_weight, group, self._name
        )
        b, rows = self.bottleneck(features.to(log_p.dtype), labels, domain)
        kept = weight[rows]
        if rows.numel() and float(kept.sum()) > 0:
            value = value + self.bottleneck_weight * (kept * b).sum() / kept.sum()
        return batch_reduce(value, self.reduction, mass)

    def bottleneck(
        self, z: torch.Tensor, labels: torch.Tensor, domain: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The finite :math:`b_i` and the indices of their rows."""
        n = z.shape[0]
        if self.normalized:
            z = nn.functional.normalize(z, dim=1)
        off_diagonal = ~torch.eye(n, dtype=torch.bool, device=z.device)
        same_label = (labels[:, None] == labels[None, :]) & off_diagonal
        same_domain = domain[:, None] == domain[None, :]
        s = (z @ z.T / self.temperature) * off_diagonal  # the reference zeroes the diagonal
        if self._conditional:
            # The softmax runs over the other rows of the same label.
            candidates = same_label
            targets = same_label & ~same_domain if self.flipped else same_label & same_domain
            valid = targets.any(dim=1)
        else:
            candidates = off_diagonal
            targets = ~same_domain if self.flipped else same_domain
            # Rows without another row of their label are dropped, as in the reference.
            valid = same_label.any(dim=1) & targets.any(dim=1)
        rows = valid.nonzero().flatten()
        if rows.numel() == 0:
            return s.new_zeros(0), rows
        s, candidates, targets = s[rows], candidates[rows], targets[rows]
        minus_inf = torch.finfo(s.dtype).min  # finite, so masked rows keep finite gradients
        log_p = s - torch.logsumexp(s.masked_fill(~candidates, minus_inf), dim=1, keepdim=True)
        mass = torch.logsumexp(log_p.masked_fill(~targets, minus_inf), dim=1)
        scale = self.temperature / BASE_TEMPERATURE
        return (-scale * mass if self.flipped else scale * mass), rows

    def extra_repr(self) -> str:
        return (
            f"bottleneck_weight={self.bottleneck_weight!r}, temperature={self.temperature!r}, "
            f"flipped={self.flipped!r}, normalized={self.normalized!r}, "
            f"reduction={self.reduction!r}"
        )


class CondCADBottleneck(CADBottleneck):
    r"""Conditional CAD: the contrastive bottleneck among rows of the same label.

    As :class:`CADBottleneck` with the softmax over the other rows of row i's label,

    .. math::

        \log P_{ij}=s_{ij}-\log\sum_{k\ne i,\,y_k=y_i}e^{s_{ik}},\qquad
        b_i=-\frac{\tau}{\tau_0}\log\sum_{j:\,y_j=y_i,\,d_j\ne d_i}P_{ij}\ \ (\texttt{flipped}),

    or :math:`b_i=\frac{\tau}{\tau_0}\log\sum_{j\ne i:\,y_j=y_i,\,d_j=d_i}P_{ij}` not flipped,
    over the rows whose target set is not empty; :math:`L=\mathrm{CE}+\lambda\,\mathrm{mean}_ib_i`.
    It hides the domain given the label, :math:`I(D;Z\mid Y)`, instead of :math:`I(D;Z)`.

    Parameters
    ----------
    bottleneck_weight : float >= 0, default=0.1
    temperature : float > 0, default=0.1
    flipped : bool, default=True
    normalized : bool, default=False
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Checked against DomainBed ``AbstractCAD.bn_loss`` with ``is_conditional=True``
    (``CondCAD``): rows kept where ``mask_y_n_d`` (flipped) or ``mask_y_d`` has a member, the
    denominator over ``mask_y`` (same label, self excluded), the numerator over
    ``mask_y_n_d`` / ``mask_y_d``; same hyperparameters as CAD: agreement. Departures as for
    ``cad_bottleneck``. Batches need rows of one label from several domains.

    References
    ----------
    Y. Ruan, Y. Dubois, C. J. Maddison, "Optimal Representations for Covariate Shift",
    ICLR 2022, arXiv:2201.00057.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.5], [0.0, 1.0]])
    >>> loss = CondCADBottleneck()
    >>> labels, group = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    >>> round(loss((logits, features), labels, group=group).item(), 4)
    0.2685
    """

    _name = "cond_cad_bottleneck"
    _conditional = True
