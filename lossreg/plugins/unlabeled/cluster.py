"""DEPICT clustering objective: KL from a frequency-balanced auxiliary target to the prediction."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, reduce

from ._private import check_logits, row_weights

__all__ = ["DepictClusterKL"]


class DepictClusterKL(LossModule):
    r"""DEPICT: KL divergence from a frequency-balanced, detached target to the cluster posterior.

    .. math::

        p_i = \mathrm{softmax}(z_i),\qquad
        q_{ik} = \frac{p_{ik} / \big(\sum_{i'} p_{i'k}\big)^{1/2}}
                      {\sum_{k'} p_{ik'} / \big(\sum_{i'} p_{i'k'}\big)^{1/2}},\qquad
        \ell_i = \mathrm{KL}\big(\mathrm{sg}(q_i)\,\Vert\,p_i\big)

    Input (N, K) logits over K clusters; the target is ignored (labels, -1, or anything: a
    clustering objective uses every row). :math:`q` is computed from the batch and detached
    (the alternating update of the paper); sample weights weight the soft cluster sizes
    :math:`\sum_i w_i p_{ik}` as well as the reduction.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    From the catalogue's formula (the from-memory DEPICT target; no code was checked): the
    square root of the soft cluster frequency balances cluster sizes, and dividing by it
    sharpens small clusters. The paper recomputes :math:`q` on the whole data set
    periodically; one batch gives a noisy :math:`q`, so use large batches. The per-row
    values depend on the rest of the batch (through :math:`q`). Add a reconstruction loss
    when an autoencoder is used (not part of this criterion).

    References
    ----------
    K. G. Dizaji, A. Herandi, C. Deng, W. Cai, H. Huang. "Deep Clustering via Joint
    Convolutional Autoencoder Embedding and Relative Entropy Minimization." ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, -5.0], [-1.0, 1.0]])
    >>> loss = DepictClusterKL(reduction="none")
    >>> [round(v, 4) for v in loss(logits, torch.tensor([-1, -1, -1, -1])).tolist()]
    [0.0039, 0.0081, 0.0, 0.003]
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        weight = None if sample_weight is None else row_weights(sample_weight, len(input), input)
        return reduce(self._kl(input, weight), self.reduction, sample_weight)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return self._kl(input, None)

    def auxiliary_target(self, input: torch.Tensor, weight: torch.Tensor | None = None):
        """Return the detached (N, K) target :math:`q` of a batch of logits."""
        check_logits(input, "depict_cluster_kl")
        with torch.no_grad():
            log_p = input.log_softmax(dim=1)
            p = log_p.exp()
            w = torch.ones_like(p[:, 0]) if weight is None else weight
            frequency = (w[:, None] * p).sum(dim=0)
            log_q = log_p - 0.5 * torch.log(frequency)[None, :]
            return torch.softmax(log_q, dim=1)

    def _kl(self, input: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        q = self.auxiliary_target(input, weight)
        log_p = input.log_softmax(dim=1)
        # xlogy: q log q is 0 where q underflows to 0.
        return (torch.special.xlogy(q, q) - q * log_p).sum(dim=1)
