"""Bias loss: cross-entropy re-weighted by the normalised variance of hidden features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lossreg import LossModule

from ._private import target_log_prob

__all__ = ["BiasCE", "split_logits_features"]


def split_logits_features(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return (logits, features) from a (logits, features) pair or a dict with those keys."""
    if isinstance(output, Mapping):
        return output["logits"], output.get("features")
    if isinstance(output, Sequence) and not isinstance(output, torch.Tensor):
        logits, features = output
        return logits, features
    return output, None


class BiasCE(LossModule):
    r"""Bias loss: cross-entropy weighted towards rows with diverse hidden features.

    .. math::

        v_i = \mathrm{Var}(\mathrm{sg}(h_i)), \qquad
        \hat v_i = \frac{v_i - m}{\max_B v - \min_B v}, \qquad
        \ell_i = \big(e^{\beta \hat v_i} - 1 + \alpha\big)\, \mathrm{CE}(z_i, y_i)

    with :math:`h_i` row i's hidden features (unbiased variance over its values, without
    gradient) and :math:`m` the batch minimum (``mode="local"``) or the running minimum over
    all batches seen (``mode="global"``, kept in the buffer ``global_min_``).

    The input is a pair ``(logits, features)`` (or a dict with keys ``"logits"`` and
    ``"features"``): logits (N, C), features (N, ...) with at least 2 values per row;
    targets are class indices (N,).

    Parameters
    ----------
    alpha : float in [0, inf), default=0.3
        Weight floor :math:`\alpha`.
    beta : float in [0, inf), default=0.3
        Sharpness :math:`\beta` of the variance weight.
    mode : {"global", "local"}, default="global"
        Which minimum normalises the variances.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against the ``BiasLoss`` module found by search (lusinlu's, matching the paper):
    ``torch.var`` of the detached, flattened features; ``(v - GLOBAL_MIN) / (max - min)``
    with the global minimum updated from each batch; weight
    ``exp(beta * v_hat) - 1 + alpha``; mean of the weighted CE. The paper writes the weight
    as :math:`e^{\alpha v} - \beta`, which differs by a constant; the code is followed, as
    the catalogue says. Differences: the running minimum starts at +inf (the code: 100000)
    and is a buffer of the module, not a module-level global; a batch whose variances are
    all equal (or of one row) uses a range of 1 instead of dividing by zero. State: the
    global minimum is updated on calls in training mode only (the reference updates on every
    call), so validation batches do not leak into it; in eval mode the batch is normalised
    by the smaller of the stored and the batch minimum. Its spec says
    ``outputs="logits+features"``: estimators train it on the pair (logits, last hidden
    layer) and predict with the softmax of the logits.

    References
    ----------
    L. Abrahamyan, V. Ziatchin, Y. Chen, N. Deligiannis. "Bias Loss for Mobile Neural
    Networks." ICCV 2021, arXiv:2107.11170.

    Examples
    --------
    >>> import torch
    >>> loss = BiasCE(mode="local", reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    >>> feats = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.1], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> values = loss((logits, feats), torch.tensor([0, 1, 0, 0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0514, 0.0381, 0.2079, 1.9812]
    """

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.3,
        mode: str = "global",
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if mode not in ("global", "local"):
            raise ValueError(f"mode must be 'global' or 'local'. Got {mode!r} instead.")
        self.alpha = alpha
        self.beta = beta
        self.mode = mode
        self.register_buffer("global_min_", torch.tensor(float("inf"), dtype=torch.float64))

    def per_sample_loss(self, input: Any, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        logits, features = split_logits_features(input)
        if features is None:
            raise ValueError(
                "bias_ce needs the network's hidden features: pass the output as "
                "(logits, features) or {'logits': ..., 'features': ...}."
            )
        flat = features.detach().reshape(features.shape[0], -1)
        if flat.shape[1] < 2:
            raise ValueError(
                "bias_ce needs at least 2 feature values per row to compute a variance. Got "
                f"features of shape {tuple(features.shape)}."
            )
        variance = flat.var(dim=1).to(logits.dtype)
        low, high = variance.min(), variance.max()
        if self.mode == "global":
            if self.training:  # validation batches must not move the training statistic
                self.global_min_ = torch.minimum(self.global_min_, low.to(torch.float64))
            low = torch.minimum(self.global_min_.to(logits.dtype), low)
        spread = high - variance.min()
        # All-equal variances (or one row) would divide by zero; their weight is then exp(0).
        spread = torch.where(spread > 0, spread, torch.ones_like(spread))
        weight = torch.exp(self.beta * (variance - low) / spread) - 1 + self.alpha
        return -weight * target_log_prob(logits.log_softmax(dim=-1), target)

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, mode={self.mode!r}, "
            f"reduction={self.reduction!r}"
        )
