"""Ordinal losses over K ordered levels: squared EMD, number-token losses, distance-smoothed CE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lossreg import LossModule, as_class_target

from ._private import level_values, vector_buffer

__all__ = ["DistanceSmoothedCE", "NTLMeanSquared", "NTLWasserstein", "OrdinalEMD", "expected_level"]


def expected_level(output: torch.Tensor, levels: torch.Tensor | None = None) -> torch.Tensor:
    r"""Return the expected level value :math:`\sum_k p_k v_k` of (N, K) logits, shape (N,)."""
    values = level_values(levels, output.shape[1], output, "expected_level")
    return output.softmax(dim=1) @ values


def _check_logits(input: torch.Tensor, loss: str) -> None:
    if input.ndim != 2 or input.shape[1] < 2:
        raise ValueError(
            f"Loss {loss!r} takes logits over K >= 2 ordered levels, shape (N, K). Got shape "
            f"{tuple(input.shape)}."
        )


def _target_values(target: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Level value of each row: ``values[label]`` for integer labels, the float itself else."""
    if target.is_floating_point():
        return target.reshape(-1).to(values.dtype)
    return values[as_class_target(target)]


class _LevelLoss(LossModule):
    """Shared constructor of the losses with optional level values."""

    def __init__(self, *, levels: Sequence[float] | None, reduction: str) -> None:
        super().__init__(reduction=reduction)
        self.levels = levels
        self.register_buffer("levels_", vector_buffer(levels))

    def expected_level(self, output: torch.Tensor) -> torch.Tensor:
        r"""Return the expected level value :math:`\sum_k p_k v_k` per row, shape (N,)."""
        return expected_level(output, self.levels_)


class OrdinalEMD(LossModule):
    r"""Earth mover's distance between predicted and target distributions over ordered levels.

    .. math::

        \ell_i = \sum_{k=1}^{K} \big|F_{q,i}(k) - F_{p,i}(k)\big|^{r},
        \qquad F_{p,i}(k) = \sum_{j \le k} \mathrm{softmax}(z_i)_j

    with :math:`F_q` the CDF of the target: a point mass at the label for integer targets
    (N,), or a per-row distribution for float targets (N, K) (crowd votes, soft labels).

    Parameters
    ----------
    r : {1, 2}, default=2
        2 gives the squared EMD of Hou et al.; 1 the 1-Wasserstein distance with unit level
        spacing.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against the closed form of 1-D optimal transport between categorical
    distributions on equally spaced levels, which Hou et al. use as
    :math:`\mathrm{EMD}^2 = \sum_k (\mathrm{CDF}_p(k)-\mathrm{CDF}_q(k))^2` (no
    normalisation). The DPRM paper's own cost matrix and solver were not checked, so this is
    not claimed to reproduce it. Level spacing is uniform; the last term is always 0. With
    ``r=1`` the loss is not differentiable where the CDFs cross (subgradient 0).

    References
    ----------
    L. Hou, C.-P. Yu, D. Samaras. "Squared Earth Mover's Distance-based Loss for Training Deep
    Neural Networks." 2016.
    D. Zhu et al. "Aligning Crowd Feedback via Distributional Preference Reward Modeling."
    2024.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    >>> loss = OrdinalEMD(reduction="none")
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 0, 2, 1])).tolist()]
    [0.0567, 0.8097, 0.0567, 0.2222]
    """

    def __init__(self, *, r: int = 2, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.r = r

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        _check_logits(input, "ordinal_emd")
        cdf_p = input.softmax(dim=1).cumsum(dim=1)
        if target.is_floating_point() and target.ndim == 2 and target.shape[1] > 1:
            if target.shape != input.shape:
                raise ValueError(
                    f"Distribution targets must have the output's shape {tuple(input.shape)}. "
                    f"Got {tuple(target.shape)}."
                )
            cdf_q = target.to(input.dtype).cumsum(dim=1)
        else:
            labels = as_class_target(target)
            ks = torch.arange(input.shape[1], device=input.device)
            cdf_q = (ks[None, :] >= labels[:, None]).to(input.dtype)
        gap = (cdf_q - cdf_p).abs()
        return (gap.square() if self.r == 2 else gap.pow(self.r)).sum(dim=1)

    def extra_repr(self) -> str:
        return f"r={self.r}, reduction={self.reduction!r}"


class NTLWasserstein(_LevelLoss):
    r"""Number-token loss, Wasserstein form: expected distance of the level to the target.

    .. math::

        \ell_i = \sum_k p_{ik}\,|v_k - y_i|, \qquad p_i = \mathrm{softmax}(z_i)

    the 1-Wasserstein distance between the predicted categorical over level values
    :math:`v_k` and a point mass at :math:`y_i`. Input (N, K) logits; target: level indices
    (N,) (then :math:`y_i = v_{\text{label}}`) or float values (N,) (any real :math:`y_i`).

    Parameters
    ----------
    levels : sequence of K floats, or None, default=None
        Level values :math:`v_k`; ``None`` uses 0, 1, ..., K-1 (class indices).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against ``NTLoss.forward`` of ai4sd/number-token-loss (``ntloss/core.py``):
    ``(|y - v| * softmax(number-token logits)).sum(-1)``, the same formula restricted there to
    the digit tokens. The stored version has no ``squash_factor``, so it is not offered. The
    paper recommends ``cross_entropy + 0.3 * ntl_wasserstein`` (build it with
    ``weighted_sum``); alone, with float targets, mass can sit on the two nearest levels.

    References
    ----------
    J. Zausinger et al. "Regress, Don't Guess -- A Regression-like Loss on Number Tokens for
    Language Models." ICML 2025, arXiv:2411.02083.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    >>> loss = NTLWasserstein(reduction="none")
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 0, 2, 1])).tolist()]
    [0.3195, 1.0, 0.3195, 0.6667]
    """

    def __init__(self, *, levels: Sequence[float] | None = None, reduction: str = "mean") -> None:
        super().__init__(levels=levels, reduction=reduction)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        _check_logits(input, "ntl_wasserstein")
        values = level_values(self.levels_, input.shape[1], input, "ntl_wasserstein")
        y = _target_values(target, values)
        distance = (values[None, :] - y[:, None]).abs()
        return (input.softmax(dim=1) * distance).sum(dim=1)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, reduction={self.reduction!r}"


class NTLMeanSquared(_LevelLoss):
    r"""Number-token loss, MSE form: squared error of the expected level value.

    .. math::

        \ell_i = \Big(\sum_k p_{ik} v_k - y_i\Big)^2, \qquad p_i = \mathrm{softmax}(z_i)

    Input (N, K) logits; target: level indices (N,) or float values (N,).

    Parameters
    ----------
    levels : sequence of K floats, or None, default=None
        Level values :math:`v_k`; ``None`` uses 0, 1, ..., K-1.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against ``NTLossDotProduct`` of ai4sd/number-token-loss (``ntloss/core.py``):
    ``mse_loss(sum(softmax * values), y)``. Only the mean is constrained (many
    distributions give 0): combine with ``cross_entropy`` (paper: weight 0.3).

    References
    ----------
    J. Zausinger et al. "Regress, Don't Guess -- A Regression-like Loss on Number Tokens for
    Language Models." ICML 2025, arXiv:2411.02083.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    >>> loss = NTLMeanSquared(reduction="none")
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 0, 2, 1])).tolist()]
    [0.1021, 1.0, 0.1021, 0.0]
    """

    def __init__(self, *, levels: Sequence[float] | None = None, reduction: str = "mean") -> None:
        super().__init__(levels=levels, reduction=reduction)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        _check_logits(input, "ntl_mse")
        values = level_values(self.levels_, input.shape[1], input, "ntl_mse")
        y = _target_values(target, values)
        return (input.softmax(dim=1) @ values - y).square()

    def extra_repr(self) -> str:
        return f"levels={self.levels}, reduction={self.reduction!r}"


class DistanceSmoothedCE(_LevelLoss):
    r"""Cross-entropy against labels smoothed by the distance between classes (PIGEON, SORD).

    .. math::

        q_{ic} = \exp\!\big(-(d_{y_i c} - \min_{c'} d_{y_i c'})/\tau\big),
        \qquad \ell_i = -\sum_c q_{ic}\log p_{ic}

    (:math:`q` divided by :math:`\sum_c q_{ic}` when ``normalize``). Distances
    :math:`d_{jc}`: the ``distance`` matrix if given, else :math:`|v_j - v_c|` between level
    values (``levels``, default 0..C-1: ordinal classes). Input (N, C) logits; target class
    indices (N,).

    Parameters
    ----------
    tau : float in (0, inf), default=1.0
        Temperature in distance units (one level by default).
    normalize : bool, default=False
        Divide :math:`q_i` by its sum. ``False`` is the reference (PIGEON) behaviour.
    levels : sequence of C floats, or None, default=None
        Class positions :math:`v_c` on a line; ``None`` uses 0, 1, ..., C-1.
    distance : sequence of C*C floats >= 0, or None, default=None
        A class-distance matrix (row-major, e.g. haversine km between cell centroids); it
        overrides ``levels``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against ``smooth_labels`` in LukasHaas/PIGEON:
    ``exp(-(d - d.min(dim=-1)) / temperature)``, not normalised there (its largest entry is
    1), so rows near many classes weigh more; the loss scale varies per row. PIGEON's
    :math:`\tau = 75` km applies to haversine distances, not to level units; the default here
    is 1 level (SORD-style ordinal use). PIGEON measures the distance from the row's own
    coordinates, which needs per-row coordinates (a fit extra lossreg lacks); here the row's
    class stands for its location. No alias ``haversine_smoothed_ce``: this loss computes no
    haversine distance itself.

    References
    ----------
    L. Haas, M. Skreta, S. Alberti, C. Finn. "PIGEON: Predicting Image Geolocations." CVPR
    2024.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    >>> loss = DistanceSmoothedCE(reduction="none")
    >>> [round(v, 4) for v in loss(logits, torch.tensor([0, 0, 2, 1])).tolist()]
    [1.3665, 2.6308, 1.3665, 1.9069]
    """

    def __init__(
        self,
        *,
        tau: float = 1.0,
        normalize: bool = False,
        levels: Sequence[float] | None = None,
        distance: Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(levels=levels, reduction=reduction)
        self.tau = tau
        self.normalize = normalize
        self.distance = distance
        self.register_buffer("distance_", vector_buffer(distance))

    def smoothed_targets(self, labels: torch.Tensor, n_classes: int, like: torch.Tensor):
        """Return the (N, C) smoothed targets :math:`q` of integer labels."""
        if self.distance_ is not None:
            if self.distance_.numel() != n_classes * n_classes:
                raise ValueError(
                    f"distance has {self.distance_.numel()} entries; a {n_classes} x "
                    f"{n_classes} class-distance matrix needs {n_classes * n_classes}."
                )
            matrix = self.distance_.to(dtype=like.dtype, device=like.device)
            matrix = matrix.reshape(n_classes, n_classes)
        else:
            values = level_values(self.levels_, n_classes, like, "distance_smoothed_ce")
            matrix = (values[:, None] - values[None, :]).abs()
        rows = matrix[labels]
        q = torch.exp(-(rows - rows.min(dim=1, keepdim=True).values) / self.tau)
        return q / q.sum(dim=1, keepdim=True) if self.normalize else q

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        _check_logits(input, "distance_smoothed_ce")
        labels = as_class_target(target)
        q = self.smoothed_targets(labels, input.shape[1], input)
        return -(q * input.log_softmax(dim=1)).sum(dim=1)

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, normalize={self.normalize}, levels={self.levels}, "
            f"distance={'given' if self.distance is not None else None}, "
            f"reduction={self.reduction!r}"
        )
