"""BD-KD (``bdkd``): the loss against a float64 loop, its switch, its end cases, a smoke fit.

The reference walks the rows and classes in plain Python floats, with probabilities from
``math.exp`` and the two divergences written out as sums, so it shares no code with the
vectorised implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossreg
from lossreg.estimators import LossClassifier
from lossreg.plugins.distillation import BalancedDivergenceKD, KnowledgeDistillation


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


def _softmax(row, temperature):
    scaled = [v / temperature for v in row]
    top = max(scaled)
    weights = [math.exp(v - top) for v in scaled]
    total = sum(weights)
    return [w / total for w in weights]


def _bdkd_loop(student, teacher, labels, temperature, alpha, balance):
    """Per-row BD-KD losses, one row and one class at a time, in float64."""
    out = []
    for z, t, label in zip(student, teacher, labels, strict=True):
        p_s, p_t = _softmax(z, temperature), _softmax(t, temperature)
        h_s = -sum(p * math.log(p) for p in p_s)
        h_t = -sum(p * math.log(p) for p in p_t)
        forward = sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s, strict=True))
        reverse = sum(ps * math.log(ps / pt) for pt, ps in zip(p_t, p_s, strict=True))
        # under-confident student (higher entropy): favour the mode-seeking reverse KL
        w_rev = balance if h_s > h_t else 1.0 - balance
        ce = -math.log(_softmax(z, 1.0)[label])
        kd = (1.0 - w_rev) * forward + w_rev * reverse
        out.append((1.0 - alpha) * ce + alpha * temperature**2 * kd)
    return out


@pytest.mark.reference("bdkd")
@pytest.mark.parametrize(
    ("temperature", "alpha", "balance"), [(4.0, 0.9, 0.75), (1.0, 0.5, 1.0), (2.0, 0.3, 0.2)]
)
def test_bdkd_matches_the_float64_loop(temperature, alpha, balance):
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(12, 4, generator=gen, dtype=torch.float64) * 2.0
    t = torch.randn(12, 4, generator=gen, dtype=torch.float64) * 3.0
    y = torch.randint(0, 4, (12,), generator=gen)
    loss = BalancedDivergenceKD(
        temperature=temperature, alpha=alpha, balance=balance, reduction="none"
    )
    got = loss(z, y, teacher_logits=t)
    want = _bdkd_loop(z.tolist(), t.tolist(), y.tolist(), temperature, alpha, balance)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    assert got.dtype == torch.float64


def test_both_branches_of_the_switch_are_taken():
    """Row 0: a flat student under a sharp teacher; row 1: a sharp student under a flat one."""
    z = torch.tensor([[0.1, 0.0, -0.1], [6.0, 0.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[6.0, 0.0, 0.0], [0.1, 0.0, -0.1]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    hard = BalancedDivergenceKD(temperature=1.0, alpha=1.0, balance=1.0, reduction="none")
    got = hard(z, y, teacher_logits=t)
    log_s, log_t = z.log_softmax(-1), t.log_softmax(-1)
    reverse_0 = (log_s[0].exp() * (log_s[0] - log_t[0])).sum()
    forward_1 = (log_t[1].exp() * (log_t[1] - log_s[1])).sum()
    torch.testing.assert_close(got, torch.stack([reverse_0, forward_1]))


def test_balance_one_on_an_over_confident_student_is_hinton_kd():
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(8, 5, generator=gen)
    z = 4.0 * t + 0.1 * torch.randn(8, 5, generator=gen)  # sharper: lower entropy every row
    y = torch.randint(0, 5, (8,), generator=gen)
    bd = BalancedDivergenceKD(balance=1.0, reduction="none")(z, y, teacher_logits=t)
    kd = KnowledgeDistillation(reduction="none")(z, y, teacher_logits=t)
    torch.testing.assert_close(bd, kd)


def test_the_switch_carries_no_gradient_into_the_entropies():
    """With balance=0.5 the weights are constant, so the loss is the smooth Jeffreys mix."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=gen)
    loss = BalancedDivergenceKD(balance=0.5, temperature=2.0)
    assert torch.autograd.gradcheck(lambda s: loss(s, y, teacher_logits=t), (z,))


def test_registered_with_its_defaults(registry):
    spec = registry.get_spec("bdkd")
    assert spec.fit_extras == ("teacher_logits",)
    assert {p.name: p.default for p in spec.params} == {
        "temperature": 4.0,
        "alpha": 0.9,
        "balance": 0.75,
    }
    with pytest.raises(lossreg.InvalidLossParameterError, match="balance"):
        registry.create_loss("bdkd", balance=1.5)


def test_estimator_fits_with_teacher_logits():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)
    teacher = np.eye(3)[y] * 3.0 + rng.normal(scale=0.5, size=(80, 3))
    clf = LossClassifier(loss="bdkd", max_iter=3, random_state=0)
    clf.fit(X, y, teacher_logits=teacher)
    proba = clf.predict_proba(X)
    assert proba.shape == (80, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
