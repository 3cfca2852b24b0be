"""pno_churn_regret: per-row campaign regret against a float64 loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossreg
from lossreg.errors import MissingFitExtraError


def _reference_regret(
    scores: list[float],
    churn: list[int],
    values: list[float],
    gamma: float = 0.3,
    delta: float = 10.0,
    f: float = 1.0,
) -> list[float]:
    """Profit lost per customer against the hindsight-optimal targeting, one row at a time."""
    out = []
    for s, y, v in zip(scores, churn, values, strict=True):
        target_prob = 1.0 / (1.0 + math.exp(-s))
        # a churner is kept with probability gamma if contacted (else lost: 0); a loyal
        # customer takes the incentive anyway
        kept = gamma * (v - delta) - f
        profit_if_targeted = kept if y == 1 else -delta - f
        best = max(profit_if_targeted, 0.0)  # leaving a customer alone earns 0
        expected = target_prob * profit_if_targeted
        out.append(best - expected)
    return out


@pytest.mark.reference("pno_churn_regret")
@pytest.mark.parametrize(("gamma", "delta", "f"), [(0.3, 10.0, 1.0), (0.6, 2.5, 4.0)])
def test_matches_a_loop_reference(gamma, delta, f):
    rng = np.random.default_rng(0)
    scores = rng.normal(scale=3.0, size=16)
    churn = rng.integers(0, 2, size=16)
    values = rng.lognormal(4.0, 1.2, size=16)
    loss = lossreg.create_loss(
        "pno_churn_regret", gamma=gamma, delta=delta, contact_cost=f, reduction="none"
    )
    got = loss(
        torch.tensor(scores, dtype=torch.float64),
        torch.tensor(churn),
        value=torch.tensor(values, dtype=torch.float64),
    )
    expected = _reference_regret(scores.tolist(), churn.tolist(), values.tolist(), gamma, delta, f)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert (got >= 0).all()  # a regret: never better than the hindsight decision


def test_gradient_pushes_scores_toward_profitable_targeting():
    loss = lossreg.create_loss("pno_churn_regret")
    scores = torch.zeros(3, requires_grad=True)
    # a valuable churner, a churner worth less than the incentive, a loyal customer
    loss(scores, torch.tensor([1, 1, 0]), value=torch.tensor([300.0, 5.0, 300.0])).backward()
    grad = scores.grad
    assert grad[0] < 0 and grad[1] > 0 and grad[2] > 0  # descent raises only the first


def test_needs_the_value_extra_at_fit():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    clf = lossreg.LossClassifier(loss="pno_churn_regret", max_iter=2)
    with pytest.raises(MissingFitExtraError, match="value"):
        clf.fit(X, y)
    fitted = clf.fit(X, y, value=np.full(40, 100.0))
    assert not hasattr(fitted, "predict_proba")  # scores are decisions, not probabilities
    assert set(fitted.predict(X)) <= {0, 1}


def test_a_value_of_several_columns_is_refused_by_name():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    clf = lossreg.LossClassifier(loss="pno_churn_regret", max_iter=1)
    with pytest.raises(ValueError, match=r"value holds one number per row.*\(40, 2\)"):
        clf.fit(X, y, value=np.full((40, 2), 100.0))
    clf.fit(X, y, value=np.full((40, 1), 100.0))  # one column is one number per row


def test_the_loss_names_a_value_of_the_wrong_shape():
    loss = lossreg.create_loss("pno_churn_regret")
    churn = torch.tensor([1, 0, 1])
    with pytest.raises(ValueError, match=r"one lifetime value per row.*\(3, 2\)"):
        loss(torch.zeros(3), churn, value=torch.full((3, 2), 100.0))
    flat = loss(torch.zeros(3), churn, value=torch.full((3,), 100.0))
    assert loss(torch.zeros(3), churn, value=torch.full((3, 1), 100.0)).item() == flat.item()
