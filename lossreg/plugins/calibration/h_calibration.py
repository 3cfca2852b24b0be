"""h-calibration: bounded local calibration error of (row, class) events sorted by probability."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import as_class_target

from ._private import TemperatureMixin, check_logits

__all__ = ["HCalibration"]

_N_BINS = 15  # the reference's number of k-means clusters, here equal-mass bins


def _local_gaps(probs: torch.Tensor, outcomes: torch.Tensor, veclen: int) -> torch.Tensor:
    """Return ``|moving average of (p - o)|`` over ``veclen + 1`` neighbours in sorted order."""
    p, o = probs.flatten(), outcomes.flatten()
    order = torch.argsort(p.detach())
    diff = (p[order] - o[order]).reshape(1, 1, -1)
    half = veclen // 2
    window = torch.full((1, 1, 2 * half + 1), 1.0 / (2 * half + 1), dtype=p.dtype, device=p.device)
    # Zero padding at both ends, as in the reference's convolution.
    return F.conv1d(F.pad(diff, (half, half)), window).flatten().abs()


class HCalibration(TemperatureMixin):
    r"""h-calibration loss (batch-level), fitting a temperature on held-out logits.

    For the calibrated probabilities :math:`P = \mathrm{softmax}(z/T)` (N, C) and one-hot
    outcomes :math:`O`, flatten all (row, class) events, sort them by probability and take the
    local gap :math:`g_j = |\mathrm{MA}_{w}(p - o)_j|` (moving average over :math:`w+1` sorted
    neighbours, zero-padded) and the bounded error :math:`e_j = \max(g_j - \varepsilon, 0)`.

    .. math::

        h(P, O) = \begin{cases} \mathrm{mean}_j\, e_j & \text{unweighted} \\
        \frac{1}{B}\sum_{b=1}^{B} \mathrm{mean}_{j \in b}\, e_j & \text{equal\_mass}
        \end{cases},\qquad
        L = \lambda\,\frac1C\sum_{c=1}^{C} h\big(P_{y \ne c}, O_{y \ne c}\big)

    with :math:`B = 15` bins of consecutive sorted events of (nearly) equal size, the
    leave-one-class-out average over classes :math:`c` (rows of class :math:`c` dropped),
    and :math:`\lambda` = ``lossweight``. Input: held-out logits (N, C); targets: class
    indices (N,). Learnable: ``log_temperature``. Predict link: ``calibrated_softmax``.

    Parameters
    ----------
    veclen : int in [2, inf), default=200
        Window :math:`w` of the moving average (:math:`w + 1` events; odd values act as
        :math:`w - 1`).
    epsilon : float in [0, inf), default=1e-20
        Tolerance :math:`\varepsilon` below which a local gap counts as zero.
    weighting : {"equal_mass", "unweighted"}, default="equal_mass"
        How the per-event errors are aggregated (see above).
    leave_one_out : bool, default=True
        Average over the C leave-one-class-out subsets (the reference's ``IsIter``); ``False``
        uses all rows once.
    lossweight : float in (0, inf), default=1e5
        Scale :math:`\lambda` of the loss.
    reduction : {"mean", "sum"}, default="mean"
        Batch-level: ``"none"`` raises (the statistic has no per-row form); ``"sum"`` is the
        value times the number of rows, as for the other batch-level calibrators.

    Notes
    -----
    Checked against the authors' code (WenjianHuang93/h-Calibration ``loss/hCalib.py``):
    events sorted by probability, moving averages of :math:`p(1-o)` and :math:`(1-p)o` by a
    zero-padded convolution of width :math:`w+1` (their difference is the moving average of
    :math:`p-o`), ``relu(|T| - epsilon)``, leave-one-class-out mean times ``lossweight``; the
    ``unweighted`` mode matches it exactly. The default weighting of the reference
    (``cluaceweighted``) groups the events by 1-D k-means with 15 clusters (faiss) and
    averages the per-cluster means; here the clusters are replaced by 15 equal-mass bins of
    the sorted events, as the catalogue suggests, which avoids the faiss dependency and is
    deterministic. Sorting uses the detached probabilities, so gradients flow through the
    probability values, not the ordering. The paper's calibrator is a learnable monotone map
    of the logits; this version fits one temperature (monotone, accuracy-preserving).
    Needs large batches (several hundred events): fit on the whole calibration set at once
    (``LossCalibratedClassifier`` does). Sample weights are not supported.

    References
    ----------
    W. Huang, G. Cao, J. Xia, J. Chen, H. Wang, J. Zhang. "h-calibration: Rethinking
    Classifier Recalibration with Probabilistic Error-Bounded Objective." IEEE TPAMI 2025,
    doi:10.1109/TPAMI.2025.3582796, arXiv:2506.17968.

    Examples
    --------
    >>> import torch
    >>> loss = HCalibration(veclen=2, weighting="unweighted", lossweight=1.0)
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [4.0, 0.0]])
    >>> round(loss(z, torch.tensor([0, 1, 0, 1])).item(), 4)
    0.196
    """

    def __init__(
        self,
        *,
        veclen: int = 200,
        epsilon: float = 1e-20,
        weighting: str = "equal_mass",
        leave_one_out: bool = True,
        lossweight: float = 1e5,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                "h_calibration is a batch-level statistic: reduction must be 'mean' or 'sum'. "
                f"Got {reduction!r} instead."
            )
        if weighting not in ("equal_mass", "unweighted"):
            raise ValueError(
                f"weighting must be 'equal_mass' or 'unweighted'. Got {weighting!r} instead."
            )
        self.veclen = veclen
        self.epsilon = epsilon
        self.weighting = weighting
        self.leave_one_out = leave_one_out
        self.lossweight = lossweight
        self.reduction = reduction
        self._init_temperature()

    def _h(self, probs: torch.Tensor, outcomes: torch.Tensor) -> torch.Tensor:
        errors = (_local_gaps(probs, outcomes, self.veclen) - self.epsilon).relu()
        if self.weighting == "unweighted" or errors.numel() == 0:
            return errors.mean() if errors.numel() else errors.sum()
        chunks = [c for c in torch.tensor_split(errors, _N_BINS) if c.numel()]
        return torch.stack([c.mean() for c in chunks]).mean()

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if sample_weight is not None:
            raise ValueError(
                "h_calibration cannot honour sample weights: its statistic is over sorted "
                "(row, class) events. Fit without sample_weight."
            )
        check_logits(input)
        labels = as_class_target(target)
        probs = self.calibrate(input).softmax(dim=-1)
        outcomes = F.one_hot(labels, input.shape[1]).to(input.dtype)
        if not self.leave_one_out:
            value = self.lossweight * self._h(probs, outcomes)
        else:
            values = []
            for c in range(input.shape[1]):
                keep = labels != c
                values.append(self._h(probs[keep], outcomes[keep]))
            value = self.lossweight * torch.stack(values).mean()
        return value if self.reduction == "mean" else value * input.shape[0]

    def extra_repr(self) -> str:
        return (
            f"veclen={self.veclen}, epsilon={self.epsilon}, weighting={self.weighting!r}, "
            f"leave_one_out={self.leave_one_out}, lossweight={self.lossweight}, "
            f"reduction={self.reduction!r}"
        )
