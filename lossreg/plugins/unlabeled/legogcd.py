"""LegoGCD's local entropy regularisation: sharpen confident unlabeled rows of known classes."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule

from ._private import check_logits, labeled_mask

__all__ = ["LocalEntropyRegularization"]


class LocalEntropyRegularization(LossModule):
    r"""Soft self-training on unlabeled rows confidently predicted as a known class (LegoGCD).

    .. math::

        m_i = [y_i = -1]\,\big[\max_c \mathrm{softmax}(z_i/T_s)_c \ge \theta\big]
              \,\big[\arg\max_c z_{ic} < C_{known}\big],\qquad
        \ell_i = -m_i \sum_c \mathrm{softmax}(z_i/T)_c\,
                 \log\mathrm{softmax}\big(z_i/T + \tau\log\hat q\big)_c

    Input (N, C_known + n_novel) logits; target: known-class labels, -1 for unlabeled rows.
    :math:`\hat q` is a buffer: the moving average of the batch-mean softmax over all rows,
    :math:`\hat q \leftarrow \mu\hat q + (1-\mu)\,\mathrm{mean}_i\,\mathrm{softmax}(z_i)`,
    updated after each call in training mode (uniform at start). Labelled rows, unconfident
    rows and rows predicted as a novel class give 0.

    Parameters
    ----------
    threshold : float in [0, 1], default=0.7
        Confidence :math:`\theta` of the selection softmax (``--thr``).
    select_temperature : float in (0, inf), default=0.1
        :math:`T_s` of the selection softmax.
    temperature : float in (0, inf), default=0.05
        :math:`T` of both the soft targets and the predictions.
    tau : float in [0, inf), default=0.4
        Weight :math:`\tau` of :math:`\log\hat q` added to the prediction logits.
    momentum : float in [0, 1), default=0.999
        Momentum :math:`\mu` of :math:`\hat q` (``--qhat_m``).
    n_novel : int in [0, inf), default=0
        Number of novel-class outputs after the known classes (the network gets
        ``n_classes + n_novel`` outputs).
    n_classes : int
        Number of known classes :math:`C_{known}` (data param, from the labelled rows).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The catalogue's entry was an unverified reconstruction; this follows the authors' code
    (Cliffia123/LegoGCD ``train.py``): ``mask_old`` (unlabeled, ``max softmax(z/0.1) >=
    thr``, predicted class ``< num_labeled_classes``), ``pseudo_label = softmax(z/0.05)`` (not
    detached there, nor here), ``log_softmax(z/0.05 + 0.4 * log(qhat))`` (the prior is
    *added*), ``nll.mean()`` over all rows, and ``update_qhat`` with momentum 0.999 on the
    detached batch-mean softmax. The code weights this term by 2 inside SimGCD's objective;
    the mean-entropy maximisation the catalogue mentions is SimGCD's own ``me_max`` term (use
    ``marginal_entropy``), not part of this regulariser. Call :meth:`reset_state` to reset
    :math:`\hat q` to uniform.

    References
    ----------
    X. Cao et al. "Solving the Catastrophic Forgetting Problem in Generalized Category
    Discovery." CVPR 2024.

    Examples
    --------
    >>> import torch
    >>> loss = LocalEntropyRegularization(n_classes=2, n_novel=1, reduction="none")
    >>> logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0], [0.3, 0.0, 0.0]])
    >>> [round(v, 4) for v in loss(logits, torch.tensor([-1, -1, -1, 0])).tolist()]
    [0.0, 0.001, 0.0, 0.0]
    """

    def __init__(
        self,
        *,
        threshold: float = 0.7,
        select_temperature: float = 0.1,
        temperature: float = 0.05,
        tau: float = 0.4,
        momentum: float = 0.999,
        n_novel: int = 0,
        n_classes: int,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.threshold = threshold
        self.select_temperature = select_temperature
        self.temperature = temperature
        self.tau = tau
        self.momentum = momentum
        self.n_novel = n_novel
        self.n_classes = n_classes
        width = n_classes + n_novel
        # State across batches: the moving-average class prior q-hat (uniform at start).
        self.register_buffer("qhat_", torch.full((width,), 1.0 / width))

    def reset_state(self) -> None:
        """Reset :math:`\\hat q` to uniform."""
        self.qhat_.fill_(1.0 / self.qhat_.numel())

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        check_logits(input, "local_entropy_reg")
        if input.shape[1] != self.qhat_.numel():
            raise ValueError(
                f"Loss 'local_entropy_reg' needs n_classes + n_novel = {self.qhat_.numel()} "
                f"outputs. Got {input.shape[1]}."
            )
        unlabeled = ~labeled_mask(target)
        with torch.no_grad():
            select = (input / self.select_temperature).softmax(dim=1)
            confident = select.max(dim=1).values >= self.threshold
            known = select.argmax(dim=1) < self.n_classes
            mask = (unlabeled & confident & known).to(input.dtype)
        scaled = input / self.temperature
        soft = scaled.softmax(dim=1)
        log_prior = torch.log(self.qhat_.to(dtype=input.dtype, device=input.device))
        log_pred = (scaled + self.tau * log_prior).log_softmax(dim=1)
        loss = -(soft * log_pred).sum(dim=1) * mask
        if self.training:
            with torch.no_grad():
                mean_p = input.detach().softmax(dim=1).mean(dim=0)
                new = self.momentum * self.qhat_ + (1 - self.momentum) * mean_p.to(self.qhat_)
                self.qhat_.copy_(new)
        return loss

    def extra_repr(self) -> str:
        return (
            f"threshold={self.threshold}, temperature={self.temperature}, tau={self.tau}, "
            f"n_novel={self.n_novel}, n_classes={self.n_classes}, reduction={self.reduction!r}"
        )
