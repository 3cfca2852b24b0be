"""Progressive self-knowledge distillation (PS-KD): soft targets from the model's last epoch."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_class_target

from ._private import check_logits

__all__ = ["PSKD"]


class PSKD(LossModule):
    r"""Progressive self-knowledge distillation: the model's own last-epoch predictions as targets.

    .. math::

        \alpha_t = \alpha_{\max}\,\frac{t+1}{T_{\mathrm{epochs}}},\qquad
        \tilde y_i = (1-\alpha_t)\,e_{y_i} + \alpha_t\,p_i^{(t-1)},\qquad
        \ell_i = -\sum_c \tilde y_{ic}\,\log\mathrm{softmax}(z_i)_c

    with :math:`t = 0, 1, \dots` the epoch and :math:`p_i^{(t-1)}` the softmax the model gave
    row :math:`i` the last time it was trained on (in the previous epoch). Logits (N, C);
    class-index targets (N,); ``sample_index`` (N,) identifies each training row (the
    estimator supplies it).

    Parameters
    ----------
    alpha_max : float in [0, 1], default=0.8
        :math:`\alpha_T`, the weight of the model's own predictions at the last epoch.
    n_samples : int
        Rows in the training fold (size of the prediction table); a data param.
    n_classes : int
        Number of classes; a data param.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    State: buffer ``predictions_`` (n_samples, n_classes) holds each row's last training-time
    softmax and ``seen_`` (n_samples,) whether a row has an entry; a row without one uses its
    one-hot label (so the first epoch is plain cross-entropy, as in the official code, which
    fills the table with one-hot labels at epoch 0). The table is written only in training
    mode with gradients enabled, after the loss is computed, so validation batches do not
    touch it. A new fit builds a new module, which resets the table; ``partial_fit`` keeps it.
    ``set_epoch(epoch, max_epochs)`` sets :math:`\alpha_t` (capped at :math:`\alpha_{\max}`
    for epochs past ``max_epochs``, e.g. with warm starts); without it :math:`\alpha_t =
    \alpha_{\max}`. Rows not trained on in an epoch keep stale entries. Checked against the
    official code (lgcnsai/PS-KD-Pytorch ``main.py``: ``alpha_t = alpha_T * ((epoch + 1) /
    end_epoch)`` with 0-based epochs, soft targets from ``all_predictions[input_indices]``,
    updated with the detached softmax after the step); it agrees with the catalogue, whose
    ":math:`t/T`" counts epochs from 1.

    References
    ----------
    K. Kim, B. Ji, D. Yoon, S. Hwang. "Self-Knowledge Distillation with Progressive
    Refinement of Targets." ICCV 2021.

    Examples
    --------
    >>> import torch
    >>> loss = PSKD(n_samples=4, n_classes=2, reduction="none")
    >>> loss.set_epoch(1, 2)
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> y, index = torch.tensor([0, 1, 0, 1]), torch.arange(4)
    >>> first = loss(z, y, sample_index=index)   # no recorded predictions yet: plain CE
    >>> [round(v, 4) for v in first.tolist()]
    [0.1269, 0.1269, 0.6931, 0.6931]
    >>> second = loss(z, y, sample_index=index)  # targets now mix in the recorded softmax
    >>> [round(v, 4) for v in second.tolist()]
    [0.3177, 0.3177, 0.6931, 0.6931]
    """

    def __init__(
        self,
        *,
        alpha_max: float = 0.8,
        n_samples: int,
        n_classes: int,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha_max = alpha_max
        self.n_samples = n_samples
        self.n_classes = n_classes
        self.alpha_t_ = float(alpha_max)
        self.register_buffer("predictions_", torch.zeros(int(n_samples), int(n_classes)))
        self.register_buffer("seen_", torch.zeros(int(n_samples), dtype=torch.bool))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Set :math:`\\alpha_t` for the epoch that starts (0-based)."""
        # Capped at alpha_max: epochs past max_epochs (warm starts) must not over-weight.
        self.alpha_t_ = self.alpha_max * min(1.0, (epoch + 1) / max(int(max_epochs), 1))

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_index: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input)
        labels = as_class_target(target)
        if sample_index is None:
            raise ValueError(
                "ps_kd needs sample_index=... (one stable training-row id per row) to look up "
                "each row's predictions from the previous epoch."
            )
        index = torch.as_tensor(sample_index, device=input.device).long().reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.n_samples):
            raise ValueError(
                f"sample_index must lie in [0, n_samples={self.n_samples}). Got values from "
                f"{int(index.min())} to {int(index.max())}."
            )
        one_hot = torch.nn.functional.one_hot(labels, input.shape[1]).to(input.dtype)
        recorded = self.predictions_[index].to(input.dtype)
        previous = torch.where(self.seen_[index].unsqueeze(1), recorded, one_hot)
        alpha = self.alpha_t_
        soft = (1.0 - alpha) * one_hot + alpha * previous
        log_q = input.log_softmax(dim=-1)
        loss = -(soft * log_q).sum(dim=-1)
        if self.training and torch.is_grad_enabled():
            self.predictions_[index] = log_q.detach().exp().to(self.predictions_.dtype)
            self.seen_[index] = True
        return loss

    def extra_repr(self) -> str:
        return (
            f"alpha_max={self.alpha_max}, n_samples={self.n_samples}, n_classes="
            f"{self.n_classes}, reduction={self.reduction!r}"
        )
