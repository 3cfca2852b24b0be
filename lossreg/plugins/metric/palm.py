"""PALM: a mixture of prototypes per class, kept in a buffer and moved by EMA across batches."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._classes import check_width
from ._private import neg_inf, split_views

__all__ = ["PALM"]


def _l1_normalize(q: torch.Tensor, dim: int) -> torch.Tensor:
    # As F.normalize(p=1) on non-negative weights: an all-zero slice stays zero.
    return q / q.sum(dim=dim, keepdim=True).clamp_min(1e-12)


class PALM(LossModule):
    r"""PALM: maximum-likelihood loss against a mixture of prototypes per class, plus a
    prototype contrastive loss.

    A buffer holds :math:`M` unit prototypes per class (``protos``, (C*M, D); prototype
    :math:`j` belongs to class :math:`j \bmod C`). Each call:

    1. soft-assigns the unit embeddings to all prototypes by 3 Sinkhorn-Knopp iterations on
       :math:`\exp(\hat e^\top p/\varepsilon)`, keeps the own-class part (optionally its top-k),
       and normalises it per row and then per prototype into :math:`U`;
    2. moves the prototypes: :math:`p \leftarrow \mathrm{normalize}(m\,p + (1-m)\,U^\top\hat e)`;
    3. with the new (detached) prototypes and new assignments :math:`w_{ij}` (own class,
       row-normalised):
       :math:`\ell_i = \log\sum_j e^{\hat e_i^\top p_j/T} - \sum_j w_{ij}\,\hat e_i^\top p_j/T`;
    4. adds :math:`\lambda_{pcon}` times SupCon over the prototypes (temperature 0.5, same-class
       prototypes as positives), computed on the *updated* prototypes, so its gradient reaches
       the embeddings through the EMA step, as in the official code.

    Input: embeddings (N, ``embedding_dim``) or (2N, ``embedding_dim``) two views; target: int
    labels (N,). ``reduction="none"`` returns (N,) (the prototype term is added to every row).
    The prototypes are stored only in ``train()`` mode with gradients enabled; a new module
    (each ``fit``) starts from random prototypes (as the official ``torch.rand`` init).

    Parameters
    ----------
    n_protos_per_class : int in [1, inf), default=6
        :math:`M`.
    proto_m : float in [0, 1), default=0.99
        EMA momentum :math:`m`.
    temperature : float in (0, inf), default=0.1
        :math:`T`.
    lambda_pcon : float in [0, inf), default=1.0
        Weight of the prototype contrastive loss.
    epsilon : float in (0, inf), default=0.05
        Sinkhorn temperature :math:`\varepsilon`.
    k : int in [0, inf), default=0
        Top-k assignment (0 = off; the paper uses about 5).
    n_classes, embedding_dim : int
        Data params.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against jeff024/PALM ``util/loss_functions.py``; differences: the Sinkhorn input
    is shifted by its maximum (the official code has a fallback for overflow that calls an
    undefined ``self.ws``), and no ``.cuda()``. With ``k > 0`` the loss mask takes the top-k of
    the update mask, as the official code does.

    References
    ----------
    H. Lu, D. Gong, S. Wang, J. Xue, L. Yao, K. Moore. "Learning with Mixture of Prototypes
    for Out-of-Distribution Detection." ICLR 2024.

    Examples
    --------
    >>> import torch
    >>> loss = PALM(n_classes=2, embedding_dim=2, n_protos_per_class=1, reduction="none")
    >>> _ = loss.protos.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.0, 0.122, 0.0, 0.0]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        n_protos_per_class: int = 6,
        proto_m: float = 0.99,
        temperature: float = 0.1,
        lambda_pcon: float = 1.0,
        epsilon: float = 0.05,
        k: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.n_protos_per_class = n_protos_per_class
        self.proto_m = proto_m
        self.temperature = temperature
        self.lambda_pcon = lambda_pcon
        self.epsilon = epsilon
        self.k = k
        size = int(n_classes) * int(n_protos_per_class)
        self.register_buffer("protos", F.normalize(torch.rand(size, int(embedding_dim)), dim=1))

    def proto_labels(self) -> torch.Tensor:
        """The class of each prototype: ``arange(C)`` repeated ``M`` times."""
        return torch.arange(int(self.n_classes), device=self.protos.device).repeat(
            int(self.n_protos_per_class)
        )

    def _sinkhorn(self, f: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
        out = (f @ protos.T).detach() / self.epsilon
        q = torch.exp(out - out.max()).T  # (K, B); the global shift cancels in the normalisation
        q = q / q.sum()
        n_protos, n_rows = q.shape
        for _ in range(3):
            q = _l1_normalize(q, dim=1) / n_protos
            q = _l1_normalize(q, dim=0) / n_rows
        return (q * n_rows).T

    def _topk_mask(self, weights: torch.Tensor) -> torch.Tensor:
        index = weights.topk(int(self.k), dim=1).indices
        return torch.zeros_like(weights).scatter(1, index, 1.0)

    def _proto_contrast(self, protos: torch.Tensor) -> torch.Tensor:
        labels = self.proto_labels()
        logits = protos @ protos.T / 0.5
        eye = torch.eye(protos.shape[0], dtype=torch.bool, device=protos.device)
        positive = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~eye
        pos = (_l1_normalize(positive.to(logits.dtype), dim=1) * logits).sum(dim=1)
        neg = torch.logsumexp(logits.masked_fill(eye, neg_inf(logits)), dim=1)
        return -(pos - neg).mean()

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        x, labels, n_rows = split_views(check_width(input, int(self.embedding_dim)), target)
        if labels is None:
            raise ValueError("PALM needs class labels as the target.")
        f = F.normalize(x, dim=1)
        protos = self.protos.to(f.dtype)
        mask = (labels.unsqueeze(1) == self.proto_labels().unsqueeze(0)).to(f.dtype)
        q = self._sinkhorn(f, protos)
        update = mask * q
        if self.k > 0:
            update = self._topk_mask(update) * update
        update = _l1_normalize(_l1_normalize(update, dim=1), dim=0)
        moved = F.normalize(self.proto_m * protos + (1 - self.proto_m) * update.T @ f, dim=1)
        q = self._sinkhorn(f, moved.detach())
        logits = f @ moved.detach().T / self.temperature
        if self.k > 0:
            weights = _l1_normalize(self._topk_mask(update) * mask * q, dim=1)
        else:
            weights = _l1_normalize(q * mask, dim=1)
        per_row = torch.logsumexp(logits, dim=1) - (weights * logits).sum(dim=1)
        if self.lambda_pcon > 0:
            per_row = per_row + self.lambda_pcon * self._proto_contrast(moved)
        if self.training and torch.is_grad_enabled():
            self.protos.copy_(moved.detach().to(self.protos.dtype))
        if per_row.shape[0] == n_rows:
            return per_row
        return per_row.reshape(2, n_rows).mean(dim=0)

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"n_protos_per_class={self.n_protos_per_class}, proto_m={self.proto_m}, "
            f"temperature={self.temperature}, lambda_pcon={self.lambda_pcon}, "
            f"epsilon={self.epsilon}, k={self.k}, reduction={self.reduction!r}"
        )
