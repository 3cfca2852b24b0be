"""Margin-MSE: match the student's score margins within a query to the teacher's."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["MarginMSE"]


def _scores(values: torch.Tensor, name: str, n: int) -> torch.Tensor:
    if values.numel() != n or (values.ndim == 2 and values.shape[1] != 1) or values.ndim > 2:
        raise ValueError(
            f"margin_mse needs one {name} per row, shape (N,) or (N, 1). Got shape "
            f"{tuple(values.shape)} for N={n}."
        )
    return values.reshape(-1)


class MarginMSE(nn.Module):
    r"""Margin-MSE distillation for ranking: squared error between score margins of pairs.

    .. math::

        L = \frac{\sum_{(i,j)} w_i w_j\big[(s_i - s_j) - (t_i - t_j)\big]^2}
                 {\sum_{(i,j)} w_i w_j}

    over the pairs :math:`(i, j)` of rows of the batch with the same ``group`` (query) and
    :math:`y_i > y_j` (a more relevant and a less relevant document), with student scores
    :math:`s` (N,) or (N, 1), relevance targets :math:`y` (N,), the teacher's scores
    :math:`t` as ``teacher_logits`` (N,) or (N, 1), and row weights :math:`w` (1 without
    sample weights). Predict link: identity (rank by score).

    Parameters
    ----------
    reduction : {"mean", "sum"}, default="mean"
        ``"sum"`` is the weighted sum over pairs; ``"none"`` raises (a pair has two rows).

    Notes
    -----
    Batch-level: pairs are formed inside the batch only, so batches should hold whole
    queries (group-aware batching); a batch without any pair gives 0 with zero gradient.
    Sample weights count as row frequencies, hence the pair weight :math:`w_i w_j`. Checked
    against the authors' code (sebastian-hofstaetter/neural-ranking-kd
    ``margin_mse_loss.py``: ``mean(((s_pos - s_neg) - (t_pos - t_neg))^2)`` over
    (query, positive, negative) triples) and ``sentence_transformers.losses.MarginMSELoss``;
    the catalogue entry ("from-memory") agrees. The loss is symmetric in the pair's order,
    so the relevance labels only decide which pairs count.

    References
    ----------
    S. Hofstätter et al. "Improving Efficient Neural Ranking Models with Cross-Architecture
    Knowledge Distillation." arXiv:2010.02666.

    Examples
    --------
    >>> import torch
    >>> loss = MarginMSE()
    >>> s = torch.tensor([2.0, 0.5, 1.0, 0.0])
    >>> y = torch.tensor([1.0, 0.0, 2.0, 0.0])
    >>> group, t = torch.tensor([0, 0, 1, 1]), torch.tensor([3.0, 0.0, 1.0, 0.5])
    >>> round(loss(s, y, group=group, teacher_logits=t).item(), 4)
    1.25
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                "margin_mse is a pairwise batch-level loss: reduction must be 'mean' or 'sum'. "
                f"Got {reduction!r} instead."
            )
        self.reduction = reduction

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: torch.Tensor | None = None,
        teacher_logits: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        n = input.shape[0]
        if group is None or teacher_logits is None:
            raise ValueError(
                "margin_mse needs group=... (query id per row) and teacher_logits=... (the "
                "teacher's score per row)."
            )
        scores = _scores(input, "score", n)
        relevance = _scores(torch.as_tensor(target, device=input.device), "target", n)
        teacher = torch.as_tensor(teacher_logits, device=input.device).to(input.dtype).detach()
        teacher = _scores(teacher, "teacher score", n)
        group = torch.as_tensor(group, device=input.device).reshape(-1)
        pairs = (group.unsqueeze(1) == group.unsqueeze(0)) & (
            relevance.unsqueeze(1) > relevance.unsqueeze(0)
        )
        weight = pairs.to(input.dtype)
        if sample_weight is not None:
            rows = torch.as_tensor(sample_weight, dtype=input.dtype, device=input.device)
            weight = weight * rows.reshape(-1, 1) * rows.reshape(1, -1)
        gap = (scores.unsqueeze(1) - scores.unsqueeze(0)) - (
            teacher.unsqueeze(1) - teacher.unsqueeze(0)
        )
        total = (weight * gap.square()).sum()
        if self.reduction == "sum":
            return total
        # No pair in the batch: 0 (not 0/0), still connected to the graph.
        return total / weight.sum().clamp_min(torch.finfo(input.dtype).tiny)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
