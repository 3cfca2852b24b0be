"""Correctness-aware calibration: class-balanced squared gap between confidence and correctness."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import as_class_target, reduce

from ._private import TemperatureMixin, check_logits

__all__ = ["CorrectnessAware"]


class CorrectnessAware(TemperatureMixin):
    r"""Correctness-aware calibration loss (batch-level), fitting a temperature.

    .. math::

        c_i = \mathbb 1[\arg\max_k z_{ik} = y_i],\quad
        \mathrm{conf}_i = \max_k \mathrm{softmax}(z_i/T)_k,\quad
        w_i = \begin{cases}1-\mathrm{acc} & c_i = 1\\ \mathrm{acc} & c_i = 0\end{cases},
        \qquad
        L = \frac{\sum_i w_i(\mathrm{conf}_i - c_i)^2}{\sum_i w_i}

    with :math:`\mathrm{acc}` the batch accuracy. Input: held-out logits (N, C) of a fitted
    model; targets: class indices (N,). Learnable: ``log_temperature`` (:math:`T = e^\theta`).
    Predict link: softmax of :math:`z / T` (``calibrated_softmax``).

    Parameters
    ----------
    balanced : bool, default=True
        Weigh correct rows by :math:`1-\mathrm{acc}` and wrong rows by :math:`\mathrm{acc}`, so
        both groups count equally; ``False`` weighs every row 1 (a Brier score of the top-1
        confidence against correctness).
    reduction : {"mean", "sum"}, default="mean"
        ``"mean"`` is :math:`L`; ``"sum"`` is :math:`L` times the total row weight. ``"none"``
        raises: the weights depend on the whole batch.

    Notes
    -----
    Batch-level: :math:`\mathrm{acc}` is the accuracy of the batch, so fit on the whole
    calibration set at once (``LossCalibratedClassifier`` does) or on large batches. Sample
    weights multiply :math:`w_i` and weigh the accuracy. A batch that is all correct or all
    wrong puts zero weight on every row; the loss is then 0 (the reference code divides 0 by
    0). Correctness comes from the uncalibrated logits; a temperature keeps the argmax, so it
    is the calibrated prediction's correctness too. Checked against the authors' code
    (liuyvchi/Correctness-aware-calibration ``temperature_scaling_CA.py``: weights
    ``1 - acc`` / ``acc``, ``mse(conf, correctness)``, ``sum(w * loss) / sum(w)``); it agrees
    with the catalogue. The paper's calibrator is a small network predicting a per-row
    temperature from features of transformed copies of the input (clamped to [0.1, 10]);
    this tabular version fits one scalar temperature. As a training loss it gives no gradient
    toward the correct class.

    References
    ----------
    Y. Liu, L. Wang, Y. Zou, J. Zou, L. Zheng. "Optimizing Calibration by Gaining Aware of
    Prediction Correctness." arXiv:2404.13016.

    Examples
    --------
    >>> import torch
    >>> loss = CorrectnessAware()
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [4.0, 0.0]])
    >>> round(loss(z, torch.tensor([0, 1, 0, 1])).item(), 4)
    0.499
    """

    def __init__(self, *, balanced: bool = True, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"correctness_aware is a batch-level loss: reduction must be 'mean' or 'sum'. "
                f"Got {reduction!r} instead."
            )
        self.balanced = balanced
        self.reduction = reduction
        self._init_temperature()

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input)
        labels = as_class_target(target)
        correct = (input.argmax(dim=-1) == labels).to(input.dtype)
        confidence = self.calibrate(input).softmax(dim=-1).amax(dim=-1)
        if sample_weight is None:
            rows = torch.ones_like(correct)
        else:
            rows = torch.as_tensor(sample_weight, dtype=input.dtype, device=input.device)
            rows = rows.reshape(-1)
        weight = rows
        if self.balanced:
            accuracy = reduce(correct, "mean", rows).detach()
            weight = rows * torch.where(correct > 0, 1.0 - accuracy, accuracy)
        mean = reduce((confidence - correct).square(), "mean", weight)
        return mean if self.reduction == "mean" else mean * rows.sum()

    def extra_repr(self) -> str:
        return f"balanced={self.balanced}, reduction={self.reduction!r}"
