"""Margin-softmax losses: cosines to learnable class weights (CosFace, ArcFace, SphereFace ...)."""

from __future__ import annotations

import math
from typing import Any

import torch

from lossreg import as_class_target

from ._classes import ClassVectors, replace_target_logit

__all__ = ["ArcFace", "CosFace", "NormalizedSoftmax", "SphereFace"]

# acos has an infinite derivative at +-1; cosines are kept this far inside [-1, 1].
_ACOS_EPS = 1e-7


def _angle(cosine: torch.Tensor) -> torch.Tensor:
    return torch.acos(cosine.clamp(-1 + _ACOS_EPS, 1 - _ACOS_EPS))


class CosFace(ClassVectors):
    r"""CosFace / large margin cosine loss: an additive cosine margin on the target class.

    .. math::

        \ell_i = -\log\frac{e^{s(\cos\theta_{y_i}-m)}}
                 {e^{s(\cos\theta_{y_i}-m)}+\sum_{j\ne y_i}e^{s\cos\theta_j}}

    with :math:`\cos\theta_j` the cosine between the embedding and the learnable class weight
    :math:`w_j` (both L2-normalised).

    Input: embeddings (N, ``embedding_dim``) float; target: int labels (N,) in
    ``[0, n_classes)``. ``logits(embeddings)`` returns :math:`s\cos\theta` (no margin).

    Parameters
    ----------
    scale : float in (0, inf), default=64.0
        :math:`s` (tuned for thousands of classes; use 10-30 for few classes).
    margin : float in [0, 1), default=0.35
        :math:`m` (paper range 0.25-0.45).
    n_classes, embedding_dim : int
        Data params: the number of classes and the network's output width.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Matches PML's ``CosFaceLoss`` (its ``W`` is the transpose of ``weight``). The class weights
    are learnable and must reach the optimizer.

    References
    ----------
    H. Wang, Y. Wang, Z. Zhou, X. Ji, D. Gong, J. Zhou, Z. Li, W. Liu. "CosFace: Large Margin
    Cosine Loss for Deep Face Recognition." CVPR 2018, arXiv:1801.09414.

    Examples
    --------
    >>> import torch
    >>> loss = CosFace(n_classes=2, embedding_dim=2, scale=4.0, reduction="none")
    >>> _ = loss.weight.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.0716, 1.0375, 0.0716, 0.0149]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        scale: float = 64.0,
        margin: float = 0.35,
        reduction: str = "mean",
    ) -> None:
        super().__init__(n_classes=n_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.scale = scale
        self.margin = margin

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`s\\cos\\theta`, the (N, C) logits without margin."""
        return self.scale * self.cosine(embeddings)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        cosine = self.cosine(input)
        target_cos = cosine.gather(1, labels.unsqueeze(1)).squeeze(1)
        return replace_target_logit(
            self.scale * cosine, labels, self.scale * (target_cos - self.margin)
        )

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, scale={self.scale}, "
            f"margin={self.margin}, reduction={self.reduction!r}"
        )


class ArcFace(ClassVectors):
    r"""ArcFace / additive angular margin loss.

    .. math::

        \ell_i = -\log\frac{e^{s\,\psi(\theta_{y_i})}}
                 {e^{s\,\psi(\theta_{y_i})}+\sum_{j\ne y_i}e^{s\cos\theta_j}}, \qquad
        \psi(\theta) = \begin{cases}\cos(\theta+m) & \theta\le\pi-m\\
                       \cos\theta - m\sin m & \text{otherwise}\end{cases}

    The second branch keeps the target logit decreasing in :math:`\theta` (the official
    "easy margin off" form). Cosines are clamped to :math:`[-1+10^{-7}, 1-10^{-7}]` before
    ``acos``, whose derivative is infinite at :math:`\pm1`.

    Input: embeddings (N, ``embedding_dim``) float; target: int labels (N,).
    ``logits(embeddings)`` returns :math:`s\cos\theta` (no margin).

    Parameters
    ----------
    scale : float in (0, inf), default=64.0
        :math:`s`.
    margin : float in [0, pi/2), default=0.5
        :math:`m` in radians.
    n_classes, embedding_dim : int
        Data params.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    PML 2.9's ``ArcFaceLoss`` takes the margin in **degrees** (default 28.6 = 0.5 rad) and
    converts it with ``np.radians``; the reference test passes ``degrees(margin)``.

    References
    ----------
    J. Deng, J. Guo, N. Xue, S. Zafeiriou. "ArcFace: Additive Angular Margin Loss for Deep
    Face Recognition." CVPR 2019, arXiv:1801.07698.

    Examples
    --------
    >>> import torch
    >>> loss = ArcFace(n_classes=2, embedding_dim=2, scale=4.0, reduction="none")
    >>> _ = loss.weight.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.0295, 1.1317, 0.0295, 0.0171]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        scale: float = 64.0,
        margin: float = 0.5,
        reduction: str = "mean",
    ) -> None:
        super().__init__(n_classes=n_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.scale = scale
        self.margin = margin

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`s\\cos\\theta`, the (N, C) logits without margin."""
        return self.scale * self.cosine(embeddings)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        cosine = self.cosine(input)
        target_cos = cosine.gather(1, labels.unsqueeze(1)).squeeze(1)
        theta = _angle(target_cos)
        psi = torch.where(
            theta <= math.pi - self.margin,
            torch.cos(theta + self.margin),
            target_cos - self.margin * math.sin(self.margin),
        )
        return replace_target_logit(self.scale * cosine, labels, self.scale * psi)

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, scale={self.scale}, "
            f"margin={self.margin}, reduction={self.reduction!r}"
        )


class SphereFace(ClassVectors):
    r"""SphereFace / A-Softmax: a multiplicative angular margin with normalised class weights.

    .. math::

        \ell_i = -\log\frac{e^{\lVert f_i\rVert\psi(\theta_{y_i})}}
                 {e^{\lVert f_i\rVert\psi(\theta_{y_i})}
                  +\sum_{j\ne y_i}e^{\lVert f_i\rVert\cos\theta_j}},
        \qquad \psi(\theta) = (-1)^k\cos(m\theta)-2k,
        \ \theta\in[\tfrac{k\pi}{m},\tfrac{(k+1)\pi}{m}]

    The embedding norm is kept (only the class weights are normalised).

    Input: embeddings (N, ``embedding_dim``) float; target: int labels (N,).
    ``logits(embeddings)`` returns :math:`\lVert f\rVert\cos\theta` (no margin).

    Parameters
    ----------
    margin : int in [1, inf), default=4
        :math:`m`; 1 gives the normalised-weight softmax.
    n_classes, embedding_dim : int
        Data params.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The paper trains with an annealed mixture :math:`(\lambda\cos\theta+\psi)/(1+\lambda)`,
    :math:`\lambda` decaying from 1000 to 5; it is not applied here (the catalogue warns the
    loss is unstable without it - prefer ``cosface``/``arcface``). Matches PML's
    ``SphereFaceLoss`` with ``scale=1`` (PML uses the multiple-angle polynomial for
    :math:`\cos(m\theta)`; ``torch.cos(m * acos(c))`` is used here).

    References
    ----------
    W. Liu, Y. Wen, Z. Yu, M. Li, B. Raj, L. Song. "SphereFace: Deep Hypersphere Embedding for
    Face Recognition." CVPR 2017, arXiv:1704.08063.

    Examples
    --------
    >>> import torch
    >>> loss = SphereFace(n_classes=2, embedding_dim=2, reduction="none")
    >>> _ = loss.weight.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[2.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.1269, 1.6552, 0.3133, 0.8221]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        margin: int = 4,
        reduction: str = "mean",
    ) -> None:
        super().__init__(n_classes=n_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.margin = margin

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\lVert f\\rVert\\cos\\theta`, the (N, C) logits without margin."""
        return embeddings.norm(dim=1, keepdim=True) * self.cosine(embeddings)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        cosine = self.cosine(input)
        norm = input.norm(dim=1)
        theta = _angle(cosine.gather(1, labels.unsqueeze(1)).squeeze(1))
        k = torch.floor(theta.detach() * self.margin / math.pi)
        psi = (1 - 2 * torch.remainder(k, 2)) * torch.cos(self.margin * theta) - 2 * k
        return replace_target_logit(norm.unsqueeze(1) * cosine, labels, norm * psi)

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"margin={self.margin}, reduction={self.reduction!r}"
        )


class NormalizedSoftmax(ClassVectors):
    r"""Normalized softmax: cross-entropy on temperature-scaled cosine logits.

    .. math::

        \ell_i = -\log\frac{e^{\cos\theta_{y_i}/T}}{\sum_j e^{\cos\theta_j/T}}

    Input: embeddings (N, ``embedding_dim``) float; target: int labels (N,).
    ``logits(embeddings)`` returns :math:`\cos\theta/T`.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.05
        :math:`T`.
    n_classes, embedding_dim : int
        Data params.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Matches PML's ``NormalizedSoftmaxLoss``. Equals ``cosface`` with margin 0 and scale 1/T.

    References
    ----------
    A. Zhai, H.-Y. Wu. "Classification is a Strong Baseline for Deep Metric Learning." BMVC
    2019, arXiv:1811.12649.

    Examples
    --------
    >>> import torch
    >>> loss = NormalizedSoftmax(n_classes=2, embedding_dim=2, temperature=0.5, reduction="none")
    >>> _ = loss.weight.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.1269, 0.513, 0.1269, 0.059]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        temperature: float = 0.05,
        reduction: str = "mean",
    ) -> None:
        super().__init__(n_classes=n_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.temperature = temperature

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\cos\\theta/T`."""
        return self.cosine(embeddings) / self.temperature

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        logits = self.logits(input)
        return torch.logsumexp(logits, dim=1) - logits.gather(1, labels.unsqueeze(1)).squeeze(1)

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"temperature={self.temperature}, reduction={self.reduction!r}"
        )
