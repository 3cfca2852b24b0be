"""KD-Loss for regression with a tough and a tolerant teacher (reflected assistive terms)."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_float_target

__all__ = ["KDAssistiveRegression"]


def _split_teachers(
    teacher_logits: torch.Tensor | None, input: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if teacher_logits is None:
        raise ValueError(
            "kd_assistive_regression needs teacher_logits=... holding the tough teacher's "
            "predictions followed by the tolerant teacher's, shape (N, 2K)."
        )
    teachers = torch.as_tensor(teacher_logits, device=input.device).to(input.dtype).detach()
    k = input.shape[1] if input.ndim == 2 else 1
    teachers = teachers.reshape(input.shape[0], -1)
    if teachers.shape[1] != 2 * k:
        raise ValueError(
            f"teacher_logits must hold two teachers' predictions, shape (N, 2K) = "
            f"({input.shape[0]}, {2 * k}). Got shape {tuple(teachers.shape)}."
        )
    return teachers[:, :k].reshape(input.shape), teachers[:, k:].reshape(input.shape)


class KDAssistiveRegression(LossModule):
    r"""KD-Loss for multi-output regression with a tough and a tolerant teacher.

    Each teacher :math:`T` is reflected to the student's side of the target,
    :math:`T' = G + \mathrm{sign}(P-G)|T-G|`, with inner bound
    :math:`B = G + 0.15\,\mathrm{sign}(P-G)|T-G|`; its weight map is :math:`\alpha` where
    :math:`P` lies beyond :math:`T'`, :math:`\alpha^-` where it lies between :math:`B` and
    :math:`T'` (inclusive), 0 otherwise. With :math:`d = |G - T_{tol}|`:

    .. math::

        \mathrm{main} = \begin{cases} 3|G-P| & |G-P| \le d \\ (G-P)^2 + 3d - d^2 & \text{else}
        \end{cases},\qquad
        \ell_i = \frac1K\sum_k \big[w_{main}\,\mathrm{main}
        + w_{tough}\,m_{tough}|T'_{tough}-P| + w_{tol}\,m_{tol}|T'_{tol}-P|\big]_{ik}

    Predictions :math:`P` (N, K) or (N,); float targets :math:`G` of the same shape; the two
    teachers' predictions as ``teacher_logits`` (N, 2K): the tough teacher's K columns, then
    the tolerant teacher's. Predict link: identity.

    Parameters
    ----------
    alpha_tough, alpha_tough_inner : float, defaults 1.9 and -0.45
        :math:`\alpha` and :math:`\alpha^-` of the tough teacher.
    alpha_tol, alpha_tol_inner : float, defaults 1.8 and -0.4
        :math:`\alpha` and :math:`\alpha^-` of the tolerant teacher.
    main_weight, tough_weight, tol_weight : float in [0, inf), defaults 2.0, 1.0, 1.0
        Weights of the main term and of the two assistive terms.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The reference averages each of the three terms over all N x K entries and adds them;
    that equals the mean over rows of :math:`\ell_i`, so the loss has a per-row form and
    honours sample weights. The main term is continuous at :math:`|G-P| = d` (both branches
    are :math:`3d`) but its slope jumps from 3 to :math:`2d`; a tolerant teacher equal to the
    target (:math:`d = 0`) makes it purely quadratic. The weight maps and reflections carry
    no gradient (signs and comparisons), as in the reference. Checked against the authors'
    TensorFlow code (aliprf/KD-Loss ``custom_Losses.py``, ``kd_loss``); defaults from its
    ``student_train.py`` (alphas 1.9, -0.45, 1.8, -0.4) and ``main.py`` (weights 2, 1, 1),
    which the catalogue had left unconfirmed. A negative :math:`\alpha^-` pushes a student
    that is already between the bound and the teacher further toward the target.

    References
    ----------
    A. P. Fard, M. H. Mahoor. "Facial Landmark Points Detection Using Knowledge
    Distillation-Based Neural Networks." arXiv:2111.07047.

    Examples
    --------
    >>> import torch
    >>> loss = KDAssistiveRegression(reduction="none")
    >>> pred = torch.tensor([[0.5], [1.2], [-0.3], [2.0]])
    >>> target = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    >>> teachers = torch.tensor([[0.2, 0.1], [0.9, 1.1], [0.4, -0.2], [1.5, 0.5]])
    >>> out = loss(pred, target, teacher_logits=teachers)
    >>> [round(v, 4) for v in out.tolist()]
    [2.37, 1.03, 1.435, 6.35]
    """

    def __init__(
        self,
        *,
        alpha_tough: float = 1.9,
        alpha_tough_inner: float = -0.45,
        alpha_tol: float = 1.8,
        alpha_tol_inner: float = -0.4,
        main_weight: float = 2.0,
        tough_weight: float = 1.0,
        tol_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha_tough = alpha_tough
        self.alpha_tough_inner = alpha_tough_inner
        self.alpha_tol = alpha_tol
        self.alpha_tol_inner = alpha_tol_inner
        self.main_weight = main_weight
        self.tough_weight = tough_weight
        self.tol_weight = tol_weight

    @staticmethod
    def _assist(
        pred: torch.Tensor, target: torch.Tensor, teacher: torch.Tensor, outer: float, inner: float
    ) -> torch.Tensor:
        with torch.no_grad():
            side = torch.sign(pred - target)
            gap = (teacher - target).abs()
            reflected = target + side * gap
            bound = target + side * gap * 0.15
            beyond = torch.sign(pred - reflected) * torch.sign(reflected - target) > 0
            between = torch.sign(reflected - pred) * torch.sign(pred - bound) >= 0
            weight = beyond.to(pred.dtype) * outer + between.to(pred.dtype) * inner
        return weight * (reflected - pred).abs()

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        teacher_logits: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        target = as_float_target(target, input)
        tough, tol = _split_teachers(teacher_logits, input)
        error = (target - input).abs()
        d = (target - tol).abs()
        main = torch.where(error <= d, 3.0 * error, error.square() + 3.0 * d - d.square())
        total = self.main_weight * main
        total = total + self.tough_weight * self._assist(
            input, target, tough, self.alpha_tough, self.alpha_tough_inner
        )
        total = total + self.tol_weight * self._assist(
            input, target, tol, self.alpha_tol, self.alpha_tol_inner
        )
        return total.reshape(input.shape[0], -1).mean(dim=1)

    def extra_repr(self) -> str:
        return (
            f"alpha_tough={self.alpha_tough}, alpha_tough_inner={self.alpha_tough_inner}, "
            f"alpha_tol={self.alpha_tol}, alpha_tol_inner={self.alpha_tol_inner}, "
            f"main_weight={self.main_weight}, tough_weight={self.tough_weight}, "
            f"tol_weight={self.tol_weight}, reduction={self.reduction!r}"
        )
