"""EATA: reliable, non-redundant entropy minimisation for test-time adaptation."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ._private import check_batch_reduction, check_logits, row_weights

__all__ = ["EATAEntropy"]


class EATAEntropy(nn.Module):
    r"""EATA's sample-selective, entropy-weighted entropy loss (without the Fisher term).

    .. math::

        H_i = H(p_i),\quad
        S = \{i : H_i < E_0,\ |\cos(m, p_i)| < \epsilon_d \text{ (once } m \text{ exists)}\},
        \quad L = \frac1{|S|}\sum_{i\in S} e^{-(H_i - E_0)}\,H_i

    with the weight :math:`e^{-(H_i-E_0)}` detached. After each training call the state
    :math:`m` (a buffer) becomes the mean of :math:`p` over :math:`S` (first time) or
    :math:`0.9\,m + 0.1\,\mathrm{mean}_S\,p`. Input (N, C) logits; the target is ignored
    (test-time rows are unlabeled, -1).

    Parameters
    ----------
    e_margin_factor : float in (0, inf), default=0.4
        :math:`E_0 = \text{factor}\cdot\ln C` (the repository's main-script default 0.4).
    d_margin : float in (0, 1], default=0.05
        Redundancy threshold :math:`\epsilon_d` on the cosine similarity to :math:`m`.
    n_classes : int
        Number of classes C (data param): the size of the state :math:`m`.
    reduction : {"mean", "sum"}, default="mean"
        Batch-level: ``"none"`` is refused; ``"sum"`` sums over the selected rows.

    Notes
    -----
    Checked against ``forward_and_adapt_eata`` of mr-eggplant/EATA (``eata.py``): same
    filters, weight ``1 / exp(H - e_margin)`` detached, mean over the kept rows, and the
    same moving-average update (``0.9 m + 0.1 mean p``, the first batch's mean when
    :math:`m` does not exist; unchanged when no row is kept). There the update happens
    whenever the model adapts; here only while the module is in training mode. A batch
    with no kept row returns 0 (the reference skips the step). Sample weights multiply the
    kept rows' terms. The anti-forgetting Fisher penalty
    :math:`\beta\sum_k F_k(\theta_k-\theta_k^0)^2` acts on the network's parameters and is
    not part of this criterion; the estimator must also provide an ``adapt(X)`` method that
    updates only normalisation layers on unlabeled rows. Call :meth:`reset_state` to forget
    :math:`m`. Pitfall for tabular data: probability vectors are non-negative, so with few
    classes their cosine to :math:`m` is large (for C = 2 it is always above 0.05): with the
    ImageNet default :math:`\epsilon_d = 0.05` no row passes the redundancy filter after the
    first batch; raise ``d_margin`` (0.5--0.9) for small C.

    References
    ----------
    S. Niu, J. Wu, Y. Zhang, Y. Chen, S. Zheng, P. Zhao, M. Tan. "Efficient Test-Time Model
    Adaptation without Forgetting." ICML 2022.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[4.0, 0.0], [0.0, 0.0], [5.0, -5.0], [-3.0, 3.0]])
    >>> loss = EATAEntropy(n_classes=2)
    >>> round(loss(logits, torch.tensor([-1, -1, -1, -1])).item(), 4)
    0.0439
    """

    def __init__(
        self,
        *,
        e_margin_factor: float = 0.4,
        d_margin: float = 0.05,
        n_classes: int,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.e_margin_factor = e_margin_factor
        self.d_margin = d_margin
        self.n_classes = n_classes
        self.reduction = check_batch_reduction(reduction, "eata_entropy")
        # State across batches: the moving average m of kept probabilities, and whether it
        # exists yet (buffers, so they move with .to() and survive state_dict / pickle).
        self.register_buffer("model_probs_", torch.zeros(n_classes))
        self.register_buffer("has_state_", torch.zeros((), dtype=torch.bool))

    def reset_state(self) -> None:
        """Forget the moving-average probability vector :math:`m`."""
        self.model_probs_.zero_()
        self.has_state_.fill_(False)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input, "eata_entropy")
        if input.shape[1] != self.n_classes:
            raise ValueError(
                f"eata_entropy was built for {self.n_classes} classes; the output has "
                f"{input.shape[1]} columns."
            )
        weight = row_weights(sample_weight, input.shape[0], input)
        e_margin = self.e_margin_factor * math.log(input.shape[1])
        log_p = input.log_softmax(dim=1)
        p = log_p.exp()
        entropy = -(p * log_p).sum(dim=1)
        keep = entropy.detach() < e_margin
        has_state = bool(self.has_state_)
        m = self.model_probs_.to(dtype=input.dtype)
        if has_state:
            cosine = torch.nn.functional.cosine_similarity(m[None, :], p.detach(), dim=1)
            keep = keep & (cosine.abs() < self.d_margin)
        coeff = torch.exp(-(entropy.detach() - e_margin))
        kept_weight = weight * keep.to(input.dtype)
        total = (kept_weight * coeff * entropy).sum()
        if self.training and bool(keep.any()):
            with torch.no_grad():
                batch_mean = p[keep].mean(dim=0)
                new = 0.9 * m + 0.1 * batch_mean if has_state else batch_mean
                self.model_probs_.copy_(new)
                self.has_state_.fill_(True)
        if self.reduction == "sum":
            return total
        return total / kept_weight.sum().clamp_min(torch.finfo(input.dtype).tiny)

    def extra_repr(self) -> str:
        return (
            f"e_margin_factor={self.e_margin_factor}, d_margin={self.d_margin}, "
            f"reduction={self.reduction!r}"
        )
