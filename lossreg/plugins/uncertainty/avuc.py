"""AvUC: cross-entropy plus the accuracy-versus-uncertainty calibration term (batch-level)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import as_class_target

__all__ = ["AvUC"]

# The reference adds 1e-10 to the AvU denominator and inside the log, so that a batch with no
# "accurate-certain" or "inaccurate-uncertain" mass gives a large finite loss, not inf.
_EPS = 1e-10


class AvUC(nn.Module):
    r"""Cross-entropy plus :math:`\beta` times the AvUC loss of the batch.

    With :math:`p_i=\mathrm{softmax}(z_i)`, confidence :math:`\hat p_i=\max_c p_{ic}`,
    uncertainty :math:`u_i=H(p_i)` and threshold :math:`u_{th}`, over the batch:

    .. math::

        n_{AC}=\sum_{\text{acc},\,u\le u_{th}}\hat p(1-\tanh u),\quad
        n_{AU}=\sum_{\text{acc},\,u>u_{th}}\hat p\tanh u,\quad
        n_{IC}=\sum_{\text{inacc},\,u\le u_{th}}(1-\hat p)(1-\tanh u),\quad
        n_{IU}=\sum_{\text{inacc},\,u>u_{th}}(1-\hat p)\tanh u,

        L = \mathrm{CE} + \beta\log\Big(1+\frac{n_{AU}+n_{IC}}{n_{AC}+n_{IU}}\Big)
          = \mathrm{CE} - \beta\log\mathrm{AvU}

    "acc" means :math:`\arg\max_c p_{ic}=y_i`. A batch-level loss: no per-row form.

    Input logits (N, C); int labels (N,). Prediction: softmax.

    Parameters
    ----------
    beta : float in [0, inf), default=1.0
        Weight of the AvUC term (the authors' ``AvULoss`` default; tune it).
    threshold : float in [0, inf) or None, default=None
        Entropy threshold :math:`u_{th}`. ``None`` uses the batch's mean entropy (detached), a
        lossreg choice; the paper fixes it from the entropies of a warm-up model.
    reduction : {"mean", "sum"}, default="mean"
        ``mean``: weighted-mean CE plus the term; ``sum``: that times the total weight.

    Notes
    -----
    Checked against IntelLabs/bayesian-torch ``AvULoss`` (authors' code): the four sums, the
    ``tanh`` of the predictive entropy, and :math:`-\beta\log(\mathrm{AvU}+\epsilon)` with
    :math:`\mathrm{AvU}=(n_{AC}+n_{IU})/(n_{AC}+n_{AU}+n_{IC}+n_{IU}+\epsilon)`,
    :math:`\epsilon=10^{-10}`; this equals the catalogue's :math:`\log(1+\cdot)` form up to
    :math:`\epsilon`. That code returns only the AvUC term; the CE is added here as in the
    paper's training objective. Sample weights weight each row's CE and its contribution to
    the four sums. The accurate/certain split is a hard (non-differentiable) assignment;
    gradients flow through :math:`\hat p` and :math:`\tanh u`.

    References
    ----------
    R. Krishnan, O. Tickoo. "Improving model calibration with accuracy versus uncertainty
    optimization." NeurIPS 2020, arXiv:2012.07923.

    Examples
    --------
    >>> import torch
    >>> loss = AvUC(beta=1.0, threshold=0.5)
    >>> logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [0.2, 0.0], [-2.0, 2.0]])
    >>> round(loss(logits, torch.tensor([0, 1, 0, 0])).item(), 4)
    1.3796
    """

    def __init__(
        self, *, beta: float = 1.0, threshold: float | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"avuc is a batch-level loss: reduction must be 'mean' or 'sum'. Got "
                f"{reduction!r}; it has no per-row form for 'none'."
            )
        self.beta = beta
        self.threshold = threshold
        self.reduction = reduction

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        labels = as_class_target(target)
        if sample_weight is None:
            weight = torch.ones_like(input[:, 0])
        else:
            weight = torch.as_tensor(sample_weight, dtype=input.dtype, device=input.device)
            weight = weight.reshape(-1)
        log_p = input.log_softmax(dim=-1)
        p = log_p.exp()
        ce = -log_p.gather(1, labels.unsqueeze(1)).squeeze(1)
        confidence, prediction = p.max(dim=-1)
        entropy = -(p * log_p).sum(dim=-1)
        threshold = entropy.detach().mean() if self.threshold is None else self.threshold
        accurate = prediction == labels
        certain = entropy <= threshold
        t = torch.tanh(entropy)
        ac = (weight * confidence * (1 - t))[accurate & certain].sum()
        au = (weight * confidence * t)[accurate & ~certain].sum()
        ic = (weight * (1 - confidence) * (1 - t))[~accurate & certain].sum()
        iu = (weight * (1 - confidence) * t)[~accurate & ~certain].sum()
        avu = (ac + iu) / (ac + au + ic + iu + _EPS)
        total = weight.sum()
        # Zero total weight gives 0, as lossreg.reduce does, not 0/0.
        mean = (weight * ce).sum() / total.clamp_min(torch.finfo(input.dtype).tiny)
        mean = mean - self.beta * torch.log(avu + _EPS)
        return mean if self.reduction == "mean" else mean * total

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}, reduction={self.reduction!r}"
