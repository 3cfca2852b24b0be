"""bpr with (N, K) scores whose rows are groups: a float64 loop reference, and its errors."""

from __future__ import annotations

import math

import pytest
import torch

from lossreg import create_loss


def _loop_bpr(scores, relevance, weights, sigma):
    # every ordered pair of a row, one at a time
    total, weight_sum = 0.0, 0.0
    for r, row in enumerate(scores):
        for a in range(len(row)):
            for b in range(len(row)):
                if relevance[r][a] > relevance[r][b]:
                    diff = sigma * (row[a] - row[b])
                    total += weights[r] * math.log1p(math.exp(-diff))
                    weight_sum += weights[r]
    return total / weight_sum


def test_row_groups_match_a_loop_reference_and_the_flattened_groups():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 5, dtype=torch.float64, generator=generator)
    relevance = torch.randint(0, 3, (6, 5), generator=generator).to(torch.float64)
    weights = torch.rand(6, dtype=torch.float64, generator=generator) + 0.5
    loss = create_loss("bpr", sigma=1.5)
    got = loss(scores, relevance, sample_weight=weights)
    expected = _loop_bpr(scores.tolist(), relevance.tolist(), weights.tolist(), 1.5)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # unweighted: the same as one score per row with one group id per row of scores
    flat = loss(
        scores.reshape(-1), relevance.reshape(-1), group=torch.arange(6).repeat_interleave(5)
    )
    assert loss(scores, relevance).item() == pytest.approx(flat.item(), rel=1e-12)


def test_row_groups_refuse_group_ids_and_keep_the_gradient_finite():
    loss = create_loss("bpr")
    scores = torch.tensor([[3.0, -2.0, 0.5], [1e4, -1e4, 0.0]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    loss(scores, target).backward()
    assert torch.isfinite(scores.grad).all()
    with pytest.raises(ValueError, match="pass one or the other"):
        loss(scores, target, group=torch.tensor([0, 1]))
