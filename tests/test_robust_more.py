"""More label-noise-robust losses: robust log loss and the prune mode of truncated GCE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossreg

N_CLASSES = 4


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(20, N_CLASSES, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, N_CLASSES, (20,), generator=gen)
    weights = torch.rand(20, generator=gen, dtype=torch.float64)
    return logits, labels, weights


def _softmax_row(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _close(ours: torch.Tensor, expected: list[float], rtol: float = 1e-10) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), np.array(expected), rtol=rtol, atol=1e-12)


# -- robust log loss ------------------------------------------------------------------------


def _rll_loop(logits: torch.Tensor, labels: torch.Tensor, alpha: float) -> list[float]:
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = _softmax_row(row)
        c = len(p)
        value = math.log((alpha + 1) / alpha) - math.log(alpha + p[y])
        for k in range(c):
            if k != y:
                value += math.log(alpha + p[k]) / (c - 1)
        out.append(value)
    return out


@pytest.mark.reference("rll")
@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0, 10.0])
def test_rll_matches_loop(registry, data, alpha):
    logits, labels, _ = data
    ours = registry.create_loss("rll", alpha=alpha, reduction="none")(logits, labels)
    _close(ours, _rll_loop(logits, labels, alpha))


@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_rll_is_symmetric_zero_at_a_perfect_prediction_and_bounded(registry, data, alpha):
    logits, _, _ = data
    loss = registry.create_loss("rll", alpha=alpha, reduction="none")
    per_label = torch.stack(
        [loss(logits, torch.full((logits.shape[0],), k)) for k in range(N_CLASSES)], dim=1
    )
    const = math.log((alpha + 1) / alpha)
    # Symmetry: the sum over all labels does not depend on the prediction.
    torch.testing.assert_close(
        per_label.sum(dim=1), torch.full_like(per_label[:, 0], N_CLASSES * const)
    )
    assert bool((per_label >= -1e-12).all()) and bool((per_label <= 2 * const + 1e-12).all())
    confident = torch.tensor([[60.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert abs(float(loss(confident, torch.tensor([0])))) < 1e-12
    # A function of the probabilities: adding a constant to every logit changes nothing.
    labels = torch.arange(logits.shape[0]) % N_CLASSES
    torch.testing.assert_close(loss(logits + 5.0, labels), loss(logits, labels))


def test_rll_sample_weights_give_a_weighted_mean(registry, data):
    logits, labels, weights = data
    rows = registry.create_loss("rll", reduction="none")(logits, labels)
    mean = registry.create_loss("rll")(logits, labels, sample_weight=weights)
    torch.testing.assert_close(mean, (rows * weights).sum() / weights.sum())
