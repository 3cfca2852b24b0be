"""CWCL: contrastive alignment with continuous pair weights (frozen embeddings or a y kernel)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import check_embeddings

__all__ = ["CWCL", "KERNELS", "cwcl_directions"]

#: pair weights: "none" (from the frozen embeddings q), or a kernel on the targets
KERNELS = ("none", "laplace")


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
    r"""Continuously weighted contrastive loss: align two views with continuous pair weights.

    .. math::

        \ell^{p\to q}_i = -\frac{1}{\sum_j w_{ij}}\sum_j w_{ij}
            \log\frac{e^{\langle\hat p_i,\hat q_j\rangle/\tau}}
                     {\sum_k e^{\langle\hat p_i,\hat q_k\rangle/\tau}}

    :math:`\ell^{q\to p}_i` is the same with the roles of :math:`p` and :math:`q` exchanged in
    the softmax, and :math:`\ell_i = \ell^{p\to q}_i + \ell^{q\to p}_i`. With :math:`w = I` it
    is twice the CLIP loss; continuous weights make similar rows soft positives. The catalogue
    entry gives two sources of the weights, chosen by ``kernel``:

    - ``kernel="none"`` (default): :math:`w_{ij} = \tfrac12(\langle\hat q_i,\hat q_j\rangle+1)`
      from a frozen embedding space. Input: embeddings :math:`p` (N, D) of the trained
      network; target: ignored (labels are accepted); fit extra ``teacher_logits``: the frozen
      embeddings :math:`q` (N, D) of the same rows from a pre-trained model of another view
      or modality (the same width D as the output: set ``n_components`` to it).
    - ``kernel="laplace"``: :math:`w_{ij} = k(y_i, y_j) = e^{-|y_i-y_j|/\sigma}` from the
      rows' continuous targets (regression values), and :math:`p`, :math:`q` are two
      augmented views of the trained embeddings: input (2N, D) whose rows i and i+N are the
      views of row i (what :class:`~lossreg.LossEmbedder` feeds this mode, see
      :meth:`mode_of`); target: one real value per row, (N,). Both views get gradients. A
      one-view input (N, D) is read as :math:`p = q` (each row its own positive of weight 1).
      No fit extra is needed.

    ``reduction="none"`` returns (N,), one value per original row.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.07
        :math:`\tau` (CLIP's initial value; fixed here).
    kernel : {"none", "laplace"}, default="none"
        Where the pair weights come from (above).
    sigma : float in (0, inf), default=1.0
        Bandwidth :math:`\sigma` of the target kernel, in the target's units (the catalogue
        gives no default; 1.0 is one standard deviation of a standardised target). Unused
        when ``kernel="none"``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The formula, the weights :math:`w_{ij}=\langle q_i,q_j\rangle/2+1/2` and the target
    kernel :math:`e^{-|y_i-y_j|/\sigma}` (for tabular contrastive learning with continuous
    similarity from regression targets) follow the catalogue entry. The paper's text
    (Srinivasa et al., NeurIPS 2023) could not be read beyond its abstract (a frozen
    pre-trained model in one modality, continuous similarity weights); a later paper
    (CellCLIP) restates the one-direction term with the same weights, computed in the frozen
    modality, and sums it with a reverse-direction term, which agrees with the entry. No
    official code was found, so details such as a learnable temperature are not reproduced.
    ``q`` gets no gradient in the default mode (it is a fit extra, a constant). The
    two-augmented-views reading of the kernel mode is this package's: the catalogue names
    the kernel but not what :math:`p` and :math:`q` are without a second modality.

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
    >>> views = torch.cat([p, q])  # two views of four rows
    >>> y = torch.tensor([0.0, 0.5, 0.1, 2.0])
    >>> loss = CWCL(temperature=0.5, kernel="laplace", sigma=1.0, reduction="none")
    >>> [round(v, 4) for v in loss(views, y).tolist()]
    [2.6685, 3.0026, 2.506, 2.2913]
    """

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        kernel: str = "none",
        sigma: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if kernel not in KERNELS:
            raise ValueError(
                f"CWCL kernel must be one of {', '.join(map(repr, KERNELS))}. Got {kernel!r}."
            )
        self.temperature = temperature
        self.kernel = kernel
        self.sigma = sigma
        # what the estimators read from a built loss (see mode_of)
        self.fit_extras_ = tuple(self.mode_of({"kernel": kernel}).get("fit_extras", _FROZEN))

    @staticmethod
    def mode_of(params: Mapping[str, Any]) -> dict[str, Any]:
        """How estimators feed the loss: the kernel mode takes two views and float targets."""
        if params.get("kernel", "none") != "laplace":
            return {}  # "none", or an unknown kernel the loss itself refuses by name
        return {"views": 2, "fit_extras": (), "target": "continuous"}

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None,
        *,
        teacher_logits: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if self.kernel != "none":
            return self._kernel_loss(input, target)
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

    def _kernel_loss(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        x = check_embeddings(input)
        if target is None:
            raise ValueError(
                f"CWCL with kernel={self.kernel!r} weighs pairs by their targets: pass one "
                "real target per row, fit(X, y)."
            )
        y = target.reshape(len(target), -1)
        if y.shape[1] != 1:
            raise ValueError(
                f"CWCL's target kernel takes one real target per row; got shape "
                f"{tuple(target.shape)}."
            )
        y = y[:, 0].to(x.dtype)
        n = len(y)
        if x.shape[0] == 2 * n:  # rows i and i+N: two augmented views of row i
            p, q = x[:n], x[n:]
        elif x.shape[0] == n:
            p = q = x
        else:
            raise ValueError(
                f"CWCL with kernel={self.kernel!r} takes (N, D) or two views (2N, D) for N "
                f"targets; got {tuple(x.shape)} for {n} targets."
            )
        p, q = F.normalize(p, dim=1), F.normalize(q, dim=1)
        weight = torch.exp(-(y[:, None] - y[None, :]).abs() / self.sigma)
        p_to_q, q_to_p = cwcl_directions(p, q, weight, self.temperature)
        return p_to_q + q_to_p

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, kernel={self.kernel!r}, sigma={self.sigma}, "
            f"reduction={self.reduction!r}"
        )


#: the default mode's fit extra: the frozen embeddings q
_FROZEN = ("teacher_logits",)
