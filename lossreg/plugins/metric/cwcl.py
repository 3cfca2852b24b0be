"""CWCL: contrastive alignment to a frozen embedding space with continuous pair weights."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import check_embeddings

__all__ = ["CWCL", "cwcl_directions"]


def cwcl_directions(
    p: torch.Tensor, q: torch.Tensor, weight: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-row CWCL terms of both directions, :math:`(\ell^{p\to q}_i, \ell^{q\to p}_i)`.

    ``p`` and ``q`` are L2-normalised (N, D); ``weight`` is the (N, N) matrix :math:`w_{ij}`.
    Each row's weights are normalised to sum to one.
    """
    logits = p @ q.T / temperature
    weight = weight / weight.sum(dim=1, keepdim=True)
    p_to_q = -(weight * logits.log_softmax(dim=1)).sum(dim=1)
    q_to_p = -(weight * logits.T.log_softmax(dim=1)).sum(dim=1)
    return p_to_q, q_to_p


class CWCL(LossModule):
    r"""Continuously weighted contrastive loss: align embeddings to a frozen embedding space.

    .. math::

        w_{ij} = \tfrac12\big(\langle\hat q_i,\hat q_j\rangle + 1\big), \qquad
        \ell^{p\to q}_i = -\frac{1}{\sum_j w_{ij}}\sum_j w_{ij}
            \log\frac{e^{\langle\hat p_i,\hat q_j\rangle/\tau}}
                     {\sum_k e^{\langle\hat p_i,\hat q_k\rangle/\tau}}

    :math:`\ell^{q\to p}_i` is the same with the roles of :math:`p` and :math:`q` exchanged in
    the softmax (the weights always come from the frozen space :math:`q`), and
    :math:`\ell_i = \ell^{p\to q}_i + \ell^{q\to p}_i`. With :math:`w = I` it is twice the CLIP
    loss; the continuous weights make rows that are similar in the frozen space soft positives.

    Input: embeddings :math:`p` (N, D) of the trained network; target: ignored (labels are
    accepted); fit extra ``teacher_logits``: the frozen embeddings :math:`q` (N, D) of the same
    rows from a pre-trained model of another view or modality (the same width D as the
    output: set ``n_components`` to it). ``reduction="none"`` returns (N,).

    Parameters
    ----------
    temperature : float in (0, inf), default=0.07
        :math:`\tau` (CLIP's initial value; fixed here).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The formula and the weights :math:`w_{ij}=\langle q_i,q_j\rangle/2+1/2` follow the catalogue
    entry. The paper's text (Srinivasa et al., NeurIPS 2023) could not be read beyond its
    abstract (a frozen pre-trained model in one modality, continuous similarity weights); a
    later paper (CellCLIP) restates the one-direction term with the same weights, computed in
    the frozen modality, and sums it with a reverse-direction term, which agrees with the entry.
    No official code was found, so details such as a learnable temperature are not reproduced.
    ``q`` gets no gradient (it is a fit extra, a constant).

    Regression targets cannot be the weight kernel through the estimators: ``LossEmbedder``
    label-encodes ``y``, so a kernel :math:`k(y_i, y_j)` on continuous targets is not offered.

    References
    ----------
    R. S. Srinivasa, J. Cho, C. Yang, Y. M. Saidutta, C.-H. Lee, Y. Shen, H. Jin. "CWCL:
    Cross-Modal Transfer with Continuously Weighted Contrastive Loss." NeurIPS 2023,
    arXiv:2309.14580.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> q = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.7, 0.7], [-0.5, 0.9]])
    >>> loss = CWCL(temperature=0.5, reduction="none")
    >>> [round(v, 4) for v in loss(p, None, teacher_logits=q).tolist()]
    [2.9526, 2.9057, 2.9122, 2.9502]
    """

    def __init__(self, *, temperature: float = 0.07, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None,
        *,
        teacher_logits: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        p = check_embeddings(input)
        if teacher_logits is None:
            raise ValueError(
                "CWCL needs the frozen embeddings of the other view as 'teacher_logits' "
                "(N, D): pass fit(X, y, teacher_logits=...)."
            )
        q = teacher_logits.to(p.dtype)
        if q.ndim == 1:
            q = q.unsqueeze(1)
        if q.shape != p.shape:
            raise ValueError(
                f"CWCL compares the output with the frozen embeddings, so teacher_logits must "
                f"have the output's shape {tuple(p.shape)}; got {tuple(q.shape)}. Set "
                "n_components to the width of the frozen embeddings."
            )
        p, q = F.normalize(p, dim=1), F.normalize(q.detach(), dim=1)
        weight = (q @ q.T + 1) / 2
        p_to_q, q_to_p = cwcl_directions(p, q, weight, self.temperature)
        return p_to_q + q_to_p

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"
