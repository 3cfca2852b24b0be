"""KD++: cross-entropy, knowledge distillation and the feature norm-and-direction (ND) term."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lossreg import LossModule, as_class_target, reduce

from ._private import kl_rows, teacher_tensor

__all__ = ["NormDirection"]


def _pair(input: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(input, Mapping) and "logits" in input and "features" in input:
        input = (input["logits"], input["features"])
    if not (isinstance(input, tuple | list) and len(input) == 2):
        raise ValueError(
            "Loss 'norm_direction' needs the student's features next to its logits: pass the "
            "input as (logits, features), features of shape (N, D) (estimators do this)."
        )
    return input[0], input[1]


class NormDirection(LossModule):
    r"""KD++: cross-entropy plus knowledge distillation plus the norm-and-direction (ND) term.

    With student logits :math:`z_i`, student features :math:`s_i` (N, D), the teacher's
    logits :math:`t_i` (``teacher_logits``) and features :math:`f_i` (``teacher_features``,
    (N, D)), and :math:`c_y` the mean teacher feature of class :math:`y`,

    .. math::

        \ell_i=\mathrm{CE}(z_i,y_i)
        +\beta_e\,T^2\,\mathrm{KL}\big(\mathrm{softmax}(t_i/T)\,\Vert\,\mathrm{softmax}(z_i/T)\big)
        +\lambda\Big(1-\frac{\langle s_i,\hat c_{y_i}\rangle}
        {\max(\lVert s_i\rVert,\lVert f_i\rVert)}\Big),\qquad
        \hat c_y=\frac{c_y}{\lVert c_y\rVert},

    :math:`\beta_e=\kappa\min(1, e/E_w)` at epoch :math:`e` (0-based; ``set_epoch``) with
    :math:`E_w` warm-up epochs (:math:`\beta_e=\kappa` when :math:`E_w=0`). The ND term pulls
    the student's feature onto the direction of its class's teacher centre and its norm up
    to the larger of the two norms.

    The input is the pair ``(logits, features)``: logits (N, C), features (N, D); targets
    class indices (N,).

    Parameters
    ----------
    nd_weight : float >= 0, default=1.0
        :math:`\lambda` (``nd_loss_factor``).
    kd_weight : float >= 0, default=1.0
        :math:`\kappa` (``kd_loss_factor``); 0 gives CE + ND.
    temperature : float > 0, default=4.0
        :math:`T` of the distillation term.
    kd_warmup_epochs : int >= 0, default=20
        :math:`E_w`: the distillation weight grows linearly over these first epochs.
    n_classes : int
        Data param: number of classes C.
    feature_dim : int
        Data param: the width D of the student's features.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    center_sum_, center_weight_ : buffers of shapes (C, D) and (C,)
        Sums of the teacher features of each class and their row weights, over the training
        rows seen; :math:`c_y` is their ratio.
    epoch_ : buffer
        The epoch set by ``set_epoch`` (0 before the first call).

    Notes
    -----
    Checked against WangYZ1608/Knowledge-Distillation-via-ND (``CIFAR/utils.py``:
    ``DirectNormLoss.project_center`` sums ``1 - dot(s, e_c) / max(||s||, ||t||)`` with
    ``e_c = center / ||center||`` and divides by the batch size, times ``nd_loss_factor=1``;
    ``KDLoss``: ``kl_div(log_softmax(s/T), softmax(t/T), 'batchmean') * T^2 *
    kl_loss_factor`` with ``T=4``, ``kd_loss_factor=1``; ``CIFAR/train_cifar_kd.py``:
    ``loss = cls_loss + div_loss * min(1, epoch / warm_up) + norm_dir_loss`` with
    ``warm_up=20``): agreement with the per-row form above. The catalogue's formula (the ND
    term, "total CE + KD + L_ND") agrees. Departure: the reference loads the teacher's class
    centres, the mean teacher embedding of each class over the whole training set,
    precomputed; here they are the running (sample-weighted) means of the
    ``teacher_features`` of the rows seen — updated in training mode from each batch before
    use, read in eval mode together with the batch's own rows — so from the second epoch on
    they are the training fold's class means up to the partial current epoch. Student and
    teacher features must have the same width (the paper adds a projector otherwise).
    Teacher logits and features must come from a teacher fitted out-of-fold for honest
    cross-validation.

    References
    ----------
    Y. Wang, L. Cheng, M. Duan, Y. Wang, Z. Feng, S. Kong, "Improving Knowledge Distillation
    via Regularizing Feature Direction and Norm", ECCV 2024, arXiv:2305.17007.

    Examples
    --------
    >>> import torch
    >>> loss = NormDirection(n_classes=2, feature_dim=2, kd_warmup_epochs=0, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> out = loss((logits, features), torch.tensor([0, 1, 0]), teacher_logits=teacher,
    ...            teacher_features=torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    >>> [round(v, 4) for v in out.tolist()]
    [0.6269, 0.2484, 1.1101]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        feature_dim: int,
        nd_weight: float = 1.0,
        kd_weight: float = 1.0,
        temperature: float = 4.0,
        kd_warmup_epochs: int = 20,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0. Got {temperature!r} instead.")
        self.nd_weight = nd_weight
        self.kd_weight = kd_weight
        self.temperature = temperature
        self.kd_warmup_epochs = kd_warmup_epochs
        self.n_classes = int(n_classes)
        self.feature_dim = int(feature_dim)
        self.register_buffer(
            "center_sum_", torch.zeros(self.n_classes, self.feature_dim, dtype=torch.float64)
        )
        self.register_buffer("center_weight_", torch.zeros(self.n_classes, dtype=torch.float64))
        self.register_buffer("epoch_", torch.zeros((), dtype=torch.long))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Record the epoch; the distillation weight follows it during the warm-up."""
        self.epoch_.fill_(int(epoch))

    def kd_factor(self) -> float:
        """:math:`\\beta_e` of the current epoch."""
        if self.kd_warmup_epochs <= 0:
            return float(self.kd_weight)
        return float(self.kd_weight) * min(1.0, int(self.epoch_) / self.kd_warmup_epochs)

    def forward(
        self,
        input: Any,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return CE + KD + ND, reduced over the rows (the weights also weigh the centres)."""
        rows = self.per_sample_loss(input, target, sample_weight=sample_weight, **extras)
        return reduce(rows, self.reduction, sample_weight)

    def per_sample_loss(
        self,
        input: Any,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        teacher_logits: torch.Tensor | None = None,
        teacher_features: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return CE + KD + ND of each row, shape (N,)."""
        logits, features = _pair(input)
        labels = as_class_target(target).to(logits.device)
        log_p = logits.log_softmax(dim=-1)
        ce = -log_p.gather(1, labels[:, None])[:, 0]
        teacher = teacher_tensor(teacher_logits, logits)
        t = self.temperature
        kd = t * t * kl_rows((teacher / t).log_softmax(dim=-1), (logits / t).log_softmax(dim=-1))
        nd = self._nd(features.to(log_p.dtype), labels, teacher_features, sample_weight)
        return ce + self.kd_factor() * kd + self.nd_weight * nd

    def _nd(
        self,
        s: torch.Tensor,
        labels: torch.Tensor,
        teacher_features: torch.Tensor | None,
        sample_weight: torch.Tensor | None,
    ) -> torch.Tensor:
        if teacher_features is None:
            raise ValueError(
                "Loss 'norm_direction' needs the teacher's features: pass teacher_features=... "
                "(one row of D values per training row) to fit or forward."
            )
        f = torch.as_tensor(teacher_features, device=s.device).to(s.dtype).detach()
        if f.shape != s.shape:
            raise ValueError(
                f"teacher_features has shape {tuple(f.shape)} but the student's features have "
                f"shape {tuple(s.shape)}; the teacher's features must be as wide as the "
                "student's (set module__hidden_units so the last hidden layer matches)."
            )
        if s.shape[1] != self.feature_dim:
            raise ValueError(
                f"Loss 'norm_direction' was built for features of width {self.feature_dim}; got "
                f"{s.shape[1]}."
            )
        weight = torch.ones(len(labels), dtype=s.dtype, device=s.device)
        if sample_weight is not None:
            weight = torch.as_tensor(sample_weight, dtype=s.dtype, device=s.device).reshape(-1)
        one_hot = nn.functional.one_hot(labels, self.n_classes).to(s.dtype) * weight[:, None]
        sums = self.center_sum_.to(s.dtype) + one_hot.T @ f
        mass = self.center_weight_.to(s.dtype) + one_hot.sum(dim=0)
        if self.training:  # validation batches read the centres without moving them
            self.center_sum_.copy_(sums.detach())
            self.center_weight_.copy_(mass.detach())
        centers = sums[labels]
        # A zero centre has no direction: tiny keeps the division finite (the row then gets 1).
        direction = centers / torch.linalg.vector_norm(centers, dim=1, keepdim=True).clamp_min(
            torch.finfo(s.dtype).tiny
        )
        scale = torch.maximum(
            torch.linalg.vector_norm(s, dim=1), torch.linalg.vector_norm(f, dim=1)
        ).clamp_min(torch.finfo(s.dtype).tiny)  # both zero: the ND term is 1
        return 1 - (s * direction).sum(dim=1) / scale

    def extra_repr(self) -> str:
        return (
            f"nd_weight={self.nd_weight!r}, kd_weight={self.kd_weight!r}, "
            f"temperature={self.temperature!r}, kd_warmup_epochs={self.kd_warmup_epochs!r}, "
            f"reduction={self.reduction!r}"
        )
